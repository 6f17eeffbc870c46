//! Weight scales: per output channel, amax·α/127 for α in [`ALPHAS`], whichever gives that
//! channel's output the smallest squared error with the FP32 input. A Conv/Gemm/MatMul output
//! channel depends only on its own weight channel, so one run per α scores every channel at
//! once and the per-channel argmin is exact, not greedy.

use super::layer::{channel_sse, fake_quant_per_channel, Layer};
use crate::error::Result;
use crate::onnx::Model;
use crate::quant::qdq::max_scales;
use ndarray::ArrayD;

/// Weight scale factors tried per channel (1 = the plain max scale).
pub const ALPHAS: [f32; 9] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5];

/// Errors gathered image by image.
pub(super) struct ScaleSearch {
    /// Per layer: the max scales.
    pub max: Vec<Vec<f32>>,
    /// Per layer, per α, per output channel: squared error.
    err: Vec<Vec<Vec<f64>>>,
}

/// What the search chose.
pub(super) struct Scales {
    /// Per layer (all of them, max scales where nothing was better).
    pub chosen: Vec<Vec<f32>>,
    /// Output error with the chosen scales over that with max scales, over all layers.
    pub error_ratio: f64,
}

impl ScaleSearch {
    pub fn new(layers: &[Layer]) -> Self {
        ScaleSearch {
            max: layers
                .iter()
                .map(|l| max_scales(&l.w, &l.w_dims, l.w_axis))
                .collect(),
            err: layers
                .iter()
                .map(|l| vec![vec![0.0; l.channels()]; ALPHAS.len()])
                .collect(),
        }
    }

    /// Layer `li` on input `x`, whose FP32 output is `y0`.
    pub fn observe(
        &mut self,
        model: &Model,
        li: usize,
        l: &mut Layer,
        x: &ArrayD<f32>,
        y0: &ArrayD<f32>,
    ) -> Result<()> {
        let axis = l.out_axis_of(y0.ndim());
        for (ai, alpha) in ALPHAS.iter().enumerate() {
            let scales: Vec<f32> = self.max[li].iter().map(|s| s * alpha).collect();
            let wq = fake_quant_per_channel(&l.w, &l.w_dims, l.w_axis, &scales);
            let y = l.run(model, x, &wq)?;
            for (acc, e) in self.err[li][ai].iter_mut().zip(channel_sse(&y, y0, axis)) {
                *acc += e;
            }
        }
        Ok(())
    }

    pub fn choose(&self) -> Scales {
        let (mut before, mut after) = (0f64, 0f64);
        let chosen = self
            .err
            .iter()
            .zip(&self.max)
            .map(|(per, max)| {
                (0..max.len())
                    .map(|c| {
                        let best = (0..ALPHAS.len())
                            .min_by(|&a, &b| per[a][c].total_cmp(&per[b][c]))
                            .unwrap_or(0);
                        before += per[0][c];
                        after += per[best][c];
                        max[c] * ALPHAS[best]
                    })
                    .collect()
            })
            .collect();
        Scales {
            chosen,
            error_ratio: if before > 0.0 { after / before } else { 1.0 },
        }
    }
}
