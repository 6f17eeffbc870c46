//! Depthwise equalization: a depthwise conv's input channels each get their own quantization
//! step, although TensorRT quantizes activations per tensor. The writer realises it exactly
//! (`qdq::Equalization`: a Mul by 1/s_c before the input's Q/DQ, s_c folded into the weights).
//!
//! Why depthwise convs: their output channel reads one input channel, so the rescaling costs
//! the weights nothing (per-channel weight quantization absorbs s_c), where on an ordinary conv
//! it would trade activation error for weight error (SmoothQuant's migration). And they are
//! where per-tensor activation ranges fail: YOLOX-nano's stem depthwise Conv_44 reads a SiLU
//! output whose channels reach |x| from 0.16 to 107 on calibration images, so one range either
//! clips the wide channels or leaves the narrow ones a few steps. A SiLU in front also rules
//! out folding the scales into the producer (cross-layer equalisation needs a positively
//! homogeneous activation).
//!
//! The search is exact per channel for the same reason: channel c's amax only changes its own
//! output channels, so one run of the layer per fraction of the channel's max scores every
//! channel at once, and the per-channel argmin is the joint one.

use super::layer::{channel_sse, fake_quant, fake_quant_channels, Layer};
use crate::error::Result;
use crate::onnx::Model;
use crate::quant::qdq::Equalization;
use ndarray::{ArrayD, Axis};
use std::collections::HashMap;
use std::path::PathBuf;

/// Fractions of a channel's max |x| (over the refinement images) tried as its amax.
pub const FRACTIONS: [f32; 10] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];

/// Smallest s_c: below it a channel's step is already 1/4096 of the widest channel's, and
/// 1/s_c stays a moderate factor for the Mul TensorRT may run in FP16.
const MIN_SCALE: f32 = 1.0 / 4096.0;

/// Statistics gathered image by image (max in the first pass, errors in the second).
pub(super) struct EqualizeSearch {
    /// Per layer: the calibrated per-tensor amax of a depthwise layer's input (None: not one).
    calibrated: Vec<Option<f32>>,
    /// Per layer, per input channel: max |x|.
    max: Vec<Vec<f32>>,
    /// Per layer, per fraction, per input channel: squared output error.
    err: Vec<Vec<Vec<f64>>>,
    /// Per layer: squared output error with the calibrated per-tensor range.
    per_tensor: Vec<f64>,
}

/// What the search chose.
pub(super) struct Equalized {
    /// By node key: the layers where per-channel steps lower the output error.
    pub layers: HashMap<String, Equalization>,
    /// The equalized layers' output error with per-channel steps over that with the
    /// calibrated per-tensor range.
    pub error_ratio: f64,
}

/// The images the channel maxima come from: `all` but the refinement images `scored`, so the
/// steps are chosen, and compared with the per-tensor range, on images that did not set them.
/// A max is only a bound on the images it was taken over: scored on the same images, the
/// search lets NanoDet-m's sparse late depthwise inputs clip on others (its output error on
/// the selection images rose from 0.0196 to 0.0259; held out, it falls to 0.0183). All of
/// them when no other image is left (or nothing to equalize: none).
pub(super) fn range_images(all: &[PathBuf], scored: &[PathBuf], nothing: bool) -> Vec<PathBuf> {
    if nothing {
        return vec![];
    }
    let rest: Vec<PathBuf> = all
        .iter()
        .filter(|p| !scored.contains(p))
        .cloned()
        .collect();
    if rest.is_empty() {
        all.to_vec()
    } else {
        rest
    }
}

impl EqualizeSearch {
    pub fn new(layers: &[Layer], ranges: &HashMap<String, f32>) -> Self {
        let calibrated: Vec<Option<f32>> = layers
            .iter()
            .map(|l| l.depthwise_inputs.and(ranges.get(&l.input).copied()))
            .collect();
        let width = |li: usize| match calibrated[li] {
            Some(_) => layers[li].depthwise_inputs.unwrap_or(0),
            None => 0,
        };
        EqualizeSearch {
            max: (0..layers.len()).map(|li| vec![0.0; width(li)]).collect(),
            err: (0..layers.len())
                .map(|li| vec![vec![0.0; width(li)]; FRACTIONS.len()])
                .collect(),
            per_tensor: vec![0.0; layers.len()],
            calibrated,
        }
    }

    /// The inputs of the depthwise layers searched.
    pub fn inputs(&self, layers: &[Layer]) -> std::collections::BTreeSet<String> {
        layers
            .iter()
            .zip(&self.max)
            .filter(|(_, m)| !m.is_empty())
            .map(|(l, _)| l.input.clone())
            .collect()
    }

    /// First pass: layer `li`'s input `x`, for the per-channel max.
    pub fn observe_max(&mut self, li: usize, x: &ArrayD<f32>) {
        let m = &mut self.max[li];
        if m.is_empty() || x.ndim() < 3 || x.shape()[1] != m.len() {
            return;
        }
        for (c, lane) in x.axis_iter(Axis(1)).enumerate() {
            m[c] = lane.iter().fold(m[c], |a, v| a.max(v.abs()));
        }
    }

    /// Second pass: layer `li` on input `x`, whose FP32 output is `y0`, with FP32 weights
    /// (as the range choice scores ranges).
    pub fn observe(
        &mut self,
        model: &Model,
        li: usize,
        l: &mut Layer,
        x: &ArrayD<f32>,
        y0: &ArrayD<f32>,
    ) -> Result<()> {
        let Some(calibrated) = self.calibrated[li] else {
            return Ok(());
        };
        let inputs = self.max[li].len();
        if inputs == 0 || x.ndim() < 3 || x.shape()[1] != inputs {
            return Ok(());
        }
        let per_in = (l.channels() / inputs).max(1);
        let w = l.w.clone();
        let y = l.run(model, &fake_quant(x, calibrated), &w)?;
        self.per_tensor[li] += channel_sse(&y, y0, 1).iter().sum::<f64>();
        for (fi, f) in FRACTIONS.iter().enumerate() {
            // A channel all zero on the range images is scored at the step it is written
            // with (the calibrated range, see `choose`), not as free.
            let amax: Vec<f32> = self.max[li]
                .iter()
                .map(|m| if *m > 0.0 { m * f } else { calibrated })
                .collect();
            let y = l.run(model, &fake_quant_channels(x, &amax), &w)?;
            for (o, e) in channel_sse(&y, y0, 1).into_iter().enumerate() {
                self.err[li][fi][o / per_in] += e;
            }
        }
        Ok(())
    }

    pub fn choose(&self, layers: &[Layer]) -> Equalized {
        let (mut out, mut before, mut after) = (HashMap::new(), 0f64, 0f64);
        for (li, l) in layers.iter().enumerate() {
            let max = &self.max[li];
            if max.is_empty() || self.per_tensor[li] <= 0.0 {
                continue;
            }
            let (mut amax, mut err) = (vec![0f32; max.len()], 0f64);
            for c in 0..max.len() {
                let best = (0..FRACTIONS.len())
                    .min_by(|&a, &b| self.err[li][a][c].total_cmp(&self.err[li][b][c]))
                    .unwrap_or(0);
                amax[c] = if max[c] > 0.0 {
                    max[c] * FRACTIONS[best]
                } else {
                    self.calibrated[li].unwrap_or(0.0)
                };
                err += self.err[li][best][c];
            }
            let widest = amax.iter().fold(0f32, |a, &v| a.max(v));
            if err >= self.per_tensor[li] || !(widest > 0.0 && widest.is_finite()) {
                continue;
            }
            before += self.per_tensor[li];
            after += err;
            // Scored as written, except for the clamp: a channel below MIN_SCALE of the widest
            // is written with that step instead, 1/(4096 * 127) of the widest range. Past its
            // range on unseen images x/s_c may overflow FP16, which QuantizeLinear saturates
            // as it would clip anyway.
            let scales = amax
                .iter()
                .map(|&a| (a / widest).clamp(MIN_SCALE, 1.0))
                .collect();
            out.insert(
                l.key.clone(),
                Equalization {
                    scales,
                    amax: widest,
                },
            );
        }
        Equalized {
            layers: out,
            error_ratio: if before > 0.0 { after / before } else { 1.0 },
        }
    }
}
