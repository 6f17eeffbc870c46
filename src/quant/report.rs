//! `report.json` and its Markdown table for `trtforge quantize`.

use super::plan::{OutputError, Sensitivity, Step};
use crate::recipe::Algorithm;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct MapPair {
    pub map50: f64,
    pub map50_95: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    pub model: String,
    pub qdq_model: String,
    pub algorithm: Algorithm,
    pub calibration_images: usize,
    pub validation_images: usize,
    pub opset_from: i64,
    pub opset_to: i64,
    pub layers_quantized: usize,
    pub qdq_pairs: usize,
    pub fp32: MapPair,
    pub int8_naive: MapPair,
    /// After the plan (equal to naive when no plan was searched or applied).
    pub int8_planned: MapPair,
    pub max_map_drop: Option<f64>,
    pub gate_met: Option<bool>,
    pub layers_kept: Vec<String>,
    pub int8_mac_share_naive: f64,
    pub int8_mac_share: f64,
    /// FP32 vs the written Q/DQ model on the validation slice.
    pub output_errors: Vec<OutputError>,
    pub sensitivity: Vec<Sensitivity>,
    pub steps: Vec<Step>,
    pub out_of_time: bool,
    pub seconds: f64,
}

impl QuantizeReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Quantization of {}\n\nCalibration: {:?} on {} images; validation: {} images (disjoint by content).\n\
             Opset {} -> {}; {} layers with Q/DQ, {} activation Q/DQ pairs.\n\n\
             | model | mAP@0.5 | mAP@0.5:0.95 | INT8 MACs |\n|---|---|---|---|\n",
            self.model, self.algorithm, self.calibration_images, self.validation_images, self.opset_from,
            self.opset_to, self.layers_quantized, self.qdq_pairs
        );
        s += &format!(
            "| FP32 | {:.4} | {:.4} | 0% |\n",
            self.fp32.map50, self.fp32.map50_95
        );
        s += &format!(
            "| INT8 naive | {:.4} | {:.4} | {:.1}% |\n",
            self.int8_naive.map50,
            self.int8_naive.map50_95,
            self.int8_mac_share_naive * 100.0
        );
        s += &format!(
            "| INT8 planned ({} kept in float) | {:.4} | {:.4} | {:.1}% |\n\n",
            self.layers_kept.len(),
            self.int8_planned.map50,
            self.int8_planned.map50_95,
            self.int8_mac_share * 100.0
        );
        if let Some(g) = self.max_map_drop {
            s += &format!(
                "Gate: mAP@0.5:0.95 drop <= {g}: {}{}\n\n",
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
