//! The device-independent stages: computed once per id on any x86 runner, shared by every
//! cell that names them. Each runs in a store workspace with the existing jobs (calibrate,
//! quantize, eval, the ONNX Runtime bench) and is published only when it succeeded.

use super::cell::{with_output, Plan, Stage, StageKind};
use super::spec::BenchSpec;
use super::store::{copy_entry, Area, Entry, State, Store};
use crate::calib::calibrate::{calibrate, CalibrateOptions};
use crate::data::InputContract;
use crate::error::{Error, Result};
use crate::eval::run::evaluate;
use crate::measure::context::Roots;
use crate::measure::ort_exec::OrtExecutor;
use crate::measure::power::PowerChoice;
use crate::measure::session::{self, PowerPlan};
use crate::measure::{BenchConfig, Executor, Stop, Warmup};
use crate::recipe::{EvalOverrides, LoadedRecipe};
use crate::report::BenchReport;
use serde_json::{json, Value};
use std::path::Path;

/// Whether an entry was found or computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Reused,
    Computed,
}

/// The complete entry of a stage, computing it (and what it needs) if the store lacks it.
pub fn ensure_stage(
    store: &Store,
    plan: &Plan,
    id: &str,
    bench: &BenchSpec,
) -> Result<(Entry, Origin)> {
    let stage = plan
        .stages
        .get(id)
        .ok_or_else(|| Error::internal(format!("stage {id} is not in the plan")))?;
    match store.state(Area::Prepared, id) {
        State::Complete(e) => return Ok((*e, Origin::Reused)),
        State::Corrupt(why) => {
            let dir = store.entry_dir(Area::Prepared, id);
            log::warn!("{}: corrupt ({why}); rebuilding it", dir.display());
            store.discard(&dir)?;
        }
        State::Missing => {}
    }
    let mut needed = Vec::new();
    for n in &stage.needs {
        needed.push(ensure_stage(store, plan, n, bench)?.0);
    }
    let ws = store.workspace(id)?;
    let result = match stage.kind {
        StageKind::Reference => reference(stage, &ws.dir, bench),
        StageKind::Calibration => calibration(stage, &ws.dir),
        StageKind::Qdq => qdq(store, stage, &needed, &ws.dir, bench),
    }
    .map_err(|e| stage_error(stage, e))?;
    store.publish(
        ws,
        Area::Prepared,
        id,
        stage.kind.name(),
        &stage.inputs,
        result,
    )?;
    match store.state(Area::Prepared, id) {
        State::Complete(e) => Ok((*e, Origin::Computed)),
        _ => Err(Error::Invalid(format!(
            "{}: the entry just written does not verify (another runner replacing it, or a failing file system); run again",
            store.entry_dir(Area::Prepared, id).display()
        ))),
    }
}

fn stage_error(stage: &Stage, e: Error) -> Error {
    Error::Invalid(format!(
        "{} stage of {} ({}): {e}",
        stage.kind.name(),
        stage.recipe.path.display(),
        stage.id.get(..12).unwrap_or(&stage.id)
    ))
}

/// ONNX Runtime on CPU, seeded random input, power off (a CPU runner's power means nothing
/// for the Jetson); reports written into `out`.
pub fn ort_bench(
    model: &Path,
    input: &InputContract,
    b: &BenchSpec,
    out: &Path,
) -> Result<BenchReport> {
    let mut exec = OrtExecutor::open_seeded(model, &input.tensor, &input.shape, 0)?;
    let cfg = BenchConfig {
        warmup: Warmup::Iterations(b.warmup),
        stop: Stop::Iterations(b.iterations),
        batch: input.shape[0].max(1),
        percentiles: vec![50.0, 90.0, 95.0, 99.0],
    };
    let plan = PowerPlan {
        choice: PowerChoice::Off,
        ..Default::default()
    };
    let measured = session::measure(&mut exec, &cfg, &plan, &Roots::default())?;
    let report = BenchReport::new(exec.info(), &cfg, &plan, measured)?;
    report.write_all(out)?;
    Ok(report)
}

/// The figures a result keeps of a bench report.
pub fn bench_figures(r: &BenchReport) -> Value {
    json!({
        "latency_p50_ms": r.latency.percentile(50.0),
        "latency_p99_ms": r.latency.percentile(99.0),
        "throughput_ips": r.throughput_ips,
        "j_per_inference": r.power.as_ref().map(|p| p.energy.j_per_inference_gross),
    })
}

/// mAP of `model` (the recipe's own when None) on the recipe's eval set, written to
/// `eval.json`; Null when the recipe has no eval set or decoder.
fn eval_into(r: &LoadedRecipe, model: Option<&Path>, dir: &Path) -> Result<Value> {
    if r.recipe.eval.is_none() || r.recipe.decoder.is_none() {
        return Ok(Value::Null);
    }
    let job = r.eval_job(&EvalOverrides {
        model: model.map(Path::to_path_buf),
        ..Default::default()
    })?;
    let rep = evaluate(&job)?;
    let text = crate::error::to_json_pretty(&rep)?;
    crate::util::write_atomic(&dir.join("eval.json"), text.as_bytes())?;
    Ok(json!({"images": rep.images, "map50": rep.map50, "map50_95": rep.map50_95}))
}

fn reference(stage: &Stage, dir: &Path, bench: &BenchSpec) -> Result<Value> {
    let r = with_output(&stage.recipe, dir);
    let eval = eval_into(&r, None, dir)?;
    let b = ort_bench(&r.model_path(), &r.recipe.input, bench, &dir.join("bench"))?;
    Ok(
        json!({"model": "fp32", "executor": "onnxruntime-cpu", "eval": eval, "bench": bench_figures(&b)}),
    )
}

fn calibration(stage: &Stage, dir: &Path) -> Result<Value> {
    let r = with_output(&stage.recipe, dir);
    let job = r.calibration_job(&Default::default())?;
    let rep = calibrate(&job, &CalibrateOptions::default())?;
    Ok(json!({
        "images": rep.images,
        "tensors": rep.tensors,
        "algorithm": rep.algorithm,
        "tensorrt": rep.tensorrt,
        "cache_header": rep.cache_header,
        "skipped": rep.skipped,
    }))
}

fn qdq(
    store: &Store,
    stage: &Stage,
    needed: &[Entry],
    dir: &Path,
    bench: &BenchSpec,
) -> Result<Value> {
    // Start from the calibration's files: quantize reuses a cache whose provenance matches.
    for e in needed {
        copy_entry(store, Area::Prepared, e, dir)?;
    }
    let r = with_output(&stage.recipe, dir);
    let job = r.quantize_job(&Default::default())?;
    let rep = crate::quant::run(&job)?;
    let model = dir.join(crate::quant::QDQ_MODEL_FILE);
    let eval = eval_into(&r, Some(&model), dir)?;
    let b = ort_bench(&model, &r.recipe.input, bench, &dir.join("bench"))?;
    Ok(json!({
        "model": "qdq",
        "executor": "onnxruntime-cpu",
        "qdq_model": crate::quant::QDQ_MODEL_FILE,
        "gate_met": rep.gate_met,
        "planned_drop": rep.planned_drop,
        "layers_kept": rep.layers_kept,
        "eval": eval,
        "bench": bench_figures(&b),
    }))
}
