//! Which refinements the Q/DQ model gets. Each refinement of the recipe is added in turn to
//! the all-INT8 model; with `auto` it is kept when the model's output error against FP32 on
//! the *selection* images falls (the sensitivity proxy of the plan). Output error, not mAP,
//! decides: on 32 images the paired mAP drop of YOLOX-nano has a 95% interval 0.03 to 0.09
//! wide, wider than what a refinement moves, while the output error is a smooth function of
//! every output value. mAP on the selection and the confirmation images is measured and reported
//! for each, but nothing is chosen on the confirmation images (their figure would no longer be
//! held out).

use super::plan::relative_error;
use super::qdq::{quantize, QdqOptions, WeightEdits};
use super::refine::Refined;
use super::validation::{evaluate_map, run_outputs, Outputs, Validation};
use crate::error::Result;
use crate::eval::DecodeParams;
use crate::onnx::Model;
use crate::recipe::{Decoder, Refinement};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// One refinement as measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RefinementReport {
    pub refinement: Refinement,
    pub kept: bool,
    /// Relative output error against FP32 on the selection images (what decides), before
    /// and with this refinement added to the ones kept before it.
    pub output_error_before: f64,
    pub output_error: f64,
    /// Naive INT8 mAP@0.5:0.95 with this refinement added to the ones kept before it.
    pub selection_map50_95: f64,
    /// On the judged images: the confirmation part, or the selection with `confirm: 0`.
    pub confirmation_map50_95: f64,
    pub detail: String,
}

/// The refinements kept, as ranges and weight edits for the Q/DQ writer.
pub struct Chosen {
    pub ranges: HashMap<String, f32>,
    pub edits: WeightEdits,
    pub reports: Vec<RefinementReport>,
}

/// Where the choice is measured.
pub struct Measure<'a> {
    pub selection: &'a Validation,
    pub confirmation: &'a Validation,
    pub decoder: Decoder,
    pub params: DecodeParams,
    /// FP32 outputs on the selection images.
    pub fp32_selection: Outputs,
}

fn detail(r: Refinement, refined: &Refined) -> String {
    match r {
        Refinement::RangeChoice => {
            let changed = refined
                .range_choices
                .iter()
                .filter(|c| c.chosen != "calibrated")
                .count();
            let ratio: f64 = refined
                .range_choices
                .iter()
                .map(|c| c.error_ratio)
                .sum::<f64>()
                / refined.range_choices.len().max(1) as f64;
            format!(
                "{changed} of {} activations took another range; reading layers' output error x{ratio:.3} on average",
                refined.range_choices.len()
            )
        }
        Refinement::WeightScales => format!(
            "{} of {} layers got other weight scales; their output error x{:.3}",
            refined.scales.len(),
            refined.layers,
            refined.weight_error_ratio
        ),
        Refinement::BiasCorrection => {
            format!("{} layers' biases corrected", refined.bias.len())
        }
        Refinement::DepthwiseEqualization => format!(
            "{} depthwise convs' input channels got their own steps; their output error x{:.3}",
            refined.equalize.len(),
            refined.equalize_error_ratio
        ),
    }
}

/// Try `order` one by one on top of `calibrated` ranges; `auto`: keep only those that lower
/// the output error, else keep all.
pub fn choose(
    model: &Model,
    calibrated: &HashMap<String, f32>,
    base: &QdqOptions,
    refined: &Refined,
    order: &[Refinement],
    auto: bool,
    m: &Measure,
) -> Result<Chosen> {
    let build = |with: &[Refinement]| -> (HashMap<String, f32>, WeightEdits) {
        let mut ranges = calibrated.clone();
        if with.contains(&Refinement::RangeChoice) {
            ranges.extend(refined.ranges.iter().map(|(k, v)| (k.clone(), *v)));
        }
        let edits = refined.edits(with);
        (ranges, edits)
    };
    let error_of = |with: &[Refinement]| -> Result<(Model, f64)> {
        let (ranges, edits) = build(with);
        let opts = QdqOptions {
            edits: Arc::new(edits),
            ..base.clone()
        };
        let q = quantize(model, &ranges, &opts)?.0;
        let outs = run_outputs(&q, m.selection, m.selection.len())?;
        Ok((q, relative_error(&m.fp32_selection, &outs)))
    };
    let mut kept: Vec<Refinement> = vec![];
    let mut best = error_of(&kept)?.1;
    let mut reports = vec![];
    for &r in order {
        let mut trial = kept.clone();
        trial.push(r);
        let (q, err) = error_of(&trial)?;
        let sel = evaluate_map(&q, m.selection, m.decoder, &m.params)?.1;
        let conf = evaluate_map(&q, m.confirmation, m.decoder, &m.params)?.1;
        let keep = !auto || err < best;
        log::info!(
            "refinement {r:?}: output error {err:.4e} ({best:.4e} before), naive INT8 mAP@0.5:0.95 {sel:.4} on selection, {conf:.4} on confirmation: {}",
            if keep { "kept" } else { "dropped" }
        );
        reports.push(RefinementReport {
            refinement: r,
            kept: keep,
            output_error_before: best,
            output_error: err,
            selection_map50_95: sel,
            confirmation_map50_95: conf,
            detail: detail(r, refined),
        });
        if keep {
            best = err;
            kept = trial;
        }
    }
    let (ranges, edits) = build(&kept);
    Ok(Chosen {
        ranges,
        edits,
        reports,
    })
}
