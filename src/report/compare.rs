//! Compare two bench reports: a side-by-side table and a verdict.
//!
//! Checked for regression: latency mean, median and every percentile both runs have
//! (higher is worse), throughput (lower is worse) against the latency threshold; J/inference
//! gross and net against the energy threshold. Min, max and std are shown, not judged (they
//! are single-sample or spread figures too noisy for a gate).
//!
//! Two runs are comparable only on the same device model, the same power mode and the same
//! artifact (backend + SHA-256); otherwise [`compare`] refuses unless `force` is set, and the
//! mismatches are listed either way.

use super::bench::BenchReport;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Allowed latency increase / throughput decrease, percent.
    pub latency_pct: f64,
    /// Allowed J/inference increase, percent.
    pub energy_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            latency_pct: 5.0,
            energy_pct: 5.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub metric: String,
    pub unit: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// (new - old) / old in percent.
    pub change_pct: Option<f64>,
    /// The threshold applied, if this row is judged.
    pub limit_pct: Option<f64>,
    pub regression: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Human descriptions of each regression.
    pub regressions: Vec<String>,
    /// Device / power mode / artifact differences (compared anyway only with force).
    pub mismatches: Vec<String>,
}

impl Comparison {
    pub fn has_regression(&self) -> bool {
        !self.regressions.is_empty()
    }
}

/// Collects rows and regressions.
struct Judge {
    rows: Vec<Row>,
    regs: Vec<String>,
}

impl Judge {
    /// `higher_is_worse`: latency and energy; throughput is the other way round. `limit`
    /// `None` shows the row without judging it.
    fn row(
        &mut self,
        metric: &str,
        unit: &str,
        (old, new): (Option<f64>, Option<f64>),
        limit: Option<f64>,
        higher_is_worse: bool,
    ) {
        let change = match (old, new) {
            (Some(o), Some(n)) if o != 0.0 && o.is_finite() && n.is_finite() => {
                Some((n - o) / o.abs() * 100.0)
            }
            _ => None,
        };
        let regression = match (change, limit) {
            (Some(c), Some(l)) => {
                if higher_is_worse {
                    c > l
                } else {
                    -c > l
                }
            }
            _ => false,
        };
        if regression {
            self.regs.push(format!(
                "{metric}: {:.4} -> {:.4} {unit} ({:+.2} %, limit {}{:.2} %)",
                old.unwrap_or(f64::NAN),
                new.unwrap_or(f64::NAN),
                change.unwrap_or(f64::NAN),
                if higher_is_worse { "+" } else { "-" },
                limit.unwrap_or(f64::NAN)
            ));
        }
        self.rows.push(Row {
            metric: metric.to_string(),
            unit: unit.to_string(),
            old,
            new,
            change_pct: change,
            limit_pct: limit,
            regression,
        });
    }
}

/// What differs between the runs' identities.
pub fn mismatches(old: &BenchReport, new: &BenchReport) -> Vec<String> {
    let mut m = Vec::new();
    // One mismatch line per field that differs, with both values.
    let mut differ = |what: &str, a: String, b: String| {
        if a != b {
            m.push(format!("{what}: {a} vs {b}"));
        }
    };
    let (oc, nc) = (&old.context, &new.context);
    differ(
        "device",
        format!("'{}'", oc.device_model),
        format!("'{}'", nc.device_model),
    );
    differ(
        "power mode",
        format!("{:?}", oc.nvpmodel),
        format!("{:?}", nc.nvpmodel),
    );
    differ(
        "backend",
        old.executor.backend.clone(),
        new.executor.backend.clone(),
    );
    if old.executor.artifact_sha256 != new.executor.artifact_sha256 {
        m.push(format!(
            "engine/model: {} (sha256 {:.12}) vs {} (sha256 {:.12})",
            old.executor.artifact.display(),
            old.executor.artifact_sha256,
            new.executor.artifact.display(),
            new.executor.artifact_sha256
        ));
    }
    if old.settings.batch != new.settings.batch {
        m.push(format!(
            "batch: {} vs {}",
            old.settings.batch, new.settings.batch
        ));
    }
    m
}

pub fn compare(
    old: &BenchReport,
    new: &BenchReport,
    th: Thresholds,
    force: bool,
) -> Result<Comparison> {
    let mismatches = mismatches(old, new);
    if !mismatches.is_empty() && !force {
        return Err(Error::Invalid(format!(
            "refusing to compare runs that differ in {}; pass --force to compare anyway",
            mismatches.join("; ")
        )));
    }
    let mut j = Judge {
        rows: Vec::new(),
        regs: Vec::new(),
    };
    let (o, n) = (&old.latency, &new.latency);
    let lat = Some(th.latency_pct);
    j.row(
        "latency min",
        "ms",
        (Some(o.min_ms), Some(n.min_ms)),
        None,
        true,
    );
    j.row(
        "latency mean",
        "ms",
        (Some(o.mean_ms), Some(n.mean_ms)),
        lat,
        true,
    );
    j.row(
        "latency median",
        "ms",
        (Some(o.median_ms), Some(n.median_ms)),
        lat,
        true,
    );
    for p in &o.percentiles {
        if let Some(nv) = n.percentile(p.p) {
            j.row(
                &format!("latency p{}", p.p),
                "ms",
                (Some(p.value_ms), Some(nv)),
                lat,
                true,
            );
        }
    }
    j.row(
        "latency max",
        "ms",
        (Some(o.max_ms), Some(n.max_ms)),
        None,
        true,
    );
    j.row(
        "latency std",
        "ms",
        (Some(o.std_ms), Some(n.std_ms)),
        None,
        true,
    );
    j.row(
        "throughput",
        "inf/s",
        (old.throughput_ips, new.throughput_ips),
        lat,
        false,
    );
    j.row(
        "first run",
        "ms",
        (Some(old.first_run_ms), Some(new.first_run_ms)),
        None,
        true,
    );
    let (oe, ne) = (
        old.power.as_ref().map(|p| &p.energy),
        new.power.as_ref().map(|p| &p.energy),
    );
    if oe.is_some() || ne.is_some() {
        let en = Some(th.energy_pct);
        j.row(
            "average power",
            "W",
            (oe.map(|e| e.avg_w), ne.map(|e| e.avg_w)),
            None,
            true,
        );
        let gross = (
            oe.map(|e| e.j_per_inference_gross),
            ne.map(|e| e.j_per_inference_gross),
        );
        j.row("J/inference gross", "J", gross, en, true);
        let net = (
            oe.and_then(|e| e.j_per_inference_net),
            ne.and_then(|e| e.j_per_inference_net),
        );
        j.row("J/inference net", "J", net, en, true);
    }
    Ok(Comparison {
        rows: j.rows,
        regressions: j.regs,
        mismatches,
    })
}
