//! Layer-wise refinements of the Q/DQ model (quant::refine) and how the writer folds them
//! (quant::qdq): on one-layer models built here and the repository's public-domain images, so
//! each expected figure is computed independently of the code under test.

mod common;

use ndarray::ArrayD;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use trtforge::calib::histogram::{HistogramSet, NonFinitePolicy};
use trtforge::calib::range::RangeParams;
use trtforge::data::preprocess::preprocess_image;
use trtforge::data::InputContract;
use trtforge::onnx::synth::GraphBuilder;
use trtforge::onnx::{float_tensor, ints_attr, node, value_info, Graph, Model};
use trtforge::quant::qdq::{max_scales, quantize_value, WeightEdits};
use trtforge::quant::refine::{refine, RefineInput};
use trtforge::quant::{quantize, QdqOptions};
use trtforge::recipe::Refinement;

fn contract() -> InputContract {
    serde_yaml_ng::from_str(
        "{tensor: images, shape: [1, 3, 16, 16], channel_order: rgb, scale: 0.00392156862745098, resize: stretch}",
    )
    .unwrap()
}

fn images() -> Vec<PathBuf> {
    ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
        .iter()
        .map(|f| common::crate_root().join("calib_data").join(f))
        .collect()
}

/// images (1x3x16x16) -> 1x1 Conv with `w` (2x3x1x1) and `bias` -> out.
fn one_conv(w: Vec<f32>, bias: Option<Vec<f32>>) -> Model {
    let mut b = GraphBuilder::new("one_conv");
    b.graph.input.push(value_info("images", &[1, 3, 16, 16]));
    b.graph
        .initializer
        .push(float_tensor("w", &[2, 3, 1, 1], w));
    let mut inputs = vec!["images", "w"];
    if let Some(v) = bias {
        b.graph.initializer.push(float_tensor("b", &[2], v));
        inputs.push("b");
    }
    b.graph.node.push(node(
        "Conv",
        "conv",
        &inputs,
        &["out"],
        vec![ints_attr("kernel_shape", &[1, 1])],
    ));
    b.graph.output.push(value_info("out", &[1, 2, 16, 16]));
    b.finish(13, "one_conv.onnx")
}

fn inputs() -> Vec<ArrayD<f32>> {
    images()
        .iter()
        .map(|p| preprocess_image(p, &contract()).unwrap().0.into_dyn())
        .collect()
}

/// Histograms of the graph input over the images, as calibration would gather them.
fn input_histograms() -> HistogramSet {
    let mut h = HistogramSet::new(vec!["images".into()], NonFinitePolicy::Error);
    for (x, p) in inputs().iter().zip(images()) {
        h.add_all(&[x.as_slice().unwrap()], &p).unwrap();
    }
    h
}

fn run_refine(
    m: &Model,
    ranges: &HashMap<String, f32>,
    hists: &HistogramSet,
) -> Option<trtforge::quant::refine::Refined> {
    common::ort_session(m, &[])?;
    Some(
        refine(&RefineInput {
            model: m,
            ranges,
            ops: &BTreeSet::new(),
            hists,
            params: &RangeParams::default(),
            images: &images(),
            range_images: &images(),
            contract: &contract(),
        })
        .unwrap(),
    )
}

/// Weights whose INT8 rounding errs the same way in every input channel of channel 0.
fn skewed_weights() -> Vec<f32> {
    vec![1.0, 0.3, 0.303, -0.2, 0.55, 0.9]
}

#[test]
fn bias_correction_is_the_mean_weight_error_times_the_mean_input() {
    let m = one_conv(skewed_weights(), Some(vec![0.5, -0.5]));
    let ranges: HashMap<String, f32> = [("images".to_string(), 1.0)].into();
    let hists = HistogramSet::new(vec![], NonFinitePolicy::Error);
    let Some(r) = run_refine(&m, &ranges, &hists) else {
        return;
    };
    // A 1x1 conv: mean((Wq - W) x) per output channel = sum over input channels of
    // (wq - w) * mean(x_c), for the weights as they will be written: with the chosen scales
    // when weight scales are kept too, with the max scales when bias correction is alone.
    let w = skewed_weights();
    let xs = inputs();
    let mean_c: Vec<f64> = (0..3)
        .map(|c| {
            xs.iter()
                .map(|x| {
                    x.index_axis(ndarray::Axis(0), c)
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>()
                })
                .sum::<f64>()
                / (xs.len() * 256) as f64
        })
        .collect();
    let want = |scales: &[f32]| -> Vec<f64> {
        (0..2)
            .map(|oc| {
                (0..3)
                    .map(|c| {
                        let (v, s) = (w[oc * 3 + c], scales[oc]);
                        (quantize_value(v, s) as f32 * s - v) as f64 * mean_c[c]
                    })
                    .sum()
            })
            .collect()
    };
    let max = max_scales(&w, &[2, 3, 1, 1], 0);
    let chosen = r.scales.get("w").cloned().unwrap_or_else(|| max.clone());
    for (with_scales, got, scales) in [
        (true, &r.bias["conv"], &chosen),
        (false, &r.bias_max_scales["conv"], &max),
    ] {
        let want = want(scales);
        for oc in 0..2 {
            assert!(
                (got[oc] as f64 - want[oc]).abs() <= 1e-6 + 1e-3 * want[oc].abs(),
                "weight scales {with_scales}, channel {oc}: refine {} vs {}",
                got[oc],
                want[oc]
            );
        }
        let with: &[Refinement] = if with_scales {
            &[Refinement::WeightScales, Refinement::BiasCorrection]
        } else {
            &[Refinement::BiasCorrection]
        };
        assert_eq!(&r.edits(with).bias["conv"], got);
    }
    assert!(r.edits(&[Refinement::WeightScales]).bias.is_empty());
}

#[test]
fn a_range_that_clips_most_values_is_replaced_by_a_wider_candidate() {
    let m = one_conv(skewed_weights(), None);
    // Pixels are in 0..1; a range of 0.05 clips nearly all of them.
    let ranges: HashMap<String, f32> = [("images".to_string(), 0.05)].into();
    let Some(r) = run_refine(&m, &ranges, &input_histograms()) else {
        return;
    };
    let c = &r.range_choices;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_ne!(c[0].chosen, "calibrated", "{c:?}");
    assert!(c[0].amax > 0.5 && c[0].amax <= 1.0, "{c:?}");
    assert!(c[0].error_ratio < 0.5, "{c:?}");
    assert_eq!(r.ranges["images"], c[0].amax);
}

#[test]
fn the_calibrated_range_stays_when_no_candidate_beats_it() {
    let m = one_conv(skewed_weights(), None);
    // The max over the images: nothing is clipped, and no candidate is wider.
    let amax = inputs()
        .iter()
        .flat_map(|x| x.iter().copied().collect::<Vec<_>>())
        .fold(0f32, |a, v| a.max(v.abs()));
    let ranges: HashMap<String, f32> = [("images".to_string(), amax)].into();
    let Some(r) = run_refine(
        &m,
        &ranges,
        &HistogramSet::new(vec![], NonFinitePolicy::Error),
    ) else {
        return;
    };
    assert_eq!(r.range_choices[0].chosen, "calibrated");
    assert!(r.ranges.is_empty(), "{:?}", r.ranges);
}

fn initializer(m: &Model, name: &str) -> Vec<f32> {
    Graph::new(m).constant_f32(name).unwrap().unwrap().1
}

#[test]
fn the_writer_folds_corrections_into_quantized_layers_only() {
    let ranges: HashMap<String, f32> = [("images".to_string(), 1.0)].into();
    let edits = WeightEdits {
        scales: [("w".to_string(), vec![0.9 / 127.0, 0.8 / 127.0])].into(),
        bias: [("conv".to_string(), vec![0.25, -0.125])].into(),
        ..Default::default()
    };
    let opts = QdqOptions {
        edits: Arc::new(edits.clone()),
        ..Default::default()
    };
    // With a bias: a new initializer b - delta; the exported one is untouched.
    let (q, _) = quantize(
        &one_conv(skewed_weights(), Some(vec![0.5, -0.5])),
        &ranges,
        &opts,
    )
    .unwrap();
    let g = Graph::new(&q);
    let conv = g.nodes().find(|(_, n)| n.op_type == "Conv").unwrap().1;
    assert_ne!(conv.input[2], "b");
    assert_eq!(initializer(&q, &conv.input[2]), vec![0.25, -0.375]);
    assert_eq!(initializer(&q, "w_scale"), vec![0.9 / 127.0, 0.8 / 127.0]);
    // Without one: the Conv gets -delta as its bias.
    let (q, _) = quantize(&one_conv(skewed_weights(), None), &ranges, &opts).unwrap();
    let conv = Graph::new(&q)
        .nodes()
        .find(|(_, n)| n.op_type == "Conv")
        .unwrap()
        .1
        .clone();
    assert_eq!(initializer(&q, &conv.input[2]), vec![-0.25, 0.125]);
    // Kept in float: the exported weights and bias, no edit at all.
    let kept = QdqOptions {
        keep_fp: ["conv".to_string()].into(),
        ..opts
    };
    let m = one_conv(skewed_weights(), Some(vec![0.5, -0.5]));
    let (q, _) = quantize(&m, &ranges, &kept).unwrap();
    let conv = Graph::new(&q)
        .nodes()
        .find(|(_, n)| n.op_type == "Conv")
        .unwrap()
        .1
        .clone();
    assert_eq!(conv.input, vec!["images", "w", "b"]);
    assert_eq!(initializer(&q, "b"), vec![0.5, -0.5]);
}

/// images (1x3x16x16) -> Flatten -> Gemm (768 -> 2, transB 1) with `beta` and optional C.
fn one_gemm(beta: f32, c: Option<Vec<f32>>) -> Model {
    let mut b = GraphBuilder::new("one_gemm");
    b.graph.input.push(value_info("images", &[1, 3, 16, 16]));
    b.graph
        .initializer
        .push(float_tensor("w", &[2, 768], vec![0.01; 1536]));
    b.graph
        .node
        .push(node("Flatten", "flat", &["images"], &["f"], vec![]));
    let mut inputs = vec!["f", "w"];
    if let Some(v) = c {
        b.graph.initializer.push(float_tensor("c", &[2], v));
        inputs.push("c");
    }
    b.graph.node.push(node(
        "Gemm",
        "gemm",
        &inputs,
        &["out"],
        vec![
            trtforge::onnx::int_attr("transB", 1),
            trtforge::onnx::float_attr("beta", beta),
        ],
    ));
    b.graph.output.push(value_info("out", &[1, 2]));
    b.finish(13, "one_gemm.onnx")
}

#[test]
fn gemm_corrections_account_for_beta_and_a_missing_c() {
    let ranges: HashMap<String, f32> = [("f".to_string(), 1.0)].into();
    let opts = QdqOptions {
        edits: Arc::new(WeightEdits {
            scales: Default::default(),
            bias: [("gemm".to_string(), vec![0.5, -1.0])].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let gemm_c = |q: &Model| -> Option<Vec<f32>> {
        let g = Graph::new(q);
        let n = g.nodes().find(|(_, n)| n.op_type == "Gemm").unwrap().1;
        n.input.get(2).map(|c| initializer(q, c))
    };
    // Y = A B + beta C: C moves by delta / beta.
    let (q, _) = quantize(&one_gemm(2.0, Some(vec![1.0, 1.0])), &ranges, &opts).unwrap();
    assert_eq!(gemm_c(&q), Some(vec![0.75, 1.5]));
    // No C (optional from opset 11): one is added.
    let (q, _) = quantize(&one_gemm(1.0, None), &ranges, &opts).unwrap();
    assert_eq!(gemm_c(&q), Some(vec![-0.5, 1.0]));
    // beta 0: C does not reach the output, nothing to fold into.
    let (q, _) = quantize(&one_gemm(0.0, Some(vec![1.0, 1.0])), &ranges, &opts).unwrap();
    assert_eq!(gemm_c(&q), Some(vec![1.0, 1.0]));
}

/// images (1x3x16x16) -> Mul by [0.05, 1, 20] per channel -> x -> depthwise 3x3 Conv with
/// two output channels per input channel (group 3, weight 6x1x3x3) -> out.
fn uneven_depthwise() -> Model {
    let mut b = GraphBuilder::new("uneven_depthwise");
    b.graph.input.push(value_info("images", &[1, 3, 16, 16]));
    b.graph
        .initializer
        .push(float_tensor("k", &[1, 3, 1, 1], vec![0.05, 1.0, 20.0]));
    let w: Vec<f32> = (0..54).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
    b.graph
        .initializer
        .push(float_tensor("w", &[6, 1, 3, 3], w));
    b.graph.initializer.push(float_tensor(
        "b",
        &[6],
        vec![0.1, -0.1, 0.2, -0.2, 0.3, -0.3],
    ));
    b.graph
        .node
        .push(node("Mul", "scale", &["images", "k"], &["x"], vec![]));
    b.graph.node.push(node(
        "Conv",
        "dw",
        &["x", "w", "b"],
        &["out"],
        vec![
            ints_attr("kernel_shape", &[3, 3]),
            ints_attr("pads", &[1, 1, 1, 1]),
            trtforge::onnx::int_attr("group", 3),
        ],
    ));
    b.graph.output.push(value_info("out", &[1, 6, 16, 16]));
    b.finish(13, "uneven_depthwise.onnx")
}

/// Squared error of `m`'s output against `reference`'s, per output channel, relative to the
/// energy of the reference's output less its bias `bias`.
fn channel_errors(m: &Model, reference: &Model, bias: &[f32]) -> Option<Vec<f64>> {
    let (mut s, mut r) = (
        common::ort_session(m, &[])?,
        common::ort_session(reference, &[])?,
    );
    let (mut err, mut energy) = (vec![0f64; 6], vec![0f64; 6]);
    for x in inputs() {
        let x = x.insert_axis(ndarray::Axis(0));
        let y = s.run(&[("images", x.view())]).unwrap().remove(0).1;
        let y0 = r.run(&[("images", x.view())]).unwrap().remove(0).1;
        for ((idx, a), b) in y.indexed_iter().zip(y0.iter()) {
            err[idx[1]] += ((a - b) as f64).powi(2);
            energy[idx[1]] += ((b - bias[idx[1]]) as f64).powi(2);
        }
    }
    Some(err.iter().zip(&energy).map(|(e, n)| e / n).collect())
}

#[test]
fn depthwise_equalization_gives_each_channel_its_own_step_and_keeps_the_float_model() {
    let m = uneven_depthwise();
    // The per-tensor range is channel 2's: 20, a step of 0.157 where channel 0 stays below
    // 0.05, so per tensor channel 0 quantizes to zeros.
    let ranges: HashMap<String, f32> = [("x".to_string(), 20.0)].into();
    let hists = HistogramSet::new(vec![], NonFinitePolicy::Error);
    let Some(r) = run_refine(&m, &ranges, &hists) else {
        return;
    };
    let e = r
        .equalize
        .get("dw")
        .expect("the depthwise conv is equalized");
    assert_eq!(e.scales.len(), 3, "{e:?}");
    // Each channel's step follows its own max (0.05, 1 and 20 times the pixels' max of
    // that channel), up to the fraction the search chose (0.1 to 1).
    let max_c: Vec<f32> = (0..3)
        .map(|c| {
            let k = [0.05f32, 1.0, 20.0][c];
            inputs()
                .iter()
                .map(|x| {
                    x.index_axis(ndarray::Axis(0), c)
                        .fold(0f32, |a, v| a.max(v * k))
                })
                .fold(0f32, f32::max)
        })
        .collect();
    for (c, (s, max)) in e.scales.iter().zip(&max_c).enumerate() {
        let amax_c = s * e.amax;
        assert!(
            amax_c <= max * 1.0001 && amax_c >= max * 0.0999,
            "channel {c}: step range {amax_c} for a max of {max}"
        );
    }
    // Summed in absolute terms, channel 2 (already well served per tensor) dominates.
    assert!(r.equalize_error_ratio < 0.9, "{}", r.equalize_error_ratio);

    let write = |with: &[Refinement]| {
        let opts = QdqOptions {
            edits: Arc::new(r.edits(with)),
            ..Default::default()
        };
        quantize(&m, &ranges, &opts).unwrap().0
    };
    let (naive, equalized) = (write(&[]), write(&[Refinement::DepthwiseEqualization]));
    // The writer's rewrite: a Mul by 1/s_c before the input's Q/DQ, and weights whose
    // dequantized values divided by s_c are the exported ones up to INT8 rounding.
    let g = Graph::new(&equalized);
    let mul = g
        .nodes()
        .find(|(_, n)| n.op_type == "Mul" && n.input[0] == "x")
        .expect("a Mul reads x")
        .1;
    let inv = initializer(&equalized, &mul.input[1]);
    for c in 0..3 {
        assert!((inv[c] * e.scales[c] - 1.0).abs() < 1e-6, "{inv:?} {e:?}");
    }
    let bias = initializer(&m, "b");
    let Some(err_naive) = channel_errors(&naive, &m, &bias) else {
        return;
    };
    let err_eq = channel_errors(&equalized, &m, &bias).unwrap();
    // Channel 0's outputs (0 and 1): per tensor only the bias is left; equalized, every
    // output channel is within INT8 rounding of FP32 (channel 2's already was per tensor).
    for o in 0..2 {
        assert!(err_naive[o] > 0.5, "naive {err_naive:?}");
    }
    for (o, e) in err_eq.iter().enumerate() {
        assert!(*e < 1e-3, "equalized, output channel {o}: {err_eq:?}");
    }
    // With the weight scales and the bias correction as well: the edited scales are rescaled
    // with the weights, so the other refinements still hold.
    let all = write(&[
        Refinement::WeightScales,
        Refinement::BiasCorrection,
        Refinement::DepthwiseEqualization,
    ]);
    let err_all = channel_errors(&all, &m, &bias).unwrap();
    for (o, e) in err_all.iter().enumerate() {
        assert!(*e < 1e-3, "all three, output channel {o}: {err_all:?}");
    }
    assert_eq!(g.constant(&mul.input[1]).unwrap().dims, vec![1, 3, 1, 1]);
}
