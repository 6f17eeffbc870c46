//! The nightly report: every cell of the matrix as the store has it, tonight against the last
//! accepted night, the gates applied.
//!
//! Nights are compared cell by cell through the cell's name (recipe/precision/device/
//! accelerator), not its id: the id changes whenever an input does, which is what a
//! regression check is about. Figures are compared only with figures of the same kind: the
//! engine's on the device with the engine's, ONNX Runtime's with ONNX Runtime's. Latency,
//! energy and size gates apply to engine figures only; a CPU reference latency says nothing
//! about a Jetson.

use super::cell::{tool_version, Plan, SCHEMA_VERSION};
use super::run::{stored_result, CellResult, CellStatus};
use super::spec::Gates;
use super::store::Store;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Nights kept in a report's history (the trend plots' span).
pub const HISTORY_NIGHTS: usize = 60;

/// A cell's figures one night, for trends and comparisons.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub id: String,
    pub status: String,
    /// `engine` (on the device) or `onnxruntime-cpu` (reference only).
    pub source: String,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub j_per_inference: Option<f64>,
    pub engine_bytes: Option<u64>,
    pub map50_95: Option<f64>,
    /// Where `map50_95` was measured (engine, or ONNX Runtime for a Q/DQ model).
    pub map_source: Option<String>,
    /// The target's TensorRT and power mode, as the matrix declares them.
    pub tensorrt: String,
    pub power_mode: Option<String>,
    /// What the device reported while measuring (engine cells).
    #[serde(default)]
    pub measured_tensorrt: Option<String>,
    #[serde(default)]
    pub measured_power_mode: Option<String>,
}

impl Point {
    fn of(r: &CellResult) -> Point {
        let map = r.map50_95();
        let mut p = Point {
            id: r.id.clone(),
            status: r.status.name().into(),
            map50_95: map.map(|m| m.0),
            map_source: map.map(|m| m.1.to_string()),
            tensorrt: r.tensorrt.to_string(),
            power_mode: r.power_mode.clone(),
            ..Default::default()
        };
        match &r.engine {
            Some(e) => {
                p.source = "engine".into();
                p.latency_p50_ms = e.latency_p50_ms;
                p.latency_p99_ms = e.latency_p99_ms;
                p.j_per_inference = e.j_per_inference;
                p.engine_bytes = Some(e.engine_bytes);
                p.measured_tensorrt = Some(e.tensorrt.clone());
                // nvpmodel prints `MAXN (0)`: the name is what a matrix declares.
                p.measured_power_mode = e
                    .nvpmodel
                    .as_ref()
                    .map(|m| m.split(" (").next().unwrap_or(m).trim().to_string());
            }
            None => {
                p.source = "onnxruntime-cpu".into();
                p.latency_p50_ms = r.reference.latency_p50_ms;
                p.latency_p99_ms = r.reference.latency_p99_ms;
            }
        }
        p
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Night {
    pub created_unix_s: u64,
    pub cells: BTreeMap<String, Point>,
}

/// One gate a cell failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Regression {
    pub cell: String,
    pub metric: String,
    pub old: f64,
    pub new: f64,
    /// The limit, as the matrix states it (`0.015 mAP`, `+10 %`).
    pub limit: String,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NightCell {
    pub name: String,
    pub id: String,
    /// done, needs-tensorrt, failed, or missing (no result in the store).
    pub status: String,
    pub result: Option<CellResult>,
    /// The OCI manifest digest of the cell's bundle (STORE/bundles/<id>).
    #[serde(default)]
    pub bundle: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NightReport {
    pub schema_version: u32,
    pub trtforge: String,
    pub created_unix_s: u64,
    pub matrix: String,
    pub cells: Vec<NightCell>,
    pub gates: Gates,
    pub regressions: Vec<Regression>,
    /// Cells without a usable result (failed, missing): each fails the night.
    pub failures: Vec<String>,
    pub accepted: bool,
    pub baseline_created_unix_s: Option<u64>,
    /// Cells not compared with the baseline because their conditions changed.
    #[serde(default)]
    pub not_compared: Vec<String>,
    /// Earlier nights, oldest first (STORE/history.json); tonight is `night()`.
    pub history: Vec<Night>,
}

impl NightReport {
    pub fn night(&self) -> Night {
        Night {
            created_unix_s: self.created_unix_s,
            cells: self
                .cells
                .iter()
                .filter_map(|c| c.result.as_ref().map(|r| (c.name.clone(), Point::of(r))))
                .collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.accepted || (self.regressions.is_empty() && self.failures.is_empty())
    }

    pub fn read(path: &Path) -> Result<NightReport> {
        let text = crate::util::input::read_text(path, crate::util::input::TEXT)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a trtforge nightly report ({e}); pass the nightly.json of an earlier `matrix collect`",
                path.display()
            ))
        })
    }
}

/// Options of `collect`.
#[derive(Debug, Clone, Default)]
pub struct CollectOptions {
    /// Accept tonight as the new baseline whatever the gates say.
    pub accept: bool,
    /// Compare cells even when their TensorRT version or power mode differ.
    pub allow_mismatch: bool,
    /// `needs-tensorrt` cells fail the night (a device runner without TensorRT).
    pub require_engines: bool,
}

/// Merge the store's results for `plan` into tonight's report, gated against `baseline`
/// (the last accepted night); `history`: the nights before tonight, for the trends.
pub fn collect(
    store: &Store,
    plan: &Plan,
    matrix: &Path,
    gates: &Gates,
    baseline: Option<&NightReport>,
    mut history: Vec<Night>,
    opts: &CollectOptions,
) -> Result<NightReport> {
    let cells: Vec<NightCell> = plan
        .cells
        .iter()
        .map(|c| {
            let result = stored_result(store, &c.id);
            NightCell {
                name: c.name.clone(),
                id: c.id.clone(),
                status: result
                    .as_ref()
                    .map(|r| r.status.name().to_string())
                    .unwrap_or_else(|| "missing".into()),
                result,
                bundle: super::bundle::digest(store, &c.id),
            }
        })
        .collect();
    let excess = history.len().saturating_sub(HISTORY_NIGHTS - 1);
    history.drain(..excess);
    let mut report = NightReport {
        schema_version: SCHEMA_VERSION,
        trtforge: tool_version().into(),
        created_unix_s: crate::util::unix_now_s(),
        matrix: matrix.display().to_string(),
        cells,
        gates: gates.clone(),
        regressions: Vec::new(),
        failures: Vec::new(),
        not_compared: Vec::new(),
        accepted: opts.accept,
        baseline_created_unix_s: baseline.map(|b| b.created_unix_s),
        history,
    };
    let tonight = report.night();
    // Tonight collected again is not an earlier night.
    if report
        .history
        .last()
        .is_some_and(|l| same_cells(l, &tonight))
    {
        report.history.pop();
    }
    let old = baseline.map(|b| b.night());
    for c in &report.cells {
        match (c.status.as_str(), &c.result) {
            ("missing", _) => report
                .failures
                .push(format!("{}: no result in the store", c.name)),
            (_, Some(r)) if r.status == CellStatus::Failed => report.failures.push(format!(
                "{}: failed: {}",
                c.name,
                r.message.as_deref().unwrap_or("no message")
            )),
            (_, Some(r)) if r.status == CellStatus::NeedsTensorrt && opts.require_engines => report
                .failures
                .push(format!("{}: needs TensorRT (no engine built)", c.name)),
            _ => {}
        }
    }
    for (name, now) in &tonight.cells {
        let fp32 = report
            .cells
            .iter()
            .find(|c| &c.name == name)
            .and_then(|c| c.result.as_ref())
            .and_then(|r| r.reference.fp32_map50_95);
        report.regressions.extend(absolute(name, now, fp32, gates));
        if let Some(before) = old.as_ref().and_then(|o| o.cells.get(name)) {
            if let (Some(why), false) = (mismatch(name, before, now), opts.allow_mismatch) {
                report.not_compared.push(why);
                continue;
            }
            report
                .regressions
                .extend(relative(name, before, now, gates));
        }
    }
    if !opts.accept {
        report.failures.extend(report.not_compared.iter().cloned());
    }
    Ok(report)
}

/// Gates that need no earlier night: the drop from the same model's FP32 reference.
fn absolute(name: &str, now: &Point, fp32: Option<f64>, g: &Gates) -> Vec<Regression> {
    match (g.max_map_drop, now.map50_95, fp32) {
        (Some(limit), Some(m), Some(f)) if f - m > limit => vec![Regression {
            cell: name.into(),
            metric: "map50_95 drop from FP32".into(),
            old: f,
            new: m,
            limit: format!("{limit} mAP"),
        }],
        _ => Vec::new(),
    }
}

/// Nights whose conditions differ are not compared (their figures would differ anyway): the
/// declared TensorRT or power mode, or what the device reported on both nights.
fn mismatch(name: &str, before: &Point, now: &Point) -> Option<String> {
    let unset = || "unset".to_string();
    let pairs = [
        (
            "TensorRT version",
            Some(before.tensorrt.clone()),
            Some(now.tensorrt.clone()),
        ),
        (
            "power mode",
            Some(before.power_mode.clone().unwrap_or_else(unset)),
            Some(now.power_mode.clone().unwrap_or_else(unset)),
        ),
        (
            "measured TensorRT version",
            before.measured_tensorrt.clone(),
            now.measured_tensorrt.clone(),
        ),
        (
            "measured power mode",
            before.measured_power_mode.clone(),
            now.measured_power_mode.clone(),
        ),
    ];
    pairs.into_iter().find_map(|(what, a, b)| match (a, b) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "{name}: not compared: {what} was {a} in the baseline and is {b} tonight (pass --allow-mismatch to compare anyway, or --accept to start a new baseline)"
        )),
        _ => None,
    })
}

/// Two nights of the same cells (every name with the same id): one night collected twice.
fn same_cells(a: &Night, b: &Night) -> bool {
    a.cells.len() == b.cells.len()
        && a.cells
            .iter()
            .all(|(k, p)| b.cells.get(k).is_some_and(|q| q.id == p.id))
}

/// Tonight appended to `history` (replacing the last night when it holds the same cell ids:
/// a night collected twice is one night), at most [`HISTORY_NIGHTS`].
pub fn append_night(mut history: Vec<Night>, tonight: Night) -> Vec<Night> {
    if history.last().is_some_and(|l| same_cells(l, &tonight)) {
        history.pop();
    }
    history.push(tonight);
    let excess = history.len().saturating_sub(HISTORY_NIGHTS);
    history.drain(..excess);
    history
}

/// Gates against the last accepted night, on figures of the same kind.
fn relative(name: &str, before: &Point, now: &Point, g: &Gates) -> Vec<Regression> {
    let mut out = Vec::new();
    let mut push = |metric: &str, old: f64, new: f64, limit: String| {
        out.push(Regression {
            cell: name.into(),
            metric: metric.into(),
            old,
            new,
            limit,
        })
    };
    if before.map_source == now.map_source {
        if let (Some(limit), Some(a), Some(b)) =
            (g.max_map_regression, before.map50_95, now.map50_95)
        {
            if a - b > limit {
                push("map50_95", a, b, format!("{limit} mAP below the baseline"));
            }
        }
    }
    if before.source != "engine" || now.source != "engine" {
        return out;
    }
    let growth = [
        (
            "latency_p50_ms",
            before.latency_p50_ms,
            now.latency_p50_ms,
            g.max_latency_p50_regression,
        ),
        (
            "latency_p99_ms",
            before.latency_p99_ms,
            now.latency_p99_ms,
            g.max_latency_p99_regression,
        ),
        (
            "j_per_inference",
            before.j_per_inference,
            now.j_per_inference,
            g.max_energy_regression,
        ),
        (
            "engine_bytes",
            before.engine_bytes.map(|b| b as f64),
            now.engine_bytes.map(|b| b as f64),
            g.max_engine_size_growth,
        ),
    ];
    for (metric, a, b, limit) in growth {
        if let (Some(a), Some(b), Some(limit)) = (a, b, limit) {
            if a > 0.0 && b > a * (1.0 + limit) {
                push(metric, a, b, format!("+{:.0} %", limit * 100.0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_point(p50: f64, j: f64, bytes: u64, map: f64) -> Point {
        Point {
            id: "x".into(),
            status: "done".into(),
            source: "engine".into(),
            latency_p50_ms: Some(p50),
            latency_p99_ms: Some(p50 * 1.2),
            j_per_inference: Some(j),
            engine_bytes: Some(bytes),
            map50_95: Some(map),
            map_source: Some("engine".into()),
            tensorrt: "10.3.0".into(),
            power_mode: Some("MAXN".into()),
            measured_tensorrt: Some("10.3.0".into()),
            measured_power_mode: Some("MAXN".into()),
        }
    }

    fn gates() -> Gates {
        Gates {
            max_map_drop: Some(0.02),
            max_map_regression: Some(0.005),
            max_latency_p50_regression: Some(0.10),
            max_latency_p99_regression: Some(0.20),
            max_energy_regression: Some(0.10),
            max_engine_size_growth: Some(0.05),
        }
    }

    #[test]
    fn each_engine_gate_fires_past_its_limit_and_not_within_it() {
        let before = engine_point(10.0, 0.5, 1000, 0.30);
        // Just within every limit: nothing.
        let at = engine_point(10.9, 0.54, 1049, 0.296);
        assert_eq!(relative("c", &before, &at, &gates()), vec![]);
        let worse = engine_point(11.5, 0.6, 1100, 0.28);
        let metrics: Vec<String> = relative("c", &before, &worse, &gates())
            .into_iter()
            .map(|r| r.metric)
            .collect();
        assert_eq!(
            metrics,
            [
                "map50_95",
                "latency_p50_ms",
                "j_per_inference",
                "engine_bytes"
            ]
        );
        // p99 grew 15 % (limit 20 %): not listed.
    }

    #[test]
    fn reference_figures_are_not_latency_gated_and_kinds_are_not_mixed() {
        let mut before = engine_point(10.0, 0.5, 1000, 0.30);
        let mut now = engine_point(50.0, 5.0, 9000, 0.10);
        now.source = "onnxruntime-cpu".into();
        now.map_source = Some("onnxruntime-cpu".into());
        assert_eq!(relative("c", &before, &now, &gates()), vec![]);
        before.source = "onnxruntime-cpu".into();
        before.map_source = Some("onnxruntime-cpu".into());
        let r = relative("c", &before, &now, &gates());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].metric.as_str(), r[0].old, r[0].new),
            ("map50_95", 0.30, 0.10)
        );
    }

    #[test]
    fn the_fp32_drop_gate_and_the_mismatch_refusal() {
        let p = engine_point(10.0, 0.5, 1000, 0.30);
        assert!(absolute("c", &p, Some(0.315), &gates()).is_empty());
        let r = absolute("c", &p, Some(0.33), &gates());
        assert_eq!(r[0].metric, "map50_95 drop from FP32");
        let mut other = p.clone();
        other.power_mode = Some("15W".into());
        let e = mismatch("c", &p, &other).unwrap();
        assert!(
            e.contains("power mode was MAXN") && e.contains("15W"),
            "{e}"
        );
        other.power_mode = p.power_mode.clone();
        other.measured_tensorrt = Some("10.3.1".into());
        assert!(mismatch("c", &p, &other)
            .unwrap()
            .contains("measured TensorRT"));
        // A night measured without an engine is compared on what both declare.
        other.measured_tensorrt = None;
        assert!(mismatch("c", &p, &other).is_none());
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn night(t: u64, ids: &[&str]) -> Night {
        Night {
            created_unix_s: t,
            cells: ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let p = Point {
                        id: id.to_string(),
                        ..Default::default()
                    };
                    (format!("c{i}"), p)
                })
                .collect(),
        }
    }

    #[test]
    fn a_night_collected_twice_is_one_night_and_history_is_capped() {
        let h = append_night(vec![night(1, &["a"])], night(2, &["b"]));
        assert_eq!(h.len(), 2);
        let h = append_night(h, night(3, &["b"]));
        let times: Vec<u64> = h.iter().map(|n| n.created_unix_s).collect();
        assert_eq!(times, [1, 3]);
        let mut h = Vec::new();
        for t in 0..(HISTORY_NIGHTS as u64 + 5) {
            h = append_night(h, night(t, &[&t.to_string()]));
        }
        assert_eq!(h.len(), HISTORY_NIGHTS);
        assert_eq!(h[0].created_unix_s, 5);
    }
}
