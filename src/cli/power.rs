//! `trtforge power`: sample the power sensors alone, or parse a tegrastats log.

use super::bench::parse_duration;
use super::EXIT_UNAVAILABLE;
use anyhow::bail;
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use trtforge::measure::energy;
use trtforge::measure::power::{self, tegrastats, PowerChoice};

#[derive(Subcommand)]
pub enum PowerCmd {
    /// Sample the power sensors for a while and print per-rail mean, min, max and energy.
    Sample {
        /// Where sysfs is mounted.
        #[arg(long, default_value = "/sys")]
        sysfs_root: PathBuf,
        /// Source: auto, ina238 (Thor), ina3221 (Orin), tegrastats, nvml.
        #[arg(long, default_value = "auto")]
        source: PowerChoice,
        #[arg(long, default_value = "2s")]
        duration: String,
        #[arg(long, default_value = "20ms")]
        period: String,
        #[arg(long)]
        json: bool,
    },
    /// Parse a tegrastats log into rails with instantaneous mW.
    ParseTegrastats {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct ParsedLine {
    line: usize,
    #[serde(flatten)]
    parsed: tegrastats::Line,
    /// Sum of the total rails' instantaneous power, mW (null without rails).
    total_mw: Option<f64>,
    total_rails: Vec<String>,
}

pub fn run(cmd: PowerCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PowerCmd::ParseTegrastats { file, json } => {
            let text = trtforge::util::input::read_text(&file, trtforge::util::input::TEXT)?;
            let lines: Vec<ParsedLine> = tegrastats::parse_log(&text)
                .into_iter()
                .map(|(line, parsed)| {
                    let names: Vec<String> = parsed.connected().map(|r| r.name.clone()).collect();
                    let total_rails = power::total_rails(&names);
                    // A line with a corrupt power field has no total: its other rails would
                    // sum to something else than the total means.
                    let total_mw = (!names.is_empty() && parsed.malformed.is_empty()).then(|| {
                        parsed
                            .connected()
                            .filter(|r| total_rails.contains(&r.name))
                            .map(|r| r.cur_mw)
                            .sum()
                    });
                    ParsedLine {
                        line,
                        parsed,
                        total_mw,
                        total_rails,
                    }
                })
                .collect();
            if lines.is_empty() {
                bail!(
                    "{}: no tegrastats lines found (is it a tegrastats log?)",
                    file.display()
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                for l in &lines {
                    let rails: Vec<String> = l
                        .parsed
                        .connected()
                        .map(|r| format!("{} {:.0}", r.name, r.cur_mw))
                        .collect();
                    match l.total_mw {
                        None if !l.parsed.malformed.is_empty() => println!(
                            "line {:>4}: malformed power field {} (not a sample)",
                            l.line,
                            l.parsed.malformed.join(", ")
                        ),
                        Some(t) => println!(
                            "line {:>4} {}: {} mW; total {:.0} mW ({})",
                            l.line,
                            l.parsed.timestamp.as_deref().unwrap_or("-"),
                            rails.join(", "),
                            t,
                            l.total_rails.join("+")
                        ),
                        None => println!("line {:>4}: no power rails (power unavailable)", l.line),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PowerCmd::Sample {
            sysfs_root,
            source,
            duration,
            period,
            json,
        } => {
            if source == PowerChoice::Off {
                bail!(
                    "--source off samples nothing; pick auto, ina238, ina3221, tegrastats or nvml"
                );
            }
            let dur = parse_duration(&duration)?;
            let period = parse_duration(&period)?;
            let epoch = Instant::now();
            let sampler = match power::start(source, &sysfs_root, period, epoch) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    eprintln!("error: no power sensor found under {} (no INA238, no INA3221, no NVML); pass --sysfs-root or --source", sysfs_root.display());
                    return Ok(ExitCode::from(EXIT_UNAVAILABLE));
                }
                Err(e @ trtforge::Error::Unavailable { .. }) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_UNAVAILABLE));
                }
                Err(e) => return Err(e.into()),
            };
            std::thread::sleep(dur);
            let trace = sampler.stop()?;
            let (a, b) = (
                trace.t_s.first().copied().unwrap_or(0.0),
                trace.t_s.last().copied().unwrap_or(0.0),
            );
            let rep = energy::compute(&trace, (a, b), None, 0)?;
            if json {
                #[derive(Serialize)]
                struct Out<'a> {
                    energy: &'a energy::EnergyReport,
                    trace: &'a power::PowerTrace,
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Out {
                        energy: &rep,
                        trace: &trace
                    })?
                );
            } else {
                println!(
                    "{} over {:.3} s: {} samples, period {:.2} ms achieved ({:.1} requested), {} dropped",
                    rep.source, rep.window_s, rep.samples_total, rep.period_achieved_ms, rep.period_requested_ms, rep.samples_dropped
                );
                println!(
                    "{:<20} {:>9} {:>9} {:>9} {:>10}",
                    "rail", "mean W", "min W", "max W", "energy J"
                );
                for r in &rep.rails {
                    println!(
                        "{:<20} {:>9.3} {:>9.3} {:>9.3} {:>10.4}",
                        r.name, r.mean_w, r.min_w, r.max_w, r.energy_j
                    );
                }
                println!(
                    "{:<20} {:>9.3} {:>9} {:>9} {:>10.4}  ({})",
                    "total",
                    rep.avg_w,
                    "",
                    "",
                    rep.energy_j,
                    rep.rails_summed.join(" + ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
