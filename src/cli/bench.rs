//! `trtforge bench`: latency statistics and energy per inference, with a report.

use super::EXIT_UNAVAILABLE;
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use trtforge::measure::context::Roots;
use trtforge::measure::ort_exec::OrtExecutor;
use trtforge::measure::power::PowerChoice;
use trtforge::measure::session::{self, PowerPlan};
use trtforge::measure::{BenchConfig, Executor, Stop, Warmup};
use trtforge::recipe::LoadedRecipe;
use trtforge::report::BenchReport;

#[derive(Args)]
pub struct BenchArgs {
    /// A recipe (.yaml/.yml), an ONNX model (.onnx) or a TensorRT engine (.engine/.plan).
    target: PathBuf,
    /// Executor: `trt` (TensorRT engine; default for engines and recipes) or `ort`
    /// (ONNX Runtime on CPU; default for .onnx).
    #[arg(long, value_parser = ["trt", "ort"])]
    backend: Option<String>,
    /// Warmup: a duration (200ms, 2s) or a plain iteration count (50).
    #[arg(long, default_value = "200ms")]
    warmup: String,
    /// Measure exactly N iterations.
    #[arg(long, conflicts_with = "duration")]
    iterations: Option<u64>,
    /// Measure for this long (default 10s when --iterations is not given).
    #[arg(long)]
    duration: Option<String>,
    /// Batch size (the input's first dimension; must match a fixed-batch model).
    #[arg(long)]
    batch: Option<usize>,
    /// Percentiles to report (trtexec's definition).
    #[arg(long, value_delimiter = ',', default_value = "50,90,95,99")]
    percentiles: Vec<f64>,
    /// TensorRT: time compute only, no host<->device copies.
    #[arg(long)]
    no_transfers: bool,
    /// TensorRT: busy-wait for stream completion instead of blocking sync.
    #[arg(long)]
    spin_wait: bool,
    /// TensorRT: capture the inference in a CUDA graph and replay it.
    #[arg(long)]
    cuda_graph: bool,
    /// Power source: auto, off, ina238 (Thor), ina3221 (Orin), tegrastats, nvml.
    #[arg(long, default_value = "auto")]
    power: PowerChoice,
    /// Power sampling period.
    #[arg(long, default_value = "20ms")]
    period: String,
    /// Idle baseline measured just before the run (0s to skip).
    #[arg(long, default_value = "2s")]
    idle: String,
    /// Where sysfs is mounted (containers mount the host's elsewhere).
    #[arg(long, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Write bench.json, bench.md and SVG plots into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the random input tensor.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// `200ms`, `2s`, `1.5s`, `3m`, `500us`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .with_context(|| format!("'{s}' is not a duration (examples: 200ms, 10s, 2m)"))?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => bail!("'{s}': unknown unit '{unit}' (use us, ms, s or m)"),
    };
    // A week bounds every wait this tool makes (Duration and Instant arithmetic would
    // overflow on absurd values long before).
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        bail!("'{s}' is not a valid duration (0 to 7 days)");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn unavailable(msg: String) -> anyhow::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(EXIT_UNAVAILABLE))
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    trtforge::measure::stats::validate_percentiles(&a.percentiles)?;
    let kind = ext(&a.target);
    let is_recipe = matches!(kind.as_str(), "yaml" | "yml");
    let backend = match (a.backend.as_deref(), kind.as_str()) {
        (Some(b), _) => b.to_string(),
        (None, "onnx") => "ort".into(),
        (None, "engine" | "plan" | "trt") => "trt".into(),
        (None, "yaml" | "yml") => "trt".into(),
        (None, _) => bail!(
            "{}: not a recipe (.yaml), model (.onnx) or engine (.engine/.plan); pass one of those",
            a.target.display()
        ),
    };
    // Counts bound the statistics' memory (one f64 per iteration) and every loop.
    const MAX_ITERATIONS: u64 = 100_000_000;
    if a.iterations
        .is_some_and(|n| !(1..=MAX_ITERATIONS).contains(&n))
    {
        bail!("--iterations must be 1 to {MAX_ITERATIONS}");
    }
    if a.batch.is_some_and(|b| !(1..=4096).contains(&b)) {
        bail!("--batch must be 1 to 4096");
    }
    let warmup = match a.warmup.trim().parse::<u64>() {
        Ok(n) if n > MAX_ITERATIONS => {
            bail!("--warmup must be at most {MAX_ITERATIONS} iterations")
        }
        Ok(n) => Warmup::Iterations(n),
        Err(_) => Warmup::Duration(parse_duration(&a.warmup)?),
    };
    let stop = match (a.iterations, &a.duration) {
        (Some(n), _) => Stop::Iterations(n),
        (None, Some(d)) => Stop::Duration(parse_duration(d)?),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    let plan = PowerPlan {
        choice: a.power,
        sysfs_root: a.sysfs_root.clone(),
        period: parse_duration(&a.period)?,
        idle: parse_duration(&a.idle)?,
    };

    let ctx = Measure {
        warmup,
        stop,
        plan,
        args: &a,
    };
    match backend.as_str() {
        "trt" => bench_engine(&a, is_recipe, &ctx),
        _ => {
            if a.no_transfers || a.spin_wait || a.cuda_graph {
                log::warn!("--no-transfers, --spin-wait and --cuda-graph apply to TensorRT only; ignored for --backend ort");
            }
            let mut exec: Box<dyn Executor> = if is_recipe {
                let job = LoadedRecipe::load(&a.target)?.bench_job(a.batch);
                Box::new(OrtExecutor::open_seeded(
                    &job.model, &job.input, &job.shape, a.seed,
                )?)
            } else if kind == "onnx" {
                Box::new(OrtExecutor::open_model(&a.target, a.batch, a.seed)?)
            } else {
                bail!(
                    "{}: --backend ort needs an ONNX model or a recipe, not a TensorRT engine",
                    a.target.display()
                );
            };
            ctx.run(exec.as_mut())
        }
    }
}

/// Everything a measurement needs besides the executor.
struct Measure<'a> {
    warmup: Warmup,
    stop: Stop,
    plan: PowerPlan,
    args: &'a BenchArgs,
}

impl Measure<'_> {
    fn run(&self, exec: &mut dyn Executor) -> anyhow::Result<ExitCode> {
        let (a, plan) = (self.args, &self.plan);
        let (warmup, stop) = (self.warmup, self.stop);
        let info = exec.info();
        let batch = info.input_shape.first().copied().unwrap_or(1).max(1);
        let cfg = BenchConfig {
            warmup,
            stop,
            batch,
            percentiles: a.percentiles.clone(),
        };
        log::info!(
            "benching {} ({}), input {:?}",
            info.artifact.display(),
            info.backend,
            info.input_shape
        );
        let measured = match session::measure(exec, &cfg, plan, &Roots::with_sysfs(&a.sysfs_root)) {
            Ok(m) => m,
            Err(e @ trtforge::Error::Unavailable { .. }) => return unavailable(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        let report = BenchReport::new(info, &cfg, plan, measured)?;
        for w in &report.warnings {
            log::warn!("{w}");
        }
        let files = match &a.out {
            Some(dir) => Some(report.write_all(dir)?),
            None => None,
        };
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_table(&report);
            if let Some(f) = &files {
                println!("report: {}", f.json.display());
                println!("        {}", f.markdown.display());
                for s in &f.svgs {
                    println!("        {}", s.display());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The engine of `a.target` (an engine file, or the recipe's built engine) on GPU 0.
#[cfg(feature = "tensorrt")]
fn bench_engine(a: &BenchArgs, is_recipe: bool, m: &Measure) -> anyhow::Result<ExitCode> {
    use trtforge::measure::trt_exec::{with_engine, TrtOptions};
    let path = if is_recipe {
        LoadedRecipe::load(&a.target)?.build_job()?.engine
    } else {
        a.target.clone()
    };
    let opts = TrtOptions {
        no_transfers: a.no_transfers,
        spin_wait: a.spin_wait,
        cuda_graph: a.cuda_graph,
        batch: a.batch,
        seed: a.seed,
    };
    let r = with_engine(&path, |engine, gpu| {
        let io = trtforge::measure::cuda_io::CudaIo::new(gpu.clone())?;
        let mut exec =
            trtforge::measure::trt_exec::TrtExecutor::new(engine, &path, Box::new(io), opts)?;
        m.run(&mut exec)
            .map_err(|e| trtforge::Error::Invalid(format!("{e:#}")))
    });
    match r {
        Ok(code) => Ok(code),
        Err(e @ trtforge::Error::Unavailable { .. }) => unavailable(e.to_string()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(feature = "tensorrt"))]
fn bench_engine(a: &BenchArgs, _: bool, _: &Measure) -> anyhow::Result<ExitCode> {
    unavailable(format!(
        "{}: TensorRT execution is not available: this trtforge was built without TensorRT. Rebuild with `cargo build --release --features tensorrt` on a TensorRT host; bench the ONNX model on CPU with --backend ort",
        a.target.display()
    ))
}

fn print_table(r: &BenchReport) {
    let l = &r.latency;
    println!(
        "{} ({}) input {:?} on {}",
        r.executor.artifact.display(),
        r.executor.backend,
        r.executor.input_shape,
        r.context.device_model
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "metric", "min", "mean", "median", "max"
    );
    println!(
        "{:<10} {:>10.3} {:>10.3} {:>10.3} {:>10.3}  ms (std {:.3})",
        "latency", l.min_ms, l.mean_ms, l.median_ms, l.max_ms, l.std_ms
    );
    for (n, s) in [("h2d", &r.h2d), ("compute", &r.compute), ("d2h", &r.d2h)] {
        if let Some(s) = s {
            println!(
                "{:<10} {:>10.3} {:>10.3} {:>10.3} {:>10.3}  ms",
                n, s.min_ms, s.mean_ms, s.median_ms, s.max_ms
            );
        }
    }
    let ps: Vec<String> = l
        .percentiles
        .iter()
        .map(|p| format!("p{} {:.3}", p.p, p.value_ms))
        .collect();
    println!("percentiles (ms): {}", ps.join(", "));
    println!(
        "iterations {}, throughput {}, first run {:.3} ms",
        l.count,
        r.throughput_ips
            .map(|t| format!("{t:.2}/s"))
            .unwrap_or_else(|| "n/a".into()),
        r.first_run_ms
    );
    match &r.power {
        Some(p) => {
            let e = &p.energy;
            println!(
                "power {} [{}]: avg {:.3} W, idle {}, {:.6} J/inference gross, {} net; {} samples in window, period {:.2} ms achieved",
                e.source,
                e.rails_summed.join("+"),
                e.avg_w,
                e.idle_w.map(|w| format!("{w:.3} W")).unwrap_or_else(|| "n/a".into()),
                e.j_per_inference_gross,
                e.j_per_inference_net
                    .map(|v| format!("{v:.6} J"))
                    .unwrap_or_else(|| "n/a".into()),
                e.samples_in_window,
                e.period_achieved_ms
            );
        }
        None => println!(
            "power: {}",
            r.power_unavailable.as_deref().unwrap_or("not measured")
        ),
    }
}
