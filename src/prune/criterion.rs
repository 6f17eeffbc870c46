//! How much each removable channel matters, from the weights alone.
//!
//! - `bn`: |gamma| of the BatchNormalization that scales the channel (the seed article's
//!   criterion, network slimming): only where the export kept BN; a channel no BN scales
//!   falls back to `l2`.
//! - `l1` / `l2`: the norm of every weight slice that writes or reads the channel: the
//!   source filters, depthwise filters and the consumers' input columns (Torch-Pruning's group
//!   magnitude). Exporters usually fold BN into the conv, so this is the default.
//!
//! Norms are divided by their layer's mean before they are averaged over a component, so a
//! layer with large weights does not dominate the global ranking (the same normalisation
//! Torch-Pruning applies per group).

use super::groups::{Analysis, Use};
use crate::error::Result;
use crate::onnx::{Graph, NodeId};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    Bn,
    L1,
    L2,
    /// Data-driven: the output energy each consumer loses when the channel goes and the
    /// consumer is refit, on calibration images (needs them; see `recover`).
    Recon,
    /// Data-driven, end to end: chunks of each set (in `l1` order) ranked by how far the
    /// model's outputs move when they go, per MAC saved, on calibration images (see
    /// `sensitivity`).
    Output,
}

impl Criterion {
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Bn => "bn",
            Criterion::L1 => "l1",
            Criterion::L2 => "l2",
            Criterion::Recon => "recon",
            Criterion::Output => "output",
        }
    }
}

/// Per-channel norms of a weight along `axis`, divided by their mean.
fn axis_norms(dims: &[i64], values: &[f32], axis: usize, l1: bool) -> Vec<f64> {
    let len = dims.get(axis).copied().unwrap_or(0).max(0) as usize;
    let inner: usize = dims[axis + 1..]
        .iter()
        .map(|&d| d.max(0) as usize)
        .product();
    let mut acc = vec![0f64; len];
    if len == 0 || inner == 0 {
        return acc;
    }
    for (i, &v) in values.iter().enumerate() {
        let c = (i / inner) % len;
        let v = v as f64;
        acc[c] += if l1 { v.abs() } else { v * v };
    }
    if !l1 {
        acc.iter_mut().for_each(|a| *a = a.sqrt());
    }
    normalise(acc)
}

fn normalise(mut v: Vec<f64>) -> Vec<f64> {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    if mean > 0.0 && mean.is_finite() {
        v.iter_mut().for_each(|x| *x /= mean);
    }
    v
}

/// Importance of every prunable component (by root atom); larger means keep.
pub fn importance(
    graph: &Graph,
    analysis: &Analysis,
    criterion: Criterion,
    recon: Option<&HashMap<NodeId, Vec<f64>>>,
) -> Result<HashMap<usize, f64>> {
    let mut cache: HashMap<(NodeId, u8, bool), Vec<f64>> = HashMap::new();
    let mut norms = |id: NodeId, kind: Use, l1: bool| -> Result<Vec<f64>> {
        let n = graph.node(id);
        let transpose = n.op_type == "ConvTranspose";
        let (slot, axis) = match kind {
            Use::Norm => (1, 0),
            Use::Source | Use::Depthwise => (1, usize::from(transpose)),
            Use::Consumer => (1, usize::from(!transpose)),
        };
        let key = (id, kind as u8, l1);
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        let name = graph.input(id, slot)?;
        let (dims, values) = graph
            .constant_f32(name)?
            .ok_or_else(|| graph.error(id, format!("'{name}' is not a constant")))?;
        let v = if kind == Use::Norm {
            normalise(values.iter().map(|&g| (g as f64).abs()).collect())
        } else {
            axis_norms(&dims, &values, axis, l1)
        };
        cache.insert(key, v.clone());
        Ok(v)
    };
    let mut out = HashMap::new();
    if let (Criterion::Recon, Some(costs)) = (criterion, recon) {
        for set in analysis.prunable_sets() {
            for &comp in &set.components {
                let touches = analysis.touches.get(&comp).map_or(&[][..], Vec::as_slice);
                let mut sum = 0.0;
                let mut seen = false;
                for t in touches.iter().filter(|t| t.kind == Use::Consumer) {
                    if let Some(c) = costs.get(&t.node).and_then(|v| v.get(t.channel)) {
                        sum += c;
                        seen = true;
                    }
                }
                // A channel no refit layer reads (a ConvTranspose consumer) is kept.
                out.insert(comp, if seen { sum } else { f64::INFINITY });
            }
        }
        return Ok(out);
    }
    for set in analysis.prunable_sets() {
        for &comp in &set.components {
            let touches = analysis.touches.get(&comp).map_or(&[][..], Vec::as_slice);
            let has_norm = touches.iter().any(|t| t.kind == Use::Norm);
            let use_bn = criterion == Criterion::Bn && has_norm;
            // `output` orders each set's channels by L1 and ranks the sets by measurement.
            let l1 = matches!(criterion, Criterion::L1 | Criterion::Output);
            let (mut sum, mut count) = (0.0, 0usize);
            for t in touches {
                let wanted = if use_bn {
                    t.kind == Use::Norm
                } else {
                    t.kind != Use::Norm
                };
                if !wanted {
                    continue;
                }
                let v = norms(t.node, t.kind, l1)?;
                if let Some(x) = v.get(t.channel) {
                    sum += x;
                    count += 1;
                }
            }
            out.insert(comp, if count > 0 { sum / count as f64 } else { 0.0 });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_are_per_channel_and_mean_normalised() {
        // Two output channels of 2 values each: [1, -1] and [3, 3].
        let v = axis_norms(&[2, 2], &[1.0, -1.0, 3.0, 3.0], 0, true);
        assert_eq!(v, vec![2.0 / 4.0, 6.0 / 4.0]);
        // Along axis 1 (input columns): column 0 holds 1 and 3, column 1 holds -1 and 3.
        let v = axis_norms(&[2, 2], &[1.0, -1.0, 3.0, 3.0], 1, false);
        let (a, b) = (10f64.sqrt(), 10f64.sqrt());
        assert!((v[0] - a / ((a + b) / 2.0)).abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12);
    }
}
