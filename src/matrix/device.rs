//! A built engine measured on the device the cell runs on (feature `tensorrt`): the same
//! bench and evaluation `trtforge bench` and `trtforge eval --engine` run, with the matrix's
//! bench settings. Reports go into the cell's workspace beside the engine.

use super::run::EngineFigures;
use super::spec::BenchSpec;
use crate::build::Manifest;
use crate::error::{Error, Result};
use crate::eval::run::evaluate_with;
use crate::measure::context::Roots;
use crate::measure::cuda_io::CudaIo;
use crate::measure::session::{self, PowerPlan};
use crate::measure::trt_exec::{infer_with_engine, with_engine, TrtExecutor, TrtOptions};
use crate::measure::{BenchConfig, Executor, Stop, Warmup};
use crate::recipe::LoadedRecipe;
use crate::report::BenchReport;
use std::path::Path;

/// One engine measured at a time: cells run with `-j N` on one board would share its GPU and
/// distort each other's figures (their builds still overlap).
static ON_THE_DEVICE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The board must be in the power mode the target names (nvpmodel prints `MAXN (0)`).
pub fn check_power_mode(t: &super::spec::TargetSpec, f: &EngineFigures) -> Result<()> {
    let (Some(want), Some(have)) = (&t.power_mode, &f.nvpmodel) else {
        return Ok(());
    };
    let name = have.split(" (").next().unwrap_or(have).trim();
    if name.eq_ignore_ascii_case(want) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the board is in power mode '{have}' but target {} names '{want}': set it (sudo nvpmodel -m N) and run the cell again; its figures are not recorded",
        t.device
    )))
}

pub fn measure_engine(
    recipe: &LoadedRecipe,
    engine: &Path,
    manifest: &Manifest,
    b: &BenchSpec,
    dir: &Path,
) -> Result<EngineFigures> {
    let _one_at_a_time = ON_THE_DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    let batch = recipe.recipe.input.shape[0].max(1);
    let plan = PowerPlan {
        choice: b.power,
        ..Default::default()
    };
    let opts = TrtOptions {
        no_transfers: false,
        spin_wait: false,
        cuda_graph: false,
        batch: None,
        seed: 0,
    };
    let report = with_engine(engine, |e, gpu| {
        let io = CudaIo::new(gpu.clone())?;
        let mut exec = TrtExecutor::new(e, engine, Box::new(io), opts)?;
        // The batch the engine runs (a dynamic batch runs its profile's opt), as `bench` does.
        let cfg = BenchConfig {
            warmup: Warmup::Iterations(b.warmup),
            stop: Stop::Iterations(b.iterations),
            batch: exec.info().input_shape.first().copied().unwrap_or(1).max(1),
            percentiles: vec![50.0, 90.0, 95.0, 99.0],
        };
        let measured =
            session::measure(&mut exec, &cfg, &plan, &Roots::with_sysfs(&plan.sysfs_root))?;
        BenchReport::new(exec.info(), &cfg, &plan, measured)
    })?;
    report.write_all(&dir.join("bench"))?;
    let map50_95 = match (&recipe.recipe.eval, recipe.recipe.decoder) {
        (Some(_), Some(_)) => {
            let job = recipe.eval_job(&Default::default())?;
            let name = engine.display().to_string();
            let rep = infer_with_engine(engine, batch, |x| evaluate_with(&job, x, &name))?;
            let text = crate::error::to_json_pretty(&rep)?;
            crate::util::write_atomic(&dir.join("eval.json"), text.as_bytes())?;
            Some(rep.map50_95)
        }
        _ => None,
    };
    let engine_bytes = std::fs::metadata(engine)
        .map_err(|e| Error::io(engine, e))?
        .len();
    Ok(EngineFigures {
        engine_bytes,
        tensorrt: manifest.tensorrt.clone(),
        gpu_name: manifest.gpu_name.clone(),
        compute_capability: manifest.compute_capability.clone(),
        l4t_release: report.context.l4t_release.clone(),
        nvpmodel: report.context.nvpmodel.clone(),
        latency_p50_ms: report.latency.percentile(50.0),
        latency_p99_ms: report.latency.percentile(99.0),
        throughput_ips: report.throughput_ips,
        j_per_inference: report
            .power
            .as_ref()
            .map(|p| p.energy.j_per_inference_gross),
        map50_95,
    })
}
