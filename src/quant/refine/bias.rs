//! Bias correction: per output channel, the mean of (INT8 weights − FP32 weights) × the FP32
//! input over the images and positions, subtracted from the bias (the empirical bias correction
//! of Nagel et al., "Data-Free Quantization", 2019). A correction holds only for the weights it
//! was measured with, so it is measured twice: for the chosen scales and for the max scales
//! (the writer applies the one matching the weights it writes). Activation rounding is left
//! out: its mean is near zero except where a range clips, and folding the clipping measured on
//! a few images in as well lowered YOLOX-nano's mAP in our first measurement (selection images
//! 0.342 -> 0.305).

use super::layer::{add_into, channel_sum, fake_quant_per_channel, Layer};
use crate::error::Result;
use crate::onnx::Model;
use ndarray::ArrayD;
use std::collections::HashMap;

/// Sums gathered image by image: per layer, [chosen scales, max scales] per output channel.
pub(super) struct BiasSums {
    sums: Vec<[Vec<f64>; 2]>,
    counts: Vec<usize>,
}

impl BiasSums {
    pub fn new(layers: &[Layer]) -> Self {
        BiasSums {
            sums: layers
                .iter()
                .map(|l| [vec![0.0; l.channels()], vec![0.0; l.channels()]])
                .collect(),
            counts: vec![0; layers.len()],
        }
    }

    /// Layer `li` on input `x`, whose FP32 output is `y0`, for both sets of scales.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        model: &Model,
        li: usize,
        l: &mut Layer,
        x: &ArrayD<f32>,
        y0: &ArrayD<f32>,
        chosen: &[f32],
        max: &[f32],
    ) -> Result<()> {
        if !l.correctable {
            return Ok(());
        }
        let axis = l.out_axis_of(y0.ndim());
        for (k, scales) in [chosen, max].into_iter().enumerate() {
            let wq = fake_quant_per_channel(&l.w, &l.w_dims, l.w_axis, scales);
            let y = l.run(model, x, &wq)?;
            let (s, n) = channel_sum(&y, y0, axis);
            add_into(&mut self.sums[li][k], &s);
            if k == 0 {
                self.counts[li] += n;
            }
        }
        Ok(())
    }

    /// (for the chosen scales, for the max scales), by node key.
    pub fn finish(
        self,
        layers: &[Layer],
    ) -> (HashMap<String, Vec<f32>>, HashMap<String, Vec<f32>>) {
        let (mut chosen, mut plain) = (HashMap::new(), HashMap::new());
        for ((l, [c, p]), n) in layers.iter().zip(self.sums).zip(self.counts) {
            if n > 0 {
                let mean = |s: Vec<f64>| s.iter().map(|v| (v / n as f64) as f32).collect();
                chosen.insert(l.key.clone(), mean(c));
                plain.insert(l.key.clone(), mean(p));
            }
        }
        (chosen, plain)
    }
}
