//! One weighted layer runnable on its own (the exported node as a one-node ONNX Runtime model,
//! its input, weight and bias fed as inputs), and the per-channel arithmetic every refinement
//! shares: fake quantization as QuantizeLinear + DequantizeLinear compute it, and per-channel
//! error, energy and mean along the output-channel axis.

use crate::error::{Error, Result};
use crate::exec::OrtSession;
use crate::onnx::{value_info, Graph, Model};
use crate::quant::qdq::{channel_of, depthwise_inputs, quantize_value, QuantLayer};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::{GraphProto, ModelProto, NodeProto};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One layer, runnable on its own.
pub(super) struct Layer {
    pub key: String,
    pub input: String,
    pub weight: String,
    pub w_dims: Vec<i64>,
    pub w: Vec<f32>,
    pub w_axis: usize,
    /// Axis of the output channels in the layer's output (None: the last one).
    pub out_axis: Option<usize>,
    bias: Option<ArrayD<f32>>,
    /// Whether the writer can fold a correction into the bias (see `qdq::correct_bias`).
    pub correctable: bool,
    /// For a depthwise Conv (each output channel reads one input channel): its input
    /// channels, which the writer can rescale one by one (see `qdq::Equalization`).
    pub depthwise_inputs: Option<usize>,
    node: NodeProto,
    session: Option<OrtSession>,
}

/// Symmetric INT8 fake quantization, as QuantizeLinear + DequantizeLinear compute it.
pub fn fake_quant(x: &ArrayD<f32>, amax: f32) -> ArrayD<f32> {
    let s = amax / 127.0;
    x.mapv(|v| quantize_value(v, s) as f32 * s)
}

/// Fake quantization with one amax per channel along axis 1 (each > 0).
pub fn fake_quant_channels(x: &ArrayD<f32>, amax: &[f32]) -> ArrayD<f32> {
    let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    let scales: Vec<f32> = amax.iter().map(|a| a / 127.0).collect();
    let x = x.as_standard_layout();
    let values = x.as_slice().expect("a standard-layout array is one slice");
    ArrayD::from_shape_vec(
        x.raw_dim(),
        fake_quant_per_channel(values, &dims, 1, &scales),
    )
    .expect("as many values as the shape holds")
}

/// Symmetric INT8 fake quantization of `w` (shaped `dims`) with one scale per channel along
/// `axis`.
pub fn fake_quant_per_channel(w: &[f32], dims: &[i64], axis: usize, scales: &[f32]) -> Vec<f32> {
    let (_, ch) = channel_of(dims, axis);
    w.iter()
        .enumerate()
        .map(|(i, &v)| quantize_value(v, scales[ch(i)]) as f32 * scales[ch(i)])
        .collect()
}

/// Sum of squared differences per channel along `axis`.
pub fn channel_sse(a: &ArrayD<f32>, b: &ArrayD<f32>, axis: usize) -> Vec<f64> {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let (channels, ch) = channel_of(&dims, axis);
    let mut out = vec![0f64; channels];
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        out[ch(i)] += ((x - y) as f64).powi(2);
    }
    out
}

/// Squared deviation from the channel mean, per channel along `axis`.
pub fn channel_energy(a: &ArrayD<f32>, axis: usize) -> Vec<f64> {
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

pub fn add_into(acc: &mut Vec<f64>, v: &[f64]) {
    if acc.is_empty() {
        acc.resize(v.len(), 0.0);
    }
    for (a, x) in acc.iter_mut().zip(v) {
        *a += x;
    }
}

/// Sum and count of (a - b) per channel along `axis`.
pub fn channel_sum(a: &ArrayD<f32>, b: &ArrayD<f32>, axis: usize) -> (Vec<f64>, usize) {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let (channels, ch) = channel_of(&dims, axis);
    let mut out = vec![0f64; channels];
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        out[ch(i)] += (x - y) as f64;
    }
    (out, a.len() / channels.max(1))
}

impl Layer {
    /// The layer's output for input `x` and weights `w` (the session is made on first use).
    pub fn run(&mut self, model: &Model, x: &ArrayD<f32>, w: &[f32]) -> Result<ArrayD<f32>> {
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

    /// Number of output channels.
    pub fn channels(&self) -> usize {
        self.w_dims[self.w_axis] as usize
    }

    /// The output-channel axis of an output of rank `rank`.
    pub fn out_axis_of(&self, rank: usize) -> usize {
        self.out_axis.unwrap_or(rank - 1)
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
pub(super) fn layers(model: &Model, quantized: &[QuantLayer]) -> Result<Vec<Layer>> {
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
        let depthwise_inputs = depthwise_inputs(&g, id, &w_dims)?;
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
            depthwise_inputs,
            node: n.clone(),
            session: None,
        });
    }
    Ok(out)
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
