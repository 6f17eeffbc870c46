//! Explicit quantization: Q/DQ ONNX models for TensorRT 10/11 from the calibration ranges
//! ([`qdq`]), layer-wise refinements ([`refine`], chosen in [`choose`]), the accuracy-aware
//! mixed-precision plan ([`plan`]), the validation images split into selection and
//! confirmation parts ([`validation`]) and the report ([`report`]).

pub mod choose;
pub mod fp16;
pub mod plan;
pub mod qdq;
pub mod refine;
pub mod report;
pub mod validation;

pub use fp16::{to_fp16, Fp16Summary, KeepReason, KeptNode};
pub use plan::{PrecisionPlan, Validation, PLAN_FILE};
pub use qdq::{candidates, quantize, QdqOptions, QdqSummary, QuantLayer};
pub use report::QuantizeReport;

pub const QDQ_MODEL_FILE: &str = "model.qdq.onnx";
pub const REPORT_FILE: &str = "report.json";
pub const REPORT_MD_FILE: &str = "report.md";
/// Level of the bootstrap intervals in the report.
pub const CONFIDENCE: f64 = 0.95;

use crate::calib::artifacts::RANGES_FILE;
use crate::calib::calibrate::{calibrate, gather, CalibrateOptions};
use crate::calib::range::RangeParams;
use crate::error::{Error, Result};
use crate::eval::{self, DecodeParams};
use crate::onnx::Model;
use crate::recipe::QuantizeJob;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use validation::Outputs;

/// One model measured: (mAP@0.5, mAP@0.5:0.95) on the selection and the judged images, the
/// drop from FP32 on the judged ones, and its outputs there.
struct Figures {
    selection: (f64, f64),
    judged: (f64, f64),
    drop: eval::DropInterval,
    outs: Outputs,
}

/// (mAP@0.5, mAP@0.5:0.95) over every matched image.
fn map_pair(m: &eval::Matched) -> (f64, f64) {
    let r = m.score_all();
    (r.map50, r.map50_95)
}

/// `trtforge quantize`: calibrate (or reuse a fresh calibration), refine, (with a gate) search
/// the plan on the selection images, judge it on the confirmation images, write the Q/DQ model.
pub fn run(job: &QuantizeJob) -> Result<QuantizeReport> {
    let started = Instant::now();
    let (cal_job, decoder) = (&job.calibration, job.decoder);
    let model = &*cal_job.model;
    let out = &cal_job.out;
    // A set too small to split is refused before any work.
    let n_all = job.validation.set.len();
    let (n_sel, n_conf) = validation::split_sizes(n_all, job.validation.confirm);
    if job.validation.confirm > 0.0 && (n_sel < 2 || n_conf < 2) {
        return Err(Error::Invalid(format!(
            "{}: {n_all} validation images split into {n_sel} to choose the plan on and {n_conf} to confirm it; \
             each part needs at least 2: add images to quantize.validation or lower quantize.validation.confirm",
            job.validation.set.source().display(),
        )));
    }
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
    let text = crate::util::input::read_text(&ranges_path, crate::util::input::TEXT)?;
    let ranges: HashMap<String, f32> = crate::calib::cache::parse_ranges_json(&text, &ranges_path)?
        .into_iter()
        .collect();

    let cal_set = cal_job.image_set()?;
    let val_set = &job.validation.set;
    plan::check_disjoint(&cal_set, val_set)?;
    let all = Validation::load(val_set, &job.validation.labels, &cal_job.input)?;
    let (sel, conf) = all.split(job.validation.confirm);
    // The figures a user reads, and the gate, come from images the plan was not chosen on.
    let held_out = !conf.is_empty();
    let judge = if held_out { &conf } else { &sel };

    let (macs, total_macs) = plan::mac_table(model, &crate::exec::OrtShapes)?;
    let params = DecodeParams::with_thresholds(job.thresholds.score, job.thresholds.iou);
    let fp32_sel = plan::evaluate_map(model, &sel, decoder, &params)?;
    let fp_outs = plan::run_outputs(model, judge, judge.len())?;
    let fp_matched = validation::matched_of_outputs(&fp_outs, judge, decoder, &params)?;
    let fp32 = map_pair(&fp_matched);
    // A model's figures: mAP on the selection images, and on the judged ones its outputs,
    // mAP and drop from FP32 with the bootstrap interval.
    let figures = |m: &Model| -> Result<Figures> {
        let outs = plan::run_outputs(m, judge, judge.len())?;
        let matched = validation::matched_of_outputs(&outs, judge, decoder, &params)?;
        let drop = eval::drop_interval(
            &fp_matched,
            &matched,
            eval::bootstrap::RESAMPLES,
            CONFIDENCE,
        )?;
        Ok(Figures {
            selection: plan::evaluate_map(m, &sel, decoder, &params)?,
            judged: map_pair(&matched),
            drop,
            outs,
        })
    };
    let mut base = QdqOptions {
        ops: job.ops.clone(),
        ..Default::default()
    };
    let (naive_model, naive_sum) = quantize(model, &ranges, &base)?;
    crate::exec::check_loads(&naive_model)?;
    let naive = figures(&naive_model)?;
    let naive_share = plan::int8_mac_share(&naive_sum.quantized, &macs, total_macs);
    log::info!(
        "FP32 mAP@0.5:0.95 {:.4}, naive INT8 {:.4} (selection {:.4} / {:.4})",
        fp32.1,
        naive.judged.1,
        fp32_sel.1,
        naive.selection.1
    );

    // Refinements: computed on calibration images, chosen on the selection part.
    let (mut ranges_used, mut refinements, mut range_choices) = (ranges.clone(), vec![], vec![]);
    let mut refined = None;
    if !job.refine.is_empty() {
        let hists = gather(cal_job, cal_set.clone(), &CalibrateOptions::default())?.hists;
        let images: Vec<PathBuf> = cal_set
            .paths()
            .iter()
            .take(job.refine_images)
            .cloned()
            .collect();
        let found = refine::refine(&refine::RefineInput {
            model,
            ranges: &ranges,
            ops: &job.ops,
            hists: &hists,
            params: &RangeParams::from_recipe(Some(&cal_job.calibration)),
            images: &images,
            range_images: cal_set.paths(),
            contract: &cal_job.input,
        })?;
        let m = choose::Measure {
            selection: &sel,
            confirmation: judge,
            decoder,
            params,
            fp32_selection: plan::run_outputs(model, &sel, sel.len())?,
        };
        let chosen = choose::choose(
            model,
            &ranges,
            &base,
            &found,
            &job.refine,
            job.refine_auto,
            &m,
        )?;
        ranges_used = chosen.ranges;
        base.edits = Arc::new(chosen.edits);
        refinements = chosen.reports;
        range_choices = found.range_choices;
        if refinements.iter().any(|r| r.kept) {
            refined = Some(figures(&quantize(model, &ranges_used, &base)?.0)?);
        }
    }
    let ranges = ranges_used;
    let refined = refined.as_ref().unwrap_or(&naive);

    let gate = job.max_map_drop;
    let (mut keep, mut sensitivity, mut steps, mut out_of_time) =
        (Default::default(), vec![], vec![], false);
    let mut plan_out = None;
    if let Some(p) = &job.plan {
        keep = PrecisionPlan::read(p)?.keep_set();
    } else if let Some(g) = gate {
        let so = plan::SearchOptions {
            max_map_drop: g,
            min_int8_macs: job.min_int8_macs,
            time_budget: job.time_budget,
            decoder,
            params,
        };
        // The ranking's output-error proxy needs no labels: it runs on calibration images,
        // leaving every labelled selection image to the mAP steps.
        let proxy =
            validation::preprocess_images(&cal_set, job.sensitivity_images, &cal_job.input)?;
        let r = plan::search(
            model,
            &ranges,
            &base,
            &sel,
            &proxy,
            &macs,
            total_macs,
            fp32_sel.1,
            refined.selection,
            &so,
        )?;
        keep = r.plan.keep_set();
        (sensitivity, steps, out_of_time) = (r.ranking, r.steps, r.out_of_time);
        plan_out = Some(r.plan);
    }
    let opts = QdqOptions {
        keep_fp: keep.clone(),
        ..base
    };
    let (qmodel, sum) = quantize(model, &ranges, &opts)?;
    let planned = figures(&qmodel)?;
    let share = plan::int8_mac_share(&sum.quantized, &macs, total_macs);
    // The gate as measured on the written model, on the images it was not chosen on.
    let gate_met = gate.map(|g| fp32.1 - planned.judged.1 <= g);
    if let (Some(p), Some(met)) = (plan_out.as_mut(), gate_met) {
        p.gate_met = met;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let qdq_path = out.join(QDQ_MODEL_FILE);
    crate::exec::check_loads(&qmodel)?;
    let qdq_bytes = qmodel.to_bytes()?;
    let plan_text = plan_out
        .as_ref()
        .map(crate::error::to_json_pretty)
        .transpose()?;
    let pair = |m: (f64, f64)| report::MapPair {
        map50: m.0,
        map50_95: m.1,
    };
    let report = QuantizeReport {
        model: model.path.display().to_string(),
        qdq_model: qdq_path.display().to_string(),
        algorithm: cal_report.algorithm,
        calibration_images: cal_set.len(),
        validation_images: n_all,
        selection_images: sel.len(),
        confirmation_images: conf.len(),
        judged_on_held_out: held_out,
        opset_from: sum.opset_from,
        opset_to: sum.opset_to,
        layers_quantized: sum.quantized.len(),
        qdq_pairs: sum.qdq_pairs,
        fp32: pair(fp32),
        int8_naive: pair(naive.judged),
        int8_planned: pair(planned.judged),
        naive_drop: naive.drop,
        int8_refined: pair(refined.judged),
        refined_drop: refined.drop,
        refinements,
        range_choices,
        planned_drop: planned.drop,
        selection: report::SelectionFigures {
            fp32: pair(fp32_sel),
            int8_naive: pair(naive.selection),
            int8_refined: pair(refined.selection),
            int8_planned: pair(planned.selection),
        },
        max_map_drop: gate,
        gate_met,
        images_to_resolve_gate: gate.and_then(|g| planned.drop.images_for_half_width(g / 3.0)),
        layers_kept: keep.into_iter().collect(),
        int8_mac_share_naive: naive_share,
        int8_mac_share: share,
        output_errors: plan::output_errors(&fp_outs, &planned.outs),
        sensitivity,
        steps,
        out_of_time,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = crate::error::to_json_pretty(&report)?;
    let markdown = report.markdown();
    // One set: the Q/DQ model, its plan and the report that describes them, all staged
    // before any is renamed into place.
    let (plan_path, report_path, md_path) = (
        out.join(PLAN_FILE),
        out.join(REPORT_FILE),
        out.join(REPORT_MD_FILE),
    );
    let mut set: Vec<(&Path, &[u8])> = vec![(&qdq_path, &qdq_bytes)];
    if let Some(text) = &plan_text {
        set.push((&plan_path, text.as_bytes()));
    }
    set.push((&report_path, json.as_bytes()));
    set.push((&md_path, markdown.as_bytes()));
    crate::util::write_set_atomic(&set)?;
    Ok(report)
}
