//! Layer-wise refinements of the Q/DQ model, each computed layer by layer on a few
//! calibration images with the layer's FP32 input (as captured from the FP32 model), never on
//! validation images:
//!
//! - **range choice**: per activation that a weighted layer reads, the calibrated amax or
//!   another algorithm's over the same histogram (entropy, MSE, minmax, percentiles), whichever
//!   gives the smallest squared error of the reading layers' outputs (FP32 weights);
//! - **weight scales**: per output channel, amax·α/127 for α in [`ALPHAS`], whichever gives
//!   the smallest squared error of that channel's output (FP32 input). Output channels of a
//!   Conv/Gemm/MatMul depend only on their own weight channel, so one run per α scores every
//!   channel at once and the per-channel argmin is exact, not greedy;
//! - **bias correction**: per output channel, the mean of (INT8 weights − FP32 weights) × the
//!   FP32 input over the images and positions, with the chosen scales, subtracted from the
//!   bias (the empirical bias correction of Nagel et al., "Data-Free Quantization", 2019).
//!   Activation rounding is left out: its mean is near zero except where a range clips, and
//!   correcting for clipping measured on a few images moved mAP down on the shared detectors.
//!
//! Every error is measured by running the layer itself in ONNX Runtime as a one-node model (the
//! exported node with its attributes; input, weight and bias fed as inputs), so grouped,
//! strided, dilated and padded convolutions are all handled by the same code. The result is
//! [`WeightEdits`] plus amax overrides: TensorRT sees an ordinary Q/DQ model.

use super::qdq::{candidates, channel_of, max_scales, quantize_value, QuantLayer, WeightEdits};
use crate::calib::histogram::HistogramSet;
use crate::calib::range::{compute, RangeParams};
use crate::data::preprocess::preprocess_image;
use crate::error::{Error, Result};
use crate::exec::OrtSession;
use crate::onnx::{value_info, Graph, Model};
use crate::recipe::{Algorithm, InputContract, QuantOp};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::{GraphProto, ModelProto, NodeProto};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

/// Weight scale factors tried per channel (1 = the plain max scale).
pub const ALPHAS: [f32; 9] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5];
/// Percentiles of |x| tried as ranges besides entropy, MSE and minmax.
const PERCENTILES: [f64; 3] = [99.9, 99.99, 99.999];

/// Which activation range a tensor got, and how much it helped locally.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RangeChoice {
    pub tensor: String,
    pub chosen: String,
    pub amax: f32,
    pub calibrated_amax: f32,
    /// Squared output error of the reading layers with the chosen range, over the calibrated
    /// range's (1 = no better).
    pub error_ratio: f64,
}

/// What [`refine`] found.
#[derive(Debug, Clone, Default)]
pub struct Refined {
    /// amax per activation tensor where the choice differs from the calibrated one.
    pub ranges: HashMap<String, f32>,
    pub range_choices: Vec<RangeChoice>,
    /// Per-channel weight scales different from the max scale.
    pub scales: HashMap<String, Vec<f32>>,
    /// Per-channel bias corrections, by node key, for the weights quantized with the chosen
    /// scales (`bias`) and with the plain max scales (`bias_max_scales`): a correction only
    /// holds for the weights it was measured with.
    pub bias: HashMap<String, Vec<f32>>,
    pub bias_max_scales: HashMap<String, Vec<f32>>,
    /// Output error with the chosen weight scales over that with max scales, over all layers.
    pub weight_error_ratio: f64,
    pub layers: usize,
    pub images: usize,
}

impl Refined {
    /// The weight edits of the chosen refinements.
    pub fn edits(&self, weight_scales: bool, bias: bool) -> WeightEdits {
        WeightEdits {
            scales: if weight_scales {
                self.scales.clone()
            } else {
                Default::default()
            },
            bias: match (bias, weight_scales) {
                (false, _) => Default::default(),
                (true, true) => self.bias.clone(),
                (true, false) => self.bias_max_scales.clone(),
            },
        }
    }
}

/// One layer, runnable on its own.
struct Layer {
    key: String,
    input: String,
    weight: String,
    w_dims: Vec<i64>,
    w: Vec<f32>,
    w_axis: usize,
    /// Axis of the output channels in the layer's output (None: the last one).
    out_axis: Option<usize>,
    bias: Option<ArrayD<f32>>,
    /// Whether the writer can fold a correction into the bias (see `qdq::correct_bias`).
    correctable: bool,
    node: NodeProto,
    session: Option<OrtSession>,
}

/// Symmetric INT8 fake quantization, as QuantizeLinear + DequantizeLinear compute it.
fn fake_quant(x: &ArrayD<f32>, amax: f32) -> ArrayD<f32> {
    let s = amax / 127.0;
    x.mapv(|v| quantize_value(v, s) as f32 * s)
}

fn fake_quant_weights(w: &[f32], dims: &[i64], axis: usize, scales: &[f32]) -> Vec<f32> {
    let (_, ch) = channel_of(dims, axis);
    w.iter()
        .enumerate()
        .map(|(i, &v)| quantize_value(v, scales[ch(i)]) as f32 * scales[ch(i)])
        .collect()
}

/// Sum of squared differences per channel along `axis`.
fn channel_sse(a: &ArrayD<f32>, b: &ArrayD<f32>, axis: usize) -> Vec<f64> {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let (channels, ch) = channel_of(&dims, axis);
    let mut out = vec![0f64; channels];
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        out[ch(i)] += ((x - y) as f64).powi(2);
    }
    out
}

/// Squared deviation from the channel mean, per channel along `axis`.
fn channel_energy(a: &ArrayD<f32>, axis: usize) -> Vec<f64> {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let (channels, ch) = channel_of(&dims, axis);
    let (mut sum, mut sq) = (vec![0f64; channels], vec![0f64; channels]);
    for (i, &x) in a.iter().enumerate() {
        sum[ch(i)] += x as f64;
        sq[ch(i)] += (x as f64).powi(2);
    }
    let n = (a.len() / channels.max(1)) as f64;
    sum.iter()
        .zip(sq)
        .map(|(s, q)| (q - s * s / n).max(0.0))
        .collect()
}

fn add_into(acc: &mut Vec<f64>, v: &[f64]) {
    if acc.is_empty() {
        acc.resize(v.len(), 0.0);
    }
    for (a, x) in acc.iter_mut().zip(v) {
        *a += x;
    }
}

/// Sum and count of (a - b) per channel along `axis`.
fn channel_sum(a: &ArrayD<f32>, b: &ArrayD<f32>, axis: usize) -> (Vec<f64>, usize) {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let (channels, ch) = channel_of(&dims, axis);
    let mut out = vec![0f64; channels];
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        out[ch(i)] += (x - y) as f64;
    }
    (out, a.len() / channels.max(1))
}

impl Layer {
    fn run(&mut self, model: &Model, x: &ArrayD<f32>, w: &[f32]) -> Result<ArrayD<f32>> {
        if self.session.is_none() {
            self.session = Some(self.one_node_session(model, x.shape())?);
        }
        let w_dims: Vec<usize> = self.w_dims.iter().map(|&d| d as usize).collect();
        let w = ArrayD::from_shape_vec(IxDyn(&w_dims), w.to_vec())
            .map_err(|e| Error::internal(format!("{}: weight shape: {e}", self.key)))?;
        let mut inputs = vec![("x", x.view()), ("w", w.view())];
        if let Some(b) = &self.bias {
            inputs.push(("b", b.view()));
        }
        let s = self.session.as_mut().expect("session made above");
        let mut out = s.run(&inputs)?;
        out.pop().map(|(_, y)| y).ok_or_else(|| {
            Error::internal(format!("{}: the one-node model gave no output", self.key))
        })
    }

    /// The exported node alone, reading `x`, `w` (and `b`) as graph inputs.
    fn one_node_session(&self, model: &Model, x_shape: &[usize]) -> Result<OrtSession> {
        let mut n = self.node.clone();
        n.input = vec!["x".into(), "w".into()];
        if self.bias.is_some() {
            n.input.push("b".into());
        }
        n.output = vec!["y".into()];
        let mut g = GraphProto::new();
        g.name = "layer".into();
        let dims = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
        g.input.push(value_info("x", &dims(x_shape)));
        g.input.push(value_info("w", &self.w_dims));
        if let Some(b) = &self.bias {
            g.input.push(value_info("b", &dims(b.shape())));
        }
        g.output.push(value_info("y", &[]));
        g.output[0]
            .type_
            .mut_or_insert_default()
            .mut_tensor_type()
            .shape
            .clear();
        g.node.push(n);
        let mut m = ModelProto::new();
        m.ir_version = model.proto.ir_version.max(7);
        m.opset_import = model.proto.opset_import.clone();
        m.graph = Some(g).into();
        OrtSession::for_calibration(
            &Model {
                proto: m,
                path: PathBuf::from(format!("{} (layer {})", model.path.display(), self.key)),
            },
            &[],
        )
    }
}

/// The weighted layers of `model` refinement can run alone: a float constant weight in slot 1
/// read by this layer only, an activation in slot 0, and (for weight scales) one scale per
/// output channel.
fn layers(model: &Model, quantized: &[QuantLayer]) -> Result<Vec<Layer>> {
    let g = Graph::new(model);
    let keys: BTreeSet<&str> = quantized.iter().map(|l| l.node.as_str()).collect();
    let mut out = Vec::new();
    for (id, n) in g.nodes() {
        let key = g.key(id);
        if !keys.contains(key.as_str()) || n.input.len() < 2 {
            continue;
        }
        let (x, wname) = (n.input[0].clone(), n.input[1].clone());
        let Some((w_dims, w)) = g.constant_f32(&wname)? else {
            continue;
        };
        if g.consumers(&wname).len() != 1 || g.is_constant(&x) {
            continue;
        }
        let trans_b = g.attr_int(id, "transB")?.unwrap_or(0) != 0;
        let (w_axis, out_axis) = match (n.op_type.as_str(), w_dims.len()) {
            ("Conv", r) if r >= 3 => (0, Some(1)),
            ("Gemm", 2) => (if trans_b { 0 } else { 1 }, Some(1)),
            ("MatMul", 2) => (1, None),
            _ => continue,
        };
        let bias = match g.optional_input(id, 2) {
            Some(b) => match g.constant_f32(b)? {
                Some((d, v)) => Some(
                    ArrayD::from_shape_vec(
                        IxDyn(&d.iter().map(|&x| x as usize).collect::<Vec<_>>()),
                        v,
                    )
                    .map_err(|e| g.error(id, format!("bias: {e}")))?,
                ),
                None => continue,
            },
            None => None,
        };
        // What `qdq::correct_bias` can fold: a Conv or Gemm (Gemm with beta != 0) whose bias
        // is absent or one value per output channel. MatMul has no bias to fold into.
        let channels = w_dims[w_axis] as usize;
        let beta = g.attr_float(id, "beta")?.unwrap_or(1.0);
        let correctable = match n.op_type.as_str() {
            "Conv" => true,
            "Gemm" => beta != 0.0,
            _ => false,
        } && bias
            .as_ref()
            .is_none_or(|b| b.ndim() == 1 && b.len() == channels);
        out.push(Layer {
            key,
            input: x,
            weight: wname,
            w_dims,
            w,
            w_axis,
            out_axis,
            bias,
            correctable,
            node: n.clone(),
            session: None,
        });
    }
    Ok(out)
}

/// Range candidates of `tensor` from its calibration histogram: (label, amax), the calibrated
/// amax first.
fn range_candidates(
    hists: &HistogramSet,
    tensor: &str,
    calibrated: f32,
    params: &RangeParams,
) -> Vec<(String, f32)> {
    let mut c = vec![("calibrated".to_string(), calibrated)];
    if let Some(h) = hists.get(tensor) {
        for alg in [Algorithm::Entropy, Algorithm::Mse, Algorithm::Minmax] {
            c.push((
                format!("{alg:?}").to_lowercase(),
                compute(h, alg, params).amax,
            ));
        }
        for p in PERCENTILES {
            let pp = RangeParams {
                percentile: p,
                ..params.clone()
            };
            c.push((
                format!("percentile {p}"),
                compute(h, Algorithm::Percentile, &pp).amax,
            ));
        }
    }
    c.retain(|(_, a)| a.is_finite() && *a > 0.0);
    c.dedup_by(|a, b| a.1 == b.1);
    c
}

/// Everything [`refine`] needs.
pub struct RefineInput<'a> {
    pub model: &'a Model,
    pub ranges: &'a HashMap<String, f32>,
    pub ops: &'a BTreeSet<QuantOp>,
    /// Histograms of the calibration pass (for the range candidates).
    pub hists: &'a HistogramSet,
    pub params: &'a RangeParams,
    pub images: &'a [PathBuf],
    pub contract: &'a InputContract,
}

/// Capture the FP32 inputs of `layers` on one image.
fn capture(
    session: &mut OrtSession,
    contract: &InputContract,
    image: &std::path::Path,
    wanted: &BTreeSet<String>,
) -> Result<HashMap<String, ArrayD<f32>>> {
    let (x, _) = preprocess_image(image, contract)?;
    let x = x.insert_axis(ndarray::Axis(0)).into_dyn();
    let outs = session.run(&[(contract.tensor.as_str(), x.view())])?;
    let mut m: HashMap<String, ArrayD<f32>> = outs
        .into_iter()
        .filter(|(n, _)| wanted.contains(n))
        .collect();
    if wanted.contains(&contract.tensor) {
        m.insert(contract.tensor.clone(), x);
    }
    Ok(m)
}

/// Compute every refinement (the caller decides which to keep).
pub fn refine(inp: &RefineInput) -> Result<Refined> {
    let model = inp.model;
    let quantized = candidates(model, inp.ranges, inp.ops)?;
    let mut layers = layers(model, &quantized)?;
    let wanted: BTreeSet<String> = layers.iter().map(|l| l.input.clone()).collect();
    let exposed: Vec<String> = wanted.iter().cloned().collect();
    let mut fp32 = OrtSession::for_calibration(model, &exposed)?;

    // Range candidates per tensor, and their summed error over the reading layers.
    let cands: HashMap<String, Vec<(String, f32)>> = wanted
        .iter()
        .filter_map(|t| {
            inp.ranges
                .get(t)
                .map(|&a| (t.clone(), range_candidates(inp.hists, t, a, inp.params)))
        })
        .collect();
    // Per reading layer: per candidate, per output channel, squared error; and per channel
    // the FP32 output's energy about its mean. A range is scored by the sum over channels of
    // error / energy: every channel counts alike, as the next layer may amplify any of them
    // (plain squared error lets the few wide channels decide, and then clips the narrow ones:
    // on YOLOX-nano's depthwise Conv_44 it picked 3x the entropy range, and the model's output
    // error rose from 0.144 to 0.171 on 8 calibration images).
    let mut range_err: Vec<Vec<Vec<f64>>> = layers
        .iter()
        .map(|l| {
            let n = cands.get(&l.input).map_or(0, Vec::len);
            vec![Vec::new(); n]
        })
        .collect();
    let mut energy: Vec<Vec<f64>> = vec![Vec::new(); layers.len()];
    let mut w_err: Vec<Vec<Vec<f64>>> = layers
        .iter()
        .map(|l| vec![vec![0.0; l.w_dims[l.w_axis] as usize]; ALPHAS.len()])
        .collect();
    let max: Vec<Vec<f32>> = layers
        .iter()
        .map(|l| max_scales(&l.w, &l.w_dims, l.w_axis))
        .collect();
    let bar = crate::util::progress_bar((inp.images.len() * 2) as u64, "refine");
    for image in inp.images {
        let xs = capture(&mut fp32, inp.contract, image, &wanted)?;
        for (li, l) in layers.iter_mut().enumerate() {
            let Some(x) = xs.get(&l.input) else { continue };
            let w = l.w.clone();
            let y0 = l.run(model, x, &w)?;
            let out_axis = l.out_axis.unwrap_or(y0.ndim() - 1);
            if let Some(c) = cands.get(&l.input) {
                add_into(&mut energy[li], &channel_energy(&y0, out_axis));
                for (ci, (_, amax)) in c.iter().enumerate() {
                    let y = l.run(model, &fake_quant(x, *amax), &w)?;
                    add_into(&mut range_err[li][ci], &channel_sse(&y, &y0, out_axis));
                }
            }
            for (ai, alpha) in ALPHAS.iter().enumerate() {
                let scales: Vec<f32> = max[li].iter().map(|s| s * alpha).collect();
                let wq = fake_quant_weights(&l.w, &l.w_dims, l.w_axis, &scales);
                let y = l.run(model, x, &wq)?;
                for (acc, e) in w_err[li][ai].iter_mut().zip(channel_sse(&y, &y0, out_axis)) {
                    *acc += e;
                }
            }
        }
        bar.inc(1);
    }

    let mut refined = Refined {
        layers: layers.len(),
        images: inp.images.len(),
        ..Default::default()
    };
    // Each tensor's candidates scored over all the layers that read it.
    let mut scores: HashMap<&str, Vec<f64>> = HashMap::new();
    for (li, l) in layers.iter().enumerate() {
        for (ci, err) in range_err[li].iter().enumerate() {
            let e: f64 = err
                .iter()
                .zip(&energy[li])
                .filter(|(_, &en)| en > 0.0)
                .map(|(e, en)| e / en)
                .sum();
            let v = scores
                .entry(l.input.as_str())
                .or_insert_with(|| vec![0.0; range_err[li].len()]);
            v[ci] += e;
        }
    }
    for (t, c) in &cands {
        if let Some(e) = scores.get(t.as_str()) {
            let e = e.clone();
            let best = (0..c.len())
                .min_by(|&a, &b| e[a].total_cmp(&e[b]))
                .unwrap_or(0);
            if best != 0 {
                refined.ranges.insert(t.clone(), c[best].1);
            }
            refined.range_choices.push(RangeChoice {
                tensor: t.clone(),
                chosen: c[best].0.clone(),
                amax: c[best].1,
                calibrated_amax: c[0].1,
                error_ratio: if e[0] > 0.0 { e[best] / e[0] } else { 1.0 },
            });
        }
    }
    refined
        .range_choices
        .sort_by(|a, b| a.tensor.cmp(&b.tensor));
    let (mut w_before, mut w_after) = (0f64, 0f64);
    let chosen_scales: Vec<Vec<f32>> = layers
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let per = &w_err[li];
            let s: Vec<f32> = (0..max[li].len())
                .map(|c| {
                    let best = (0..ALPHAS.len())
                        .min_by(|&a, &b| per[a][c].total_cmp(&per[b][c]))
                        .unwrap_or(0);
                    w_before += per[0][c];
                    w_after += per[best][c];
                    max[li][c] * ALPHAS[best]
                })
                .collect();
            if s != max[li] {
                refined.scales.insert(l.weight.clone(), s.clone());
            }
            s
        })
        .collect();
    refined.weight_error_ratio = if w_before > 0.0 {
        w_after / w_before
    } else {
        1.0
    };

    // Bias corrections for the weights as the chosen scales and as the max scales quantize
    // them (the writer applies the one matching the weights it writes).
    let chans = |l: &Layer| l.w_dims[l.w_axis] as usize;
    let mut sums: Vec<[Vec<f64>; 2]> = layers
        .iter()
        .map(|l| [vec![0.0; chans(l)], vec![0.0; chans(l)]])
        .collect();
    let mut counts = vec![0usize; layers.len()];
    for image in inp.images {
        let xs = capture(&mut fp32, inp.contract, image, &wanted)?;
        for (li, l) in layers.iter_mut().enumerate() {
            let (Some(x), true) = (xs.get(&l.input), l.correctable) else {
                continue;
            };
            let w = l.w.clone();
            let y0 = l.run(model, x, &w)?;
            let out_axis = l.out_axis.unwrap_or(y0.ndim() - 1);
            for (k, scales) in [&chosen_scales[li], &max[li]].into_iter().enumerate() {
                let wq = fake_quant_weights(&l.w, &l.w_dims, l.w_axis, scales);
                let y = l.run(model, x, &wq)?;
                let (s, n) = channel_sum(&y, &y0, out_axis);
                add_into(&mut sums[li][k], &s);
                if k == 0 {
                    counts[li] += n;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for ((l, [chosen, plain]), n) in layers.iter().zip(sums).zip(counts) {
        if n > 0 {
            let mean = |s: Vec<f64>| s.iter().map(|v| (v / n as f64) as f32).collect();
            refined.bias.insert(l.key.clone(), mean(chosen));
            refined.bias_max_scales.insert(l.key.clone(), mean(plain));
        }
    }
    Ok(refined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_quant_matches_quantize_then_dequantize() {
        let x = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.5, -1.0, 3.0, 100.0]).unwrap();
        let y = fake_quant(&x, 1.27);
        assert_eq!(y.as_slice().unwrap(), &[0.5, -1.0, 1.27, 1.27]);
    }

    #[test]
    fn channel_errors_follow_the_axis() {
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1.0, 1.0, 2.0, 2.0]).unwrap();
        let b = ArrayD::zeros(IxDyn(&[1, 2, 2]));
        assert_eq!(channel_sse(&a, &b, 1), vec![2.0, 8.0]);
        assert_eq!(channel_sse(&a, &b, 2), vec![5.0, 5.0]);
        assert_eq!(channel_sum(&a, &b, 1), (vec![2.0, 4.0], 2));
    }
}
