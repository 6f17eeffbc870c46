//! tegrastats: parse its lines, or run it and timestamp each line as it arrives.
//!
//! A power field is `NAME cur/avg` (JetPack 4, mW without unit), `NAME curmW/avgmW`
//! (JetPack 5/6) or `NAME curmW/avgmW/thirdmW` (JetPack 7.2). Only `cur` is instantaneous:
//! `avg` is the running mean since that tegrastats process started, so it is recorded but
//! never integrated. Lines may start with `MM-DD-YYYY HH:MM:SS` and may hold runs of spaces,
//! so tokens are split on any whitespace. `RAM 721/31927MB`, `SWAP …MB` and `IRAM …kB` are not
//! rails: a unit other than mW follows their numbers. `NC` entries (unconnected channels on
//! JetPack 5.0/5.1 AGX Orin) are parsed but marked, and left out of power sums.

use super::{PowerTrace, Reading};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rail {
    pub name: String,
    /// Instantaneous power, mW.
    pub cur_mw: f64,
    /// Running mean since tegrastats started, mW (not a window mean).
    pub avg_mw: f64,
    /// Third value of JetPack 7.2 lines (looks like a maximum; meaning undocumented).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub third_mw: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// `MM-DD-YYYY HH:MM:SS` when the line has it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp: Option<String>,
    /// Every power field in line order, `NC` entries included.
    pub rails: Vec<Rail>,
    /// Rails whose value token looks like power but does not parse (`VDD_IN 5mW/x`). A line
    /// with one is corrupt: its other rails are not a sample, since summing them would
    /// quietly change what the total means.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub malformed: Vec<String>,
}

impl Line {
    /// Connected rails only (no `NC`).
    pub fn connected(&self) -> impl Iterator<Item = &Rail> {
        self.rails.iter().filter(|r| r.name != "NC")
    }
}

fn is_rail_name(t: &str) -> bool {
    let mut b = t.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `123`, `123mW`; all parts of one token must agree on the unit.
fn parse_values(t: &str) -> Option<Vec<f64>> {
    let parts: Vec<&str> = t.split('/').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let with_unit = parts[0].ends_with("mW");
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let digits = if with_unit { p.strip_suffix("mW")? } else { p };
        // At most 9 digits (below a megawatt): a longer number is a corrupt line, not power.
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        out.push(digits.parse::<f64>().ok()?);
    }
    Some(out)
}

/// A token that a power field would be: it starts with a digit or a sign and has a `/`, and
/// it is not a memory figure (`RAM 721/31927MB`, and JetPack 4's `IRAM 0/252kB(lfb 252kB)`,
/// whose token runs into a parenthesis, carry a byte unit).
fn looks_like_power(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        && t.contains('/')
        && !t.contains(['B', '('])
}

fn is_date(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 10
        && b[2] == b'-'
        && b[5] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

fn is_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

/// Parse one tegrastats line. Blank lines and `#` comments give `None`; a line without power
/// fields gives `Some` with no rails (power unavailable, not zero).
pub fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let toks: Vec<&str> = line.split_whitespace().collect();
    let timestamp = (toks.len() >= 2 && is_date(toks[0]) && is_time(toks[1]))
        .then(|| format!("{} {}", toks[0], toks[1]));
    let mut rails = Vec::new();
    let mut malformed = Vec::new();
    for w in toks.windows(2) {
        if !is_rail_name(w[0]) {
            continue;
        }
        match parse_values(w[1]) {
            Some(v) => rails.push(Rail {
                name: w[0].to_string(),
                cur_mw: v[0],
                avg_mw: v[1],
                third_mw: v.get(2).copied(),
            }),
            None if looks_like_power(w[1]) => malformed.push(w[0].to_string()),
            None => {}
        }
    }
    Some(Line {
        timestamp,
        rails,
        malformed,
    })
}

/// Parse a whole log (comments and blank lines skipped). Returns (line number, parsed line).
pub fn parse_log(text: &str) -> Vec<(usize, Line)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| parse_line(l).map(|p| (i + 1, p)))
        .collect()
}

/// A running `tegrastats --interval <ms>` whose stdout is read by a thread.
pub struct TegrastatsSampler {
    period: Duration,
    child: Child,
    handle: Option<JoinHandle<Result<PowerTrace>>>,
}

impl TegrastatsSampler {
    /// Start `tegrastats` (from PATH) with the given interval. Each line is timestamped on
    /// arrival; tegrastats' own clock has 1 s resolution and is ignored.
    pub fn start(period: Duration, epoch: Instant) -> Result<Self> {
        Self::start_command(Command::new("tegrastats"), period, epoch)
    }

    /// Same with a given command (a path to tegrastats, or a replay script in tests).
    pub fn start_command(mut cmd: Command, period: Duration, epoch: Instant) -> Result<Self> {
        let ms = period.as_millis().max(1);
        let mut child = cmd
            .arg("--interval")
            .arg(ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Unavailable {
                what: "tegrastats".into(),
                why: e.to_string(),
                fix: "run on a Jetson with tegrastats on PATH, or use --power ina3221".into(),
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let handle = std::thread::Builder::new()
            .name("power-tegrastats".into())
            .spawn(move || {
                let mut trace: Option<PowerTrace> = None;
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let t = epoch.elapsed().as_secs_f64();
                    let Some(parsed) = parse_line(&line) else {
                        continue;
                    };
                    if !parsed.malformed.is_empty() {
                        // Not a sample; and never the line that fixes the trace's rails.
                        if let Some(tr) = trace.as_mut() {
                            tr.dropped += 1;
                        }
                        continue;
                    }
                    let rails: Vec<&Rail> = parsed.connected().collect();
                    let tr = trace.get_or_insert_with(|| {
                        PowerTrace::new(
                            "tegrastats",
                            rails.iter().map(|r| r.name.clone()).collect(),
                            period,
                        )
                    });
                    let names_match = rails.len() == tr.rails.len()
                        && rails.iter().zip(&tr.rails).all(|(a, b)| &a.name == b);
                    if names_match {
                        tr.push(
                            t,
                            &Reading {
                                rails_mw: rails.iter().map(|r| r.cur_mw).collect(),
                                energy_mj: None,
                            },
                        );
                    } else {
                        tr.dropped += 1;
                    }
                }
                trace
                    .filter(|t| !t.rails.is_empty())
                    .ok_or_else(|| Error::Unavailable {
                        what: "tegrastats power rails".into(),
                        why: "tegrastats printed no power fields".into(),
                        fix: "this board has no INA3221 (e.g. Jetson Nano 2GB); use --power off"
                            .into(),
                    })
            })
            .map_err(|e| {
                Error::internal(format!("cannot start the tegrastats reader thread: {e}"))
            })?;
        Ok(TegrastatsSampler {
            period,
            child,
            handle: Some(handle),
        })
    }

    /// Stop tegrastats (the child this sampler started) and return the trace.
    pub fn stop(mut self) -> Result<PowerTrace> {
        // Wait one more interval (plus slack) so a line after the window's end arrives and
        // the window can be interpolated at its edge.
        std::thread::sleep(self.period + Duration::from_millis(50));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let h = self.handle.take().expect("joined twice");
        h.join()
            .map_err(|_| Error::internal("the tegrastats reader thread panicked"))?
    }
}

impl Drop for TegrastatsSampler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_non_rails() {
        let l = parse_line("RAM 721/31927MB (lfb 7291x4MB) GPU 0/0 CPU 311/311 VDD_IN 5mW/6mW")
            .unwrap();
        let names: Vec<&str> = l.rails.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["GPU", "CPU", "VDD_IN"]);
        assert!(parse_values("5mW/6").is_none());
        assert!(l.malformed.is_empty());
    }

    #[test]
    fn a_corrupt_power_field_marks_the_line_not_a_sample() {
        let l =
            parse_line("RAM 721/31927MB GPU 10mW/10mW CPU 5mW/5mW VDD_IN 50x0mW/5000mW").unwrap();
        assert_eq!(l.malformed, ["VDD_IN"]);
        let l = parse_line("IRAM 0/252kB VDD_IN 4000/40a0 EMC_FREQ 0%").unwrap();
        assert_eq!(l.malformed, ["VDD_IN"]);
        assert!(l.rails.is_empty());
        // Found in review: a cut unit or a sign was not flagged.
        let l = parse_line("GPU 10mW/10mW VDD_IN 5000mW/5000m").unwrap();
        assert_eq!(l.malformed, ["VDD_IN"]);
        let l = parse_line("VDD_IN -5000mW/5000mW SWAP 0/15963MB").unwrap();
        assert_eq!(l.malformed, ["VDD_IN"]);
        // A real Jetson Nano (JetPack 4) line: memory figures are not malformed power.
        let l = parse_line("RAM 1762/3964MB (lfb 252x4MB) SWAP 0/4096MB (cached 0MB) IRAM 0/252kB(lfb 252kB) POM_5V_IN 5143/2615")
            .unwrap();
        assert!(l.malformed.is_empty(), "{:?}", l.malformed);
    }
}
