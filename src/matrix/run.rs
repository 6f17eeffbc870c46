//! One cell on the runner it lands on: its prepared stages (fetched from the store, or
//! computed), the engine build, then on the device the bench and the evaluation of the engine.
//! Without TensorRT the cell does every step it can and records `needs-tensorrt` with the
//! ONNX Runtime reference figures, never an engine figure. The result is published into the
//! store atomically (see [`super::store`]).

use super::cell::{tool_version, with_output, Cell, Plan, SCHEMA_VERSION};
use super::prepare::{ensure_stage, Origin};
use super::spec::{Accelerator, BenchSpec, CellPrecision};
use super::store::{copy_entry, Area, Entry, Published, State, Store};
use crate::build::{BuildOptions, Outcome};
use crate::error::{Error, Result};
use crate::trt::TrtVersion;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    /// Engine built, benched and evaluated on the device.
    Done,
    /// Every CPU step done; the engine needs TensorRT, which this runner lacks.
    NeedsTensorrt,
    /// A step failed; `message` says which and why. Failed cells are planned again.
    Failed,
}

impl CellStatus {
    pub fn name(self) -> &'static str {
        match self {
            CellStatus::Done => "done",
            CellStatus::NeedsTensorrt => "needs-tensorrt",
            CellStatus::Failed => "failed",
        }
    }
}

/// Figures of the ONNX model the cell deploys, run by ONNX Runtime on the prepare runner's
/// CPU: the FP32 model for fp16/int8/best (ONNX Runtime cannot run TensorRT's precisions),
/// the Q/DQ model for int8-qdq.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReferenceFigures {
    /// `fp32` or `qdq`.
    pub model: String,
    pub executor: String,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub throughput_ips: Option<f64>,
    pub map50_95: Option<f64>,
    /// The FP32 model's mAP on the same images.
    pub fp32_map50_95: Option<f64>,
}

/// Figures of the engine on the device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineFigures {
    pub engine_bytes: u64,
    /// TensorRT that built it, the GPU, and the board's state while it was measured.
    pub tensorrt: String,
    pub gpu_name: String,
    pub compute_capability: String,
    pub l4t_release: Option<String>,
    pub nvpmodel: Option<String>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub throughput_ips: Option<f64>,
    pub j_per_inference: Option<f64>,
    pub map50_95: Option<f64>,
}

/// `result` of a cell's `entry.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    pub schema_version: u32,
    pub trtforge: String,
    pub id: String,
    pub name: String,
    pub recipe: String,
    pub precision: CellPrecision,
    pub device_class: String,
    pub jetpack: String,
    pub tensorrt: TrtVersion,
    pub power_mode: Option<String>,
    pub accelerator: Accelerator,
    pub status: CellStatus,
    pub message: Option<String>,
    /// What was done, in order.
    pub steps: Vec<String>,
    pub reference: ReferenceFigures,
    pub engine: Option<EngineFigures>,
    pub seconds: f64,
}

impl CellResult {
    /// The cell's own mAP: the engine's on the device, else (int8-qdq) the Q/DQ model's in
    /// ONNX Runtime, which is the model the engine is built from. None for the other
    /// precisions without an engine: FP32's figure is not theirs.
    pub fn map50_95(&self) -> Option<(f64, &'static str)> {
        if let Some(m) = self.engine.as_ref().and_then(|e| e.map50_95) {
            return Some((m, "engine"));
        }
        match (self.precision, self.reference.map50_95) {
            (CellPrecision::Int8Qdq, Some(m)) => Some((m, "onnxruntime-cpu")),
            _ => None,
        }
    }
}

/// What running one cell came to.
#[derive(Debug, Clone)]
pub struct CellRun {
    pub result: CellResult,
    /// The store already had a complete result.
    pub skipped: bool,
    pub published: Option<Published>,
}

/// The complete result of a cell in the store, if it has one.
pub fn stored_result(store: &Store, id: &str) -> Option<CellResult> {
    match store.state(Area::Cells, id) {
        State::Complete(e) => serde_json::from_value(e.result).ok(),
        _ => None,
    }
}

/// Whether this runner should (re)do a cell: no complete result, a corrupt one, a failed one,
/// or `needs-tensorrt` where this runner can build engines.
pub fn to_do(store: &Store, cell: &Cell) -> bool {
    redo(stored_result(store, &cell.id).as_ref())
}

/// [`to_do`] of a result already read.
fn redo(stored: Option<&CellResult>) -> bool {
    match stored.map(|r| r.status) {
        None | Some(CellStatus::Failed) => true,
        Some(CellStatus::Done) => false,
        Some(CellStatus::NeedsTensorrt) => crate::trt::probe().require().is_ok(),
    }
}

/// Run one cell and publish its result (also a failed one, so `collect` can say why).
/// `failed`: stages that already failed in this run (not computed again), with their errors.
pub fn run_cell(
    store: &Store,
    plan: &Plan,
    cell: &Cell,
    bench: &BenchSpec,
    failed: &BTreeMap<String, String>,
) -> Result<CellRun> {
    // One verification of the entry decides both (hashing it is the cost of a check).
    let state = store.state(Area::Cells, &cell.id);
    let stored: Option<CellResult> = match &state {
        State::Complete(e) => serde_json::from_value(e.result.clone()).ok(),
        _ => None,
    };
    if !redo(stored.as_ref()) {
        if let Some(result) = stored {
            if super::bundle::digest(store, &cell.id).is_none() {
                super::bundle::write_for_cell(store, &cell.id)?;
            }
            return Ok(CellRun {
                result,
                skipped: true,
                published: None,
            });
        }
    }
    if let State::Corrupt(why) = state {
        let dir = store.entry_dir(Area::Cells, &cell.id);
        log::warn!("{}: corrupt ({why}); rebuilding it", dir.display());
        store.discard(&dir)?;
    }
    let started = Instant::now();
    let ws = store.workspace(&cell.id)?;
    let mut result = CellResult {
        schema_version: SCHEMA_VERSION,
        trtforge: tool_version().into(),
        id: cell.id.clone(),
        name: cell.name.clone(),
        recipe: cell.recipe_name.clone(),
        precision: cell.precision,
        device_class: cell.target.device.clone(),
        jetpack: cell.target.jetpack.clone(),
        tensorrt: cell.target.tensorrt,
        power_mode: cell.target.power_mode.clone(),
        accelerator: cell.accelerator,
        status: CellStatus::Failed,
        message: None,
        steps: Vec::new(),
        reference: ReferenceFigures::default(),
        engine: None,
        seconds: 0.0,
    };
    let ctx = Ctx {
        store,
        plan,
        bench,
        failed,
    };
    if let Err(e) = steps(&ctx, cell, &ws.dir, &mut result) {
        result.status = CellStatus::Failed;
        result.message = Some(e.to_string());
    }
    result.seconds = started.elapsed().as_secs_f64();
    let value = serde_json::to_value(&result).map_err(|e| Error::internal(e.to_string()))?;
    // A failed or needs-tensorrt result in place is replaced (a `done` one that another
    // runner publishes meanwhile still wins: the rename then finds it).
    if stored_result(store, &cell.id).is_some_and(|r| r.status != CellStatus::Done) {
        store.discard(&store.entry_dir(Area::Cells, &cell.id))?;
    }
    let published = store.publish(ws, Area::Cells, &cell.id, "cell", &cell.inputs, value)?;
    // The deployable artifact of the cell, from what is now in the store.
    super::bundle::write_for_cell(store, &cell.id)?;
    let result = match published {
        Published::Written => result,
        // Another runner finished first: its result is the cell's.
        Published::AlreadyThere => stored_result(store, &cell.id).unwrap_or(result),
    };
    Ok(CellRun {
        result,
        skipped: false,
        published: Some(published),
    })
}

/// What the steps of a cell read.
struct Ctx<'a> {
    store: &'a Store,
    plan: &'a Plan,
    bench: &'a BenchSpec,
    failed: &'a BTreeMap<String, String>,
}

fn stage(ctx: &Ctx, id: &str, steps: &mut Vec<String>) -> Result<Entry> {
    if let Some(e) = ctx.failed.get(id) {
        return Err(Error::Invalid(e.clone()));
    }
    let (e, origin) = ensure_stage(ctx.store, ctx.plan, id, ctx.bench)?;
    steps.push(format!(
        "{} stage {}: {}",
        e.kind,
        &id[..12],
        match origin {
            Origin::Reused => "reused from the store",
            Origin::Computed => "computed",
        }
    ));
    Ok(e)
}

fn f64_at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn steps(ctx: &Ctx, cell: &Cell, dir: &Path, result: &mut CellResult) -> Result<()> {
    let store = ctx.store;
    let reference = stage(ctx, &cell.reference, &mut result.steps)?;
    let int8 = match &cell.int8_stage {
        Some(id) => Some(stage(ctx, id, &mut result.steps)?),
        None => None,
    };
    let fp32_map = f64_at(&reference.result, &["eval", "map50_95"]);
    let figures_of = |e: &Entry| ReferenceFigures {
        model: e.result["model"].as_str().unwrap_or("fp32").into(),
        executor: "onnxruntime-cpu".into(),
        latency_p50_ms: f64_at(&e.result, &["bench", "latency_p50_ms"]),
        latency_p99_ms: f64_at(&e.result, &["bench", "latency_p99_ms"]),
        throughput_ips: f64_at(&e.result, &["bench", "throughput_ips"]),
        map50_95: f64_at(&e.result, &["eval", "map50_95"]),
        fp32_map50_95: fp32_map,
    };
    result.reference = match (&int8, cell.precision) {
        (Some(q), CellPrecision::Int8Qdq) => figures_of(q),
        _ => figures_of(&reference),
    };

    // The engine's inputs, in the cell's workspace.
    let mut recipe = with_output(&cell.recipe, dir);
    match (cell.precision, &int8) {
        (CellPrecision::Int8 | CellPrecision::Best, Some(cal)) => {
            copy_entry(store, Area::Prepared, cal, dir)?;
        }
        (CellPrecision::Int8Qdq, Some(q)) => {
            let name = q.result["qdq_model"]
                .as_str()
                .unwrap_or(crate::quant::QDQ_MODEL_FILE);
            let to = dir.join(name);
            let from = store.file(Area::Prepared, &q.id, name);
            std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
            recipe.recipe.model = to;
        }
        _ => {}
    }
    let mut job = recipe.build_job()?;
    job.engine = dir.join(format!("{}.engine", cell.recipe_name));
    let opts = BuildOptions {
        force_calibration: false,
        cpu_calibration: false,
        allow_tensorrt_mismatch: false,
    };
    match crate::build::run(&job, opts)? {
        Outcome::Unavailable { plan, missing, .. } => {
            result
                .steps
                .extend(plan.steps.iter().map(|s| s.to_string()));
            result.steps.push(format!(
                "not done: build {} engine: {missing}",
                plan.precision_name()
            ));
            result.status = CellStatus::NeedsTensorrt;
            result.message = Some(missing);
        }
        #[cfg(feature = "tensorrt")]
        Outcome::Built { plan, manifest, .. } => {
            result
                .steps
                .extend(plan.steps.iter().map(|s| s.to_string()));
            result.steps.push(format!(
                "built {} engine with TensorRT {}",
                manifest.precision, manifest.tensorrt
            ));
            let figures =
                super::device::measure_engine(&recipe, &job.engine, &manifest, ctx.bench, dir)?;
            super::device::check_power_mode(&cell.target, &figures)?;
            result.engine = Some(figures);
            result
                .steps
                .push("benched and evaluated on the device".into());
            result.status = CellStatus::Done;
        }
    }
    Ok(())
}
