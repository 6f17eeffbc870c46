//! The bench loop. An [`Executor`] runs one inference per call; the harness times every call
//! on the monotonic clock (`std::time::Instant`, CLOCK_MONOTONIC on Linux), keeps every
//! per-iteration time, and marks the measured window so power samples can be clipped to it.
//!
//! Loop shape: one cold first run (reported as first-run latency), warmup by time or count,
//! then the measured window by count or duration. Inside the window the harness takes ONE
//! clock reading per iteration (the end of iteration i is the start of i+1), so its own cost
//! per iteration is one `Instant::now()` plus a push into a pre-sized vector
//! (`benches/harness_overhead.rs` prints it against a no-op executor).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Device-side split of one inference, when the executor can measure it (TensorRT with CUDA
/// events: host-to-device copy, compute, device-to-host copy). ONNX Runtime on CPU has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub h2d_ms: Option<f64>,
    pub compute_ms: Option<f64>,
    pub d2h_ms: Option<f64>,
}

impl Timing {
    /// No device-side split (host wall time only).
    pub const HOST_ONLY: Timing = Timing {
        h2d_ms: None,
        compute_ms: None,
        d2h_ms: None,
    };
}

/// What is being measured, recorded in the report and checked by `compare`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// `ort-cpu` or `tensorrt`.
    pub backend: String,
    /// The model or engine file.
    pub artifact: PathBuf,
    /// SHA-256 of the artifact, so `compare` can tell two engines apart.
    pub artifact_sha256: String,
    /// Input tensor name and shape actually fed.
    pub input_name: String,
    pub input_shape: Vec<usize>,
    /// Executor-specific facts (threads, CUDA graph, ...), free text.
    pub notes: Vec<String>,
}

/// One inference engine to be timed.
///
/// Contract for implementors (the TensorRT executor behind feature `tensorrt` implements it
/// the same way): inputs are prepared and bound before the first call; `run_once` runs one
/// complete inference (with transfers unless the executor was built with transfers off) and
/// returns only when its outputs are ready on the host, so the harness's wall time around the
/// call is the end-to-end latency; the optional [`Timing`] split is measured by the executor
/// itself (CUDA events on its one stream). `run_once` must not allocate or print on the hot
/// path: anything it does is inside the measured latency.
pub trait Executor {
    fn info(&self) -> ExecutorInfo;
    fn run_once(&mut self) -> Result<Timing>;
}

/// How long to warm up before the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warmup {
    Duration(Duration),
    Iterations(u64),
}

/// When the measured window ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Iterations(u64),
    Duration(Duration),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    pub warmup: Warmup,
    pub stop: Stop,
    /// Images per inference (the input's batch dimension), for throughput.
    pub batch: usize,
    pub percentiles: Vec<f64>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            warmup: Warmup::Duration(Duration::from_millis(200)),
            stop: Stop::Duration(Duration::from_secs(10)),
            batch: 1,
            percentiles: vec![50.0, 90.0, 95.0, 99.0],
        }
    }
}

/// One measured iteration. Times are seconds since the run's epoch (the same epoch the power
/// samplers use) and milliseconds for durations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterRecord {
    pub start_s: f64,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub h2d_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compute_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub d2h_ms: Option<f64>,
}

/// Raw result of the loop: every iteration, plus the window edges on the epoch's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    pub first_run_ms: f64,
    /// Warmup iterations, the cold first run included.
    pub warmup_iterations: u64,
    pub warmup_s: f64,
    pub window_start_s: f64,
    pub window_end_s: f64,
    pub iterations: Vec<IterRecord>,
}

impl BenchRun {
    pub fn window_s(&self) -> f64 {
        self.window_end_s - self.window_start_s
    }
    pub fn latencies_ms(&self) -> Vec<f64> {
        self.iterations.iter().map(|r| r.latency_ms).collect()
    }
}

fn secs(epoch: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(epoch).as_secs_f64()
}

/// Run the loop. `epoch` is the zero of every timestamp in the result.
pub fn run<E: Executor + ?Sized>(
    exec: &mut E,
    cfg: &BenchConfig,
    epoch: Instant,
) -> Result<BenchRun> {
    match cfg.stop {
        Stop::Iterations(0) => {
            return Err(Error::Invalid(
                "--iterations must be at least 1".to_string(),
            ))
        }
        Stop::Duration(d) if d.is_zero() => {
            return Err(Error::Invalid("--duration must be above 0".to_string()))
        }
        _ => {}
    }
    // Cold first run: model load effects (lazy allocation, kernel selection) show here.
    let t0 = Instant::now();
    exec.run_once()?;
    let first = t0.elapsed();
    let mut warm_n: u64 = 1;
    let mut warm_busy = first;
    match cfg.warmup {
        Warmup::Iterations(n) => {
            for _ in 1..n {
                let t = Instant::now();
                exec.run_once()?;
                warm_busy += t.elapsed();
                warm_n += 1;
            }
        }
        Warmup::Duration(d) => {
            while t0.elapsed() < d {
                let t = Instant::now();
                exec.run_once()?;
                warm_busy += t.elapsed();
                warm_n += 1;
            }
        }
    }
    let warmup_s = t0.elapsed().as_secs_f64();

    let capacity = match cfg.stop {
        Stop::Iterations(n) => n as usize,
        Stop::Duration(d) => {
            // Size from the warmup's mean so the window does not reallocate (a realloc of a
            // large vector would land inside one iteration's latency).
            let mean = (warm_busy.as_secs_f64() / warm_n as f64).max(1e-7);
            ((d.as_secs_f64() / mean) * 1.25 + 16.0).min(50_000_000.0) as usize
        }
    };
    let mut recs: Vec<IterRecord> = Vec::with_capacity(capacity);

    let start = Instant::now();
    let mut prev = start;
    match cfg.stop {
        Stop::Iterations(n) => {
            for _ in 0..n {
                let t = exec.run_once()?;
                let now = Instant::now();
                recs.push(record(epoch, prev, now, t));
                prev = now;
            }
        }
        Stop::Duration(d) => {
            let deadline = start + d;
            loop {
                let t = exec.run_once()?;
                let now = Instant::now();
                recs.push(record(epoch, prev, now, t));
                prev = now;
                if now >= deadline {
                    break;
                }
            }
        }
    }
    Ok(BenchRun {
        first_run_ms: first.as_secs_f64() * 1e3,
        warmup_iterations: warm_n,
        warmup_s,
        window_start_s: secs(epoch, start),
        window_end_s: secs(epoch, prev),
        iterations: recs,
    })
}

#[inline(always)]
fn record(epoch: Instant, from: Instant, to: Instant, t: Timing) -> IterRecord {
    IterRecord {
        start_s: secs(epoch, from),
        latency_ms: (to - from).as_secs_f64() * 1e3,
        h2d_ms: t.h2d_ms,
        compute_ms: t.compute_ms,
        d2h_ms: t.d2h_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl Executor for Counter {
        fn info(&self) -> ExecutorInfo {
            ExecutorInfo {
                backend: "noop".into(),
                ..Default::default()
            }
        }
        fn run_once(&mut self) -> Result<Timing> {
            self.0 += 1;
            Ok(Timing::HOST_ONLY)
        }
    }

    #[test]
    fn counts_and_window() {
        let mut c = Counter(0);
        let cfg = BenchConfig {
            warmup: Warmup::Iterations(5),
            stop: Stop::Iterations(100),
            ..Default::default()
        };
        let r = run(&mut c, &cfg, Instant::now()).unwrap();
        assert_eq!(c.0, 105);
        assert_eq!(r.warmup_iterations, 5);
        assert_eq!(r.iterations.len(), 100);
        assert!(r.window_end_s >= r.window_start_s);
        // Iterations tile the window: each starts where the previous ended.
        let sum: f64 = r.iterations.iter().map(|i| i.latency_ms).sum::<f64>() / 1e3;
        assert!((sum - r.window_s()).abs() < 1e-6);
    }
}
