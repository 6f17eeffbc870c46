//! One full measurement, in this order:
//! 1. device context (model, L4T, nvpmodel, clocks, temperatures before);
//! 2. power sampler started (its own thread);
//! 3. idle baseline: the executor is loaded but not running, for a fixed time;
//! 4. cold first run, warmup, measured window (the harness);
//! 5. sampler stopped after one more sample, energy integrated over the window only;
//! 6. temperatures after, warnings.

use super::context::{self, DeviceContext, Roots};
use super::energy::{self, EnergyReport};
use super::harness::{self, BenchConfig, BenchRun, Executor};
use super::power::{self, PowerChoice, PowerTrace, RunningSampler};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How power is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerPlan {
    pub choice: PowerChoice,
    pub sysfs_root: PathBuf,
    pub period: Duration,
    /// Idle baseline length (0 = none).
    pub idle: Duration,
}

impl Default for PowerPlan {
    fn default() -> Self {
        PowerPlan {
            choice: PowerChoice::Auto,
            sysfs_root: "/sys".into(),
            period: Duration::from_millis(20),
            idle: Duration::from_secs(2),
        }
    }
}

/// Power results of a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerResult {
    pub energy: EnergyReport,
    /// Idle span on the run clock, seconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idle_span_s: Option<(f64, f64)>,
    pub trace: PowerTrace,
}

#[derive(Debug, Clone)]
pub struct Measured {
    pub run: BenchRun,
    pub power: Option<PowerResult>,
    /// Why there is no power result (auto found no sensor, or `off`).
    pub power_unavailable: Option<String>,
    pub context: DeviceContext,
}

pub fn measure<E: Executor + ?Sized>(
    exec: &mut E,
    cfg: &BenchConfig,
    plan: &PowerPlan,
    roots: &Roots,
) -> Result<Measured> {
    let mut ctx = context::collect(roots);
    let epoch = Instant::now();
    let sampler = power::start(plan.choice, &plan.sysfs_root, plan.period, epoch)?;
    let mut idle_span = None;
    if let Some(s) = &sampler {
        // Let the first sample land before the idle span opens, so the span is covered.
        let settle = match s {
            RunningSampler::Polled(_) => (plan.period * 2).max(Duration::from_millis(50)),
            RunningSampler::Tegrastats(_) => plan.period * 2 + Duration::from_millis(500),
        };
        std::thread::sleep(settle);
        if !plan.idle.is_zero() {
            let a = epoch.elapsed().as_secs_f64();
            std::thread::sleep(plan.idle);
            idle_span = Some((a, epoch.elapsed().as_secs_f64()));
        }
    }
    let run = harness::run(exec, cfg, epoch)?;
    let (power, power_unavailable) = match sampler {
        None => (
            None,
            Some(match plan.choice {
                PowerChoice::Off => "power measurement off (--power off)".to_string(),
                _ => "no power sensor found (no INA238 or INA3221 under the sysfs root, no NVML)"
                    .to_string(),
            }),
        ),
        Some(s) => {
            let trace = s.stop()?;
            let n = run.iterations.len() as u64 * cfg.batch as u64;
            let e = energy::compute(&trace, (run.window_start_s, run.window_end_s), idle_span, n)?;
            (
                Some(PowerResult {
                    energy: e,
                    idle_span_s: idle_span,
                    trace,
                }),
                None,
            )
        }
    };
    ctx.finish(roots);
    Ok(Measured {
        run,
        power,
        power_unavailable,
        context: ctx,
    })
}
