//! Explicit quantization: Q/DQ ONNX models for TensorRT 10/11 from the calibration ranges
//! ([`qdq`]), the accuracy-aware mixed-precision plan ([`plan`]) and its report ([`report`]).

pub mod fp16;
pub mod plan;
pub mod qdq;
pub mod report;

pub use fp16::{to_fp16, Fp16Summary, KeepReason, KeptNode};
pub use plan::{PrecisionPlan, Validation, PLAN_FILE};
pub use qdq::{candidates, quantize, QdqOptions, QdqSummary, QuantLayer};
pub use report::QuantizeReport;

pub const QDQ_MODEL_FILE: &str = "model.qdq.onnx";
pub const REPORT_FILE: &str = "report.json";
pub const REPORT_MD_FILE: &str = "report.md";

use crate::calib::artifacts::RANGES_FILE;
use crate::calib::calibrate::{calibrate, CalibrateOptions};
use crate::error::{Error, Result};
use crate::eval::DecodeParams;
use crate::recipe::QuantizeJob;
use std::collections::HashMap;
use std::time::Instant;

/// `trtforge quantize`: calibrate (or reuse a fresh calibration), write the Q/DQ model,
/// evaluate FP32 vs INT8 on the validation slice, and (with a gate) search the plan.
pub fn run(job: &QuantizeJob) -> Result<QuantizeReport> {
    let started = Instant::now();
    let (cal_job, decoder) = (&job.calibration, job.decoder);
    let model = &*cal_job.model;
    let out = &cal_job.out;
    let mut copts = CalibrateOptions::default();
    let cal_report = match calibrate(cal_job, &copts) {
        Err(Error::Stale { path, why, .. }) => {
            log::warn!("{}: stale ({why}); recalibrating", path.display());
            copts.force = true;
            calibrate(cal_job, &copts)?
        }
        r => r?,
    };
    let ranges_path = out.join(RANGES_FILE);
    let text = std::fs::read_to_string(&ranges_path).map_err(|e| Error::io(&ranges_path, e))?;
    let ranges: HashMap<String, f32> = crate::calib::cache::parse_ranges_json(&text, &ranges_path)?
        .into_iter()
        .collect();

    let cal_set = cal_job.image_set()?;
    let val_set = &job.validation.set;
    plan::check_disjoint(&cal_set, val_set)?;
    let val = Validation::load(val_set, &job.validation.labels, &cal_job.input)?;

    let (macs, total_macs) = plan::mac_table(model, &crate::exec::OrtShapes)?;
    let params = DecodeParams::with_thresholds(job.thresholds.score, job.thresholds.iou);

    let fp_outs = plan::run_outputs(model, &val, val.len())?;
    let fp32 = plan::map_of_outputs(&fp_outs, &val, decoder, &params)?;
    let base = QdqOptions {
        ops: job.ops.clone(),
        keep_fp: Default::default(),
    };
    let (naive_model, naive_sum) = quantize(model, &ranges, &base)?;
    let naive = plan::evaluate_map(&naive_model, &val, decoder, &params)?;
    let naive_share = plan::int8_mac_share(&naive_sum.quantized, &macs, total_macs);
    log::info!("FP32 mAP@0.5:0.95 {:.4}, naive INT8 {:.4}", fp32.1, naive.1);

    let gate = job.max_map_drop;
    let (mut keep, mut sensitivity, mut steps, mut out_of_time, mut gate_met) =
        (Default::default(), vec![], vec![], false, None);
    let mut plan_out = None;
    if let Some(p) = &job.plan {
        keep = PrecisionPlan::read(p)?.keep_set();
    } else if let Some(g) = gate {
        let so = plan::SearchOptions {
            max_map_drop: g,
            min_int8_macs: job.min_int8_macs,
            sensitivity_images: job.sensitivity_images,
            time_budget: job.time_budget,
            decoder,
            params,
        };
        let r = plan::search(
            model, &ranges, &base, &val, &macs, total_macs, fp32.1, naive, &so,
        )?;
        keep = r.plan.keep_set();
        (sensitivity, steps, out_of_time, gate_met) =
            (r.ranking, r.steps, r.out_of_time, Some(r.plan.gate_met));
        plan_out = Some(r.plan);
    }
    let opts = QdqOptions {
        keep_fp: keep.clone(),
        ..base
    };
    let (qmodel, sum) = quantize(model, &ranges, &opts)?;
    let q_outs = plan::run_outputs(&qmodel, &val, val.len())?;
    let planned = plan::map_of_outputs(&q_outs, &val, decoder, &params)?;
    let share = plan::int8_mac_share(&sum.quantized, &macs, total_macs);
    // The gate as measured on the written model.
    gate_met = gate.map(|g| fp32.1 - planned.1 <= g).or(gate_met);
    if let (Some(p), Some(met)) = (plan_out.as_mut(), gate_met) {
        p.gate_met = met;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let qdq_path = out.join(QDQ_MODEL_FILE);
    qmodel.save(&qdq_path)?;
    if let Some(p) = &plan_out {
        let text = crate::error::to_json_pretty(p)?;
        crate::util::write_atomic(&out.join(PLAN_FILE), text.as_bytes())?;
    }
    let report = QuantizeReport {
        model: model.path.display().to_string(),
        qdq_model: qdq_path.display().to_string(),
        algorithm: cal_report.algorithm,
        calibration_images: cal_set.len(),
        validation_images: val.len(),
        opset_from: sum.opset_from,
        opset_to: sum.opset_to,
        layers_quantized: sum.quantized.len(),
        qdq_pairs: sum.qdq_pairs,
        fp32: report::MapPair {
            map50: fp32.0,
            map50_95: fp32.1,
        },
        int8_naive: report::MapPair {
            map50: naive.0,
            map50_95: naive.1,
        },
        int8_planned: report::MapPair {
            map50: planned.0,
            map50_95: planned.1,
        },
        max_map_drop: gate,
        gate_met,
        layers_kept: keep.into_iter().collect(),
        int8_mac_share_naive: naive_share,
        int8_mac_share: share,
        output_errors: plan::output_errors(&fp_outs, &q_outs),
        sensitivity,
        steps,
        out_of_time,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = crate::error::to_json_pretty(&report)?;
    crate::util::write_atomic(&out.join(REPORT_FILE), json.as_bytes())?;
    crate::util::write_atomic(&out.join(REPORT_MD_FILE), report.markdown().as_bytes())?;
    Ok(report)
}
