//! The bench report: one JSON document (schema below, versioned by [`SCHEMA_VERSION`]), a
//! Markdown summary and SVG plots written next to it.
//!
//! Field names are stable; a change that renames or re-means a field bumps the version, and
//! [`BenchReport::load`] refuses other versions with the fix in the message.

use crate::measure::context::DeviceContext;
use crate::measure::harness::{BenchConfig, ExecutorInfo, IterRecord, Stop, Warmup};
use crate::measure::session::{Measured, PowerPlan, PowerResult};
use crate::measure::stats::{self, Summary};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the JSON layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// The settings of the run, flattened for readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warmup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warmup_iterations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iterations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_s: Option<f64>,
    pub batch: usize,
    pub percentiles: Vec<f64>,
    /// `auto`, `off`, `ina238`, `ina3221`, `tegrastats`, `nvml`.
    pub power: String,
    pub power_period_ms: f64,
    pub idle_s: f64,
    pub percentile_definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema_version: u32,
    pub tool_version: String,
    /// Seconds since the Unix epoch when the report was made.
    pub created_unix_s: u64,
    pub executor: ExecutorInfo,
    pub settings: RunSettings,
    pub context: DeviceContext,
    /// Host wall time per inference (the executor's `run_once`), ms.
    pub latency: Summary,
    /// Device-side split, when the executor measures it (TensorRT).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub h2d: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compute: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub d2h: Option<Summary>,
    /// Images per second over the window (iterations × batch / window); null if the window
    /// had zero length on the clock.
    pub throughput_ips: Option<f64>,
    pub first_run_ms: f64,
    pub warmup_iterations: u64,
    pub warmup_s: f64,
    pub window_start_s: f64,
    pub window_end_s: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power: Option<PowerResult>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power_unavailable: Option<String>,
    pub warnings: Vec<String>,
    /// Every measured iteration, in order.
    pub iterations: Vec<IterRecord>,
}

fn split(
    its: &[IterRecord],
    f: impl Fn(&IterRecord) -> Option<f64>,
    ps: &[f64],
) -> Option<Summary> {
    let v: Option<Vec<f64>> = its.iter().map(f).collect();
    stats::summarize(&v?, ps)
}

impl BenchReport {
    pub fn new(
        executor: ExecutorInfo,
        cfg: &BenchConfig,
        plan: &PowerPlan,
        m: Measured,
    ) -> Result<Self> {
        let ps = &cfg.percentiles;
        let its = &m.run.iterations;
        let latency = stats::summarize(&m.run.latencies_ms(), ps)
            .ok_or_else(|| Error::internal("the bench measured no iteration"))?;
        let mut warnings = m.context.warnings.clone();
        if latency.cv_percent > 10.0 {
            warnings.push(format!(
                "latency is unstable (coefficient of variation {:.1} %): lock clocks, close other work, or run longer",
                latency.cv_percent
            ));
        }
        if let Some(p) = &m.power {
            if p.energy.samples_in_window < 10 {
                warnings.push(format!(
                    "only {} power samples fell inside the measured window: run longer (--duration) for a trustworthy energy figure",
                    p.energy.samples_in_window
                ));
            }
        }
        let (warmup_ms, warmup_iterations) = match cfg.warmup {
            Warmup::Duration(d) => (Some(d.as_secs_f64() * 1e3), None),
            Warmup::Iterations(n) => (None, Some(n)),
        };
        let (iterations, duration_s) = match cfg.stop {
            Stop::Iterations(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        let created = crate::util::unix_now_s();
        Ok(BenchReport {
            schema_version: SCHEMA_VERSION,
            tool_version: crate::TOOL_VERSION.to_string(),
            created_unix_s: created,
            executor,
            settings: RunSettings {
                warmup_ms,
                warmup_iterations,
                iterations,
                duration_s,
                batch: cfg.batch,
                percentiles: ps.clone(),
                power: serde_json::to_value(plan.choice)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                power_period_ms: plan.period.as_secs_f64() * 1e3,
                idle_s: plan.idle.as_secs_f64(),
                percentile_definition: "trtexec: ascending sort, index max(n-1-floor((1-p/100)*n), 0); median = mean of the two middle values for even n; std = population".into(),
            },
            h2d: split(its, |r| r.h2d_ms, ps),
            compute: split(its, |r| r.compute_ms, ps),
            d2h: split(its, |r| r.d2h_ms, ps),
            throughput_ips: stats::throughput(its.len(), cfg.batch, m.run.window_s()),
            first_run_ms: m.run.first_run_ms,
            warmup_iterations: m.run.warmup_iterations,
            warmup_s: m.run.warmup_s,
            window_start_s: m.run.window_start_s,
            window_end_s: m.run.window_end_s,
            latency,
            power: m.power,
            power_unavailable: m.power_unavailable,
            context: m.context,
            warnings,
            iterations: m.run.iterations,
        })
    }

    /// Read a report, refusing other schema versions.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::util::input::read(path, crate::util::input::TEXT)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!("{}: not a JSON bench report: {e}", path.display()))
        })?;
        match v.get("schema_version").and_then(|s| s.as_u64()) {
            Some(n) if n == SCHEMA_VERSION as u64 => {}
            Some(n) => {
                return Err(Error::Invalid(format!(
                    "{}: report schema_version {n}, this trtforge reads {SCHEMA_VERSION}; re-run the bench with this version",
                    path.display()
                )))
            }
            None => {
                return Err(Error::Invalid(format!(
                    "{}: no schema_version: not a trtforge bench report (write one with `trtforge bench --out DIR`)",
                    path.display()
                )))
            }
        }
        if let Some(bad) = negative_power(v.get("power")) {
            return Err(Error::Invalid(format!(
                "{}: power figure {bad} is negative: not a report a measurement writes",
                path.display()
            )));
        }
        let r: BenchReport = serde_json::from_value(v).map_err(|e| {
            Error::Invalid(format!("{}: malformed bench report: {e}", path.display()))
        })?;
        r.latency.check_consistent().map_err(|m| {
            Error::Invalid(format!(
                "{}: impossible latency summary ({m}): not a report a measurement writes; re-run the bench",
                path.display()
            ))
        })?;
        Ok(r)
    }
}

/// The first negative number in a report's power section (energies, powers, counts), but
/// the figures net of idle (`j_per_inference_net`): a run can draw less than the idle
/// baseline by noise, so those may legitimately be slightly negative.
fn negative_power(v: Option<&serde_json::Value>) -> Option<f64> {
    match v? {
        serde_json::Value::Number(n) => n.as_f64().filter(|x| *x < 0.0),
        serde_json::Value::Array(a) => a.iter().find_map(|x| negative_power(Some(x))),
        serde_json::Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !k.ends_with("_net"))
            .find_map(|(_, x)| negative_power(Some(x))),
        _ => None,
    }
}
