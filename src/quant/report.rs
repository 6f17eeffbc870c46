//! `report.json` and its Markdown table for `trtforge quantize`.

use super::choose::RefinementReport;
use super::plan::{OutputError, Sensitivity, Step};
use super::refine::RangeChoice;
use crate::eval::DropInterval;
use crate::recipe::Algorithm;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct MapPair {
    pub map50: f64,
    pub map50_95: f64,
}

/// The same three models on the images the plan was chosen on.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionFigures {
    pub fp32: MapPair,
    pub int8_naive: MapPair,
    pub int8_refined: MapPair,
    pub int8_planned: MapPair,
}

/// `fp32`, `int8_naive`, `int8_planned`, the drops and the gate are measured on the
/// confirmation images (the held-out part of the validation set) unless `judged_on_held_out`
/// is false (`quantize.validation.confirm: 0`); `selection` has the figures on the images the
/// plan was chosen on.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    pub model: String,
    pub qdq_model: String,
    pub algorithm: Algorithm,
    pub calibration_images: usize,
    pub validation_images: usize,
    pub selection_images: usize,
    pub confirmation_images: usize,
    pub judged_on_held_out: bool,
    pub opset_from: i64,
    pub opset_to: i64,
    pub layers_quantized: usize,
    pub qdq_pairs: usize,
    pub fp32: MapPair,
    pub int8_naive: MapPair,
    /// After the plan (equal to naive when no plan was searched or applied).
    pub int8_planned: MapPair,
    /// FP32 minus INT8 mAP@0.5:0.95 with its bootstrap interval (paired, over images).
    pub naive_drop: DropInterval,
    /// All-INT8 with the refinements kept (equal to naive when none was).
    pub int8_refined: MapPair,
    pub refined_drop: DropInterval,
    pub refinements: Vec<RefinementReport>,
    pub range_choices: Vec<RangeChoice>,
    pub planned_drop: DropInterval,
    pub selection: SelectionFigures,
    pub max_map_drop: Option<f64>,
    pub gate_met: Option<bool>,
    /// Images an interval of half-width gate / 3 would need (the bootstrap's standard error
    /// scaled as 1/sqrt(n)): enough to tell a drop of 2/3 of the gate from one of 4/3.
    pub images_to_resolve_gate: Option<usize>,
    pub layers_kept: Vec<String>,
    pub int8_mac_share_naive: f64,
    pub int8_mac_share: f64,
    /// FP32 vs the written Q/DQ model on the judged images.
    pub output_errors: Vec<OutputError>,
    pub sensitivity: Vec<Sensitivity>,
    pub steps: Vec<Step>,
    pub out_of_time: bool,
    pub seconds: f64,
}

impl QuantizeReport {
    pub fn markdown(&self) -> String {
        let judged = if self.judged_on_held_out {
            format!(
                "the plan was chosen on {} of the {} validation images and every figure below is \
                 measured on the other {} (held out; disjoint from calibration by content)",
                self.selection_images, self.validation_images, self.confirmation_images
            )
        } else {
            format!(
                "the plan was chosen and is judged on the same {} validation images \
                 (quantize.validation.confirm: 0); these figures are optimistic",
                self.selection_images
            )
        };
        let mut s = format!(
            "# Quantization of {}\n\nCalibration: {:?} on {} images; {judged}.\n\
             Opset {} -> {}; {} layers with Q/DQ, {} activation Q/DQ pairs.\n\n\
             | model | mAP@0.5 | mAP@0.5:0.95 | drop from FP32 [{:.0}% interval] | INT8 MACs |\n|---|---|---|---|---|\n",
            self.model, self.algorithm, self.calibration_images, self.opset_from,
            self.opset_to, self.layers_quantized, self.qdq_pairs, self.planned_drop.level * 100.0
        );
        s += &format!(
            "| FP32 | {:.4} | {:.4} | | 0% |\n",
            self.fp32.map50, self.fp32.map50_95
        );
        let drop = |d: &DropInterval| format!("{:.4} [{:.4}, {:.4}]", d.drop, d.low, d.high);
        s += &format!(
            "| INT8 naive | {:.4} | {:.4} | {} | {:.1}% |\n",
            self.int8_naive.map50,
            self.int8_naive.map50_95,
            drop(&self.naive_drop),
            self.int8_mac_share_naive * 100.0
        );
        if !self.refinements.is_empty() {
            s += &format!(
                "| INT8 refined (all INT8) | {:.4} | {:.4} | {} | {:.1}% |\n",
                self.int8_refined.map50,
                self.int8_refined.map50_95,
                drop(&self.refined_drop),
                self.int8_mac_share_naive * 100.0
            );
        }
        s += &format!(
            "| INT8 planned ({} kept in float) | {:.4} | {:.4} | {} | {:.1}% |\n\n",
            self.layers_kept.len(),
            self.int8_planned.map50,
            self.int8_planned.map50_95,
            drop(&self.planned_drop),
            self.int8_mac_share * 100.0
        );
        if self.judged_on_held_out {
            let sel = &self.selection;
            s += &format!(
                "On the {} selection images: FP32 {:.4}, naive {:.4}, refined {:.4}, planned {:.4} (mAP@0.5:0.95).\n\n",
                self.selection_images,
                sel.fp32.map50_95,
                sel.int8_naive.map50_95,
                sel.int8_refined.map50_95,
                sel.int8_planned.map50_95
            );
        }
        if let Some(g) = self.max_map_drop {
            s += &format!(
                "Gate: mAP@0.5:0.95 drop <= {g} on {} images: {}{}\n",
                self.planned_drop.images,
                if self.gate_met == Some(true) {
                    "met"
                } else {
                    "NOT met"
                },
                if self.out_of_time {
                    " (search stopped on its time budget)"
                } else {
                    ""
                }
            );
            if let Some(n) = self.images_to_resolve_gate {
                s += &format!(
                    "The drop's interval is {:.4} wide on {} images; resolving this gate (half-width {:.4}) needs about {n} images.\n",
                    self.planned_drop.high - self.planned_drop.low,
                    self.planned_drop.images,
                    g / 3.0
                );
            }
            s += "\n";
        }
        if !self.refinements.is_empty() {
            s += "| refinement (added in turn) | output error (selection) | selection mAP | confirmation mAP | kept | what it did |\n|---|---|---|---|---|---|\n";
            for r in &self.refinements {
                s += &format!(
                    "| {:?} | {:.4e} -> {:.4e} | {:.4} | {:.4} | {} | {} |\n",
                    r.refinement,
                    r.output_error_before,
                    r.output_error,
                    r.selection_map50_95,
                    r.confirmation_map50_95,
                    if r.kept { "yes" } else { "no" },
                    r.detail
                );
            }
            s += "\n";
        }
        s += "| output | cosine | max abs error |\n|---|---|---|\n";
        for e in &self.output_errors {
            s += &format!("| {} | {:.5} | {:.4} |\n", e.output, e.cosine, e.max_abs);
        }
        if !self.layers_kept.is_empty() {
            s += &format!("\nKept in float: {}\n", self.layers_kept.join(", "));
        }
        if !self.sensitivity.is_empty() {
            s += "\n| rank | layer | op | MACs | error gain |\n|---|---|---|---|---|\n";
            for (i, r) in self.sensitivity.iter().take(15).enumerate() {
                s += &format!(
                    "| {i} | {} | {} | {} | {:.3e} |\n",
                    r.node, r.op, r.macs, r.gain
                );
            }
        }
        s
    }
}
