//! Accuracy-aware INT8: rank the quantized layers by sensitivity with a cheap proxy (output
//! error with one layer left in float, on a few calibration images, which need no labels),
//! then keep the fewest layers in float until the mAP gate holds on the *selection* images
//! with a bootstrap standard error to spare ([`MARGIN_SE`]). The caller judges the result on
//! the confirmation images. The result is `precision_plan.json`: the layers to keep in
//! FP16/FP32 and why.

use super::qdq::{candidates, quantize, QdqOptions, QuantLayer};
pub use super::validation::{
    check_disjoint, evaluate_map, map_of_outputs, matched_of_outputs, run_inputs, run_outputs,
    Outputs, Validation,
};
use crate::error::{Error, Result};
use crate::eval::DecodeParams;
use crate::onnx::Model;
use crate::recipe::Decoder;
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

pub const PLAN_FILE: &str = "precision_plan.json";

/// FP32 vs Q/DQ for one output over the slice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputError {
    pub output: String,
    /// Cosine similarity of the flattened outputs, averaged over images.
    pub cosine: f64,
    pub max_abs: f64,
}

pub fn output_errors(fp: &Outputs, q: &Outputs) -> Vec<OutputError> {
    let Some(first) = fp.first() else {
        return vec![];
    };
    first
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            let (mut cos, mut max_abs) = (0.0, 0f64);
            for (a, b) in fp.iter().zip(q) {
                let (a, b) = (&a[k].1, &b[k].1);
                let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
                for (&x, &y) in a.iter().zip(b.iter()) {
                    let (x, y) = (x as f64, y as f64);
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                    max_abs = max_abs.max((x - y).abs());
                }
                cos += if na > 0.0 && nb > 0.0 {
                    dot / (na.sqrt() * nb.sqrt())
                } else {
                    1.0
                };
            }
            OutputError {
                output: name.clone(),
                cosine: cos / fp.len() as f64,
                max_abs,
            }
        })
        .collect()
}

/// The sensitivity proxy: relative squared error ||q - f||^2 / ||f||^2, averaged over
/// outputs and images.
pub fn relative_error(fp: &Outputs, q: &Outputs) -> f64 {
    let mut total = 0.0;
    let mut count = 0usize;
    for (a, b) in fp.iter().zip(q) {
        for ((_, x), (_, y)) in a.iter().zip(b) {
            let (mut e, mut n) = (0f64, 0f64);
            for (&u, &v) in x.iter().zip(y.iter()) {
                e += ((u - v) as f64).powi(2);
                n += (u as f64).powi(2);
            }
            total += if n > 0.0 { e / n } else { e };
            count += 1;
        }
    }
    total / count.max(1) as f64
}

/// One layer's sensitivity: how much the proxy error falls when it alone stays in float.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sensitivity {
    pub node: String,
    pub op: String,
    pub macs: u64,
    /// Proxy error with this layer in float (lower = the layer matters more).
    pub error_without: f64,
    /// Error of the all-INT8 model minus `error_without`.
    pub gain: f64,
}

/// A layer the plan keeps out of INT8.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeptLayer {
    pub node: String,
    pub op: String,
    pub macs: u64,
    /// Rank in the sensitivity list (0 = most sensitive).
    pub rank: usize,
    pub gain: f64,
    pub why: String,
}

/// `precision_plan.json`: read by the Q/DQ writer (no Q/DQ on `keep`) and meant for the
/// TensorRT builder (per-layer precision constraints on the implicit path).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrecisionPlan {
    pub model: String,
    /// Precision the kept layers get on the device.
    pub keep_precision: String,
    pub keep: Vec<KeptLayer>,
    pub max_map_drop: f64,
    /// As judged by `quantize` on the written model: on the confirmation images, drop <= gate
    /// (the search's one-standard-error margin applies to the selection images only).
    pub gate_met: bool,
    pub int8_mac_share: f64,
}

impl PrecisionPlan {
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::util::input::read_text(path, crate::util::input::TEXT)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: {e}; expected a precision_plan.json written by `trtforge quantize`",
                path.display()
            ))
        })
    }
    pub fn keep_set(&self) -> BTreeSet<String> {
        self.keep.iter().map(|k| k.node.clone()).collect()
    }
}

/// Settings of the search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub max_map_drop: f64,
    pub min_int8_macs: f64,
    pub time_budget: std::time::Duration,
    pub decoder: Decoder,
    pub params: DecodeParams,
}

/// One confirmed step of the search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub kept: usize,
    pub map50: f64,
    pub map50_95: f64,
    pub int8_mac_share: f64,
    /// Bootstrap standard error of the drop on the selection images.
    pub std_error: f64,
}

/// What the search found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub plan: PrecisionPlan,
    pub ranking: Vec<Sensitivity>,
    pub steps: Vec<Step>,
    pub planned_map: (f64, f64),
    /// The search stopped on its time budget.
    pub out_of_time: bool,
    pub seconds: f64,
}

/// MACs per layer (keyed by [`crate::onnx::node_key`], as every plan and summary is) and in
/// total, at the model's declared input shapes.
pub fn mac_table(
    model: &Model,
    shapes: &dyn crate::onnx::ShapeSource,
) -> Result<(HashMap<String, u64>, u64)> {
    let ins = crate::onnx::inspect_with_shapes(model, &Default::default(), shapes)?;
    let macs = ins
        .layers
        .iter()
        .map(|l| (l.node.clone(), l.macs))
        .collect();
    Ok((macs, ins.macs.unwrap_or(0)))
}

/// Share of `total` MACs in quantized weighted layers.
pub fn int8_mac_share(quantized: &[QuantLayer], macs: &HashMap<String, u64>, total: u64) -> f64 {
    let q: u64 = quantized.iter().filter_map(|l| macs.get(&l.node)).sum();
    if total == 0 {
        0.0
    } else {
        q as f64 / total as f64
    }
}

/// Standard errors of the selection images' drop that a step must leave below the gate:
/// the step that first meets the gate on a small selection set is the one whose noise
/// favoured it, so its drop on other images is larger (a winner's curse). One standard error
/// (the paired bootstrap's) is the margin; it shrinks as the selection set grows.
pub const MARGIN_SE: f64 = 1.0;

/// Bootstrap standard error of the drop from FP32 (`fp`) to the model matched as `q`.
fn drop_std_error(fp: &crate::eval::Matched, q: &crate::eval::Matched) -> Result<f64> {
    let d =
        crate::eval::drop_interval(fp, q, crate::eval::bootstrap::RESAMPLES, super::CONFIDENCE)?;
    Ok(d.std_error)
}

/// Whether a step with this drop (and bootstrap standard error of it) on the selection images
/// meets `gate` there.
pub fn meets_gate(drop: f64, std_error: f64, gate: f64) -> bool {
    drop + MARGIN_SE * std_error <= gate
}

/// The accuracy-aware search on the selection images `val`. `fp32_map` and `naive_map` are
/// their figures already measured by the caller; `proxy` holds the preprocessed (calibration)
/// images the sensitivity ranking runs on (they need no labels).
#[allow(clippy::too_many_arguments)]
pub fn search(
    model: &Model,
    ranges: &HashMap<String, f32>,
    base: &QdqOptions,
    val: &Validation,
    proxy: &[ArrayD<f32>],
    macs: &HashMap<String, u64>,
    total_macs: u64,
    fp32_map: f64,
    naive_map: (f64, f64),
    o: &SearchOptions,
) -> Result<SearchResult> {
    let started = Instant::now();
    let layers = candidates(model, ranges, &base.ops)?;
    let input = val.contract.tensor.as_str();
    let fp = run_inputs(model, input, proxy)?;
    let all = quantize(model, ranges, base)?.0;
    let base_err = relative_error(&fp, &run_inputs(&all, input, proxy)?);
    let fp_matched = matched_of_outputs(
        &run_outputs(model, val, val.len())?,
        val,
        o.decoder,
        &o.params,
    )?;
    let bar = crate::util::progress_bar(layers.len() as u64, "sensitivity");
    let mut ranking = Vec::new();
    let mut out_of_time = false;
    // Half the budget for ranking, the rest for confirming with mAP.
    let rank_budget = o.time_budget / 2;
    for l in &layers {
        if started.elapsed() > rank_budget {
            out_of_time = true;
            break;
        }
        let mut opts = base.clone();
        opts.keep_fp.insert(l.node.clone());
        let q = quantize(model, ranges, &opts)?.0;
        let err = relative_error(&fp, &run_inputs(&q, input, proxy)?);
        ranking.push(Sensitivity {
            node: l.node.clone(),
            op: l.op.clone(),
            macs: macs.get(&l.node).copied().unwrap_or(0),
            error_without: err,
            gain: base_err - err,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    ranking.sort_by(|a, b| b.gain.total_cmp(&a.gain));
    // Order of keeping: by gain, skipping layers that would push INT8 MACs under the floor.
    let budget_macs = ((1.0 - o.min_int8_macs) * total_macs as f64) as u64;
    let mut order: Vec<usize> = Vec::new();
    let mut spent = 0u64;
    for (i, s) in ranking.iter().enumerate() {
        if s.gain <= 0.0 {
            break;
        }
        if spent + s.macs <= budget_macs {
            spent += s.macs;
            order.push(i);
        }
    }
    let mut steps = Vec::new();
    let eval_k = |k: usize, steps: &mut Vec<Step>| -> Result<(f64, f64, f64, f64)> {
        let mut opts = base.clone();
        opts.keep_fp
            .extend(order[..k].iter().map(|&i| ranking[i].node.clone()));
        let (q, sum) = quantize(model, ranges, &opts)?;
        let outs = run_outputs(&q, val, val.len())?;
        let q_matched = matched_of_outputs(&outs, val, o.decoder, &o.params)?;
        let r = q_matched.score_all();
        let (m50, m) = (r.map50, r.map50_95);
        let se = drop_std_error(&fp_matched, &q_matched)?;
        let share = int8_mac_share(&sum.quantized, macs, total_macs);
        log::info!(
            "plan: {k} layers in float: mAP@0.5:0.95 {m:.4} (drop {:.4}, standard error {se:.4}), INT8 MACs {:.1}%",
            fp32_map - m,
            share * 100.0
        );
        steps.push(Step {
            kept: k,
            map50: m50,
            map50_95: m,
            int8_mac_share: share,
            std_error: se,
        });
        Ok((m50, m, share, se))
    };
    let holds = |m: f64, se: f64| meets_gate(fp32_map - m, se, o.max_map_drop);
    // Grow k geometrically until the gate holds, then bisect down to the fewest layers.
    let (mut best_k, mut best) = (0usize, (naive_map.0, naive_map.1, 0.0, 0.0));
    let naive_outs = run_outputs(&all, val, val.len())?;
    let naive_se = drop_std_error(
        &fp_matched,
        &matched_of_outputs(&naive_outs, val, o.decoder, &o.params)?,
    )?;
    let mut gate_met = holds(naive_map.1, naive_se);
    let (mut lo, mut k) = (0usize, 1usize);
    if !gate_met {
        while !order.is_empty() {
            if started.elapsed() > o.time_budget {
                out_of_time = true;
                break;
            }
            let kk = k.min(order.len());
            let r = eval_k(kk, &mut steps)?;
            if r.1 > best.1 || holds(r.1, r.3) {
                (best_k, best) = (kk, r);
            }
            if holds(r.1, r.3) {
                gate_met = true;
                break;
            }
            lo = kk;
            if kk == order.len() {
                break;
            }
            k *= 2;
        }
        if gate_met {
            let mut hi = best_k;
            while hi - lo > 1 && started.elapsed() <= o.time_budget {
                let mid = (lo + hi) / 2;
                let r = eval_k(mid, &mut steps)?;
                if holds(r.1, r.3) {
                    (hi, best_k, best) = (mid, mid, r);
                } else {
                    lo = mid;
                }
            }
        }
    }
    let kept: Vec<KeptLayer> = order[..best_k]
        .iter()
        .map(|&i| {
            let s = &ranking[i];
            KeptLayer {
                node: s.node.clone(),
                op: s.op.clone(),
                macs: s.macs,
                rank: i,
                gain: s.gain,
                why: format!(
                    "sensitivity rank {i}: keeping it in float cuts the output error from {base_err:.3e} to {:.3e}",
                    s.error_without
                ),
            }
        })
        .collect();
    let mut opts = base.clone();
    opts.keep_fp.extend(kept.iter().map(|k| k.node.clone()));
    let share = int8_mac_share(
        &quantize(model, ranges, &opts)?.1.quantized,
        macs,
        total_macs,
    );
    let plan = PrecisionPlan {
        model: model.path.display().to_string(),
        keep_precision: "fp16".into(),
        keep: kept,
        max_map_drop: o.max_map_drop,
        gate_met,
        int8_mac_share: share,
    };
    Ok(SearchResult {
        plan,
        ranking,
        steps,
        planned_map: (best.0, best.1),
        out_of_time,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_meets_the_gate_only_with_a_standard_error_to_spare() {
        assert!(meets_gate(0.005, 0.009, 0.015));
        assert!(!meets_gate(0.010, 0.009, 0.015), "0.019 > 0.015");
        assert!(meets_gate(0.015, 0.0, 0.015));
        assert!(!meets_gate(0.0151, 0.0, 0.015));
        assert!(meets_gate(-0.01, 0.02, 0.015));
    }
}
