//! FP16 (strongly typed) rewrite: a generated detector-shaped model (always), the plan's
//! FP32 layers, Q/DQ models, refusals, and the shared detectors (when ../shared is present).

mod common;

use ndarray::ArrayD;
use onnx_protobuf::NodeProto;
use std::collections::{BTreeSet, HashMap, HashSet};
use trtforge::onnx::synth::{tiny_detector, GraphBuilder};
use trtforge::onnx::{
    float_tensor, int_attr, node, string_attr, tensor_attr, value_info, Graph, Model, Patch,
};
use trtforge::quant::plan::output_errors;
use trtforge::quant::{quantize, to_fp16, Fp16Summary, KeepReason, QdqOptions};

const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;

fn skip_or_panic(e: trtforge::Error) {
    if trtforge::env::in_ci() {
        panic!("{e}");
    }
    eprintln!("SKIP: {e}");
}

use common::{minmax_ranges, ort_session as session, ramp_input as input};

/// The FP16 model, or None (skip) when ONNX Runtime, which checks it, is unavailable.
fn convert(m: &Model, keep: &[&str]) -> Option<(Model, Fp16Summary)> {
    let keep: BTreeSet<String> = keep.iter().map(|s| s.to_string()).collect();
    match to_fp16(m, &keep) {
        Ok(r) => Some(r),
        Err(e @ trtforge::Error::Unavailable { .. }) => {
            skip_or_panic(e);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Element types of every tensor, worked out here independently of the rewrite: declared
/// inputs, initializers, Constant values, Cast's `to`; the other ops of these models
/// (Conv, activations, Add, Mul, Concat, Resize, Q/DQ) write the type of their first input,
/// except DequantizeLinear (its scale's) and QuantizeLinear (its zero point's).
fn elem_types(m: &Model) -> HashMap<String, i32> {
    let g = &m.proto.graph;
    let mut ty: HashMap<String, i32> = g
        .input
        .iter()
        .map(|i| (i.name.clone(), i.type_.tensor_type().elem_type))
        .collect();
    ty.extend(g.initializer.iter().map(|t| (t.name.clone(), t.data_type)));
    for n in &g.node {
        let t = match n.op_type.as_str() {
            "Constant" => n.attribute[0].t.data_type,
            "Cast" => n.attribute.iter().find(|a| a.name == "to").unwrap().i as i32,
            "Shape" => 7,
            "DequantizeLinear" => ty[&n.input[1]],
            "QuantizeLinear" => ty[&n.input[2]],
            _ => ty[&n.input[0]],
        };
        for o in &n.output {
            ty.insert(o.clone(), t);
        }
    }
    ty
}

fn producer<'m>(m: &'m Model, t: &str) -> Option<&'m NodeProto> {
    m.proto
        .graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == t))
}

fn readers<'m>(m: &'m Model, t: &str) -> Vec<&'m NodeProto> {
    m.proto
        .graph
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == t))
        .collect()
}

fn cast_to(n: &NodeProto) -> Option<i64> {
    (n.op_type == "Cast").then(|| n.attribute.iter().find(|a| a.name == "to").unwrap().i)
}

fn count(m: &Model, op: &str) -> usize {
    m.proto
        .graph
        .node
        .iter()
        .filter(|n| n.op_type == op)
        .count()
}

/// A small detector-shaped network on 1x3x32x32: strided convs with activations, a residual
/// Add, a downsampling branch brought back by a nearest Resize (its scales a Constant node,
/// which the spec types float), a Concat, a 1x1 head scaled by a Constant scalar and a
/// Sigmoid. Output `scores` 1x12x16x16.
fn detector() -> Model {
    let mut b = GraphBuilder::new("fp16_detector");
    b.graph.input.push(value_info("images", &[1, 3, 32, 32]));
    let x = b.conv("stem", "images", 3, 8, 3, 2);
    let a = b.unary("Relu", "stem_act", &x);
    let y = b.conv("b1", &a, 8, 8, 3, 1);
    let y = b.unary("LeakyRelu", "b1_act", &y);
    b.graph
        .node
        .push(node("Add", "res", &[&a, &y], &["res.out"], vec![]));
    let d = b.conv("down", "res.out", 8, 16, 3, 2);
    let d = b.unary("Relu", "down_act", &d);
    b.graph.initializer.push(float_tensor("roi", &[0], vec![]));
    b.graph.node.push(node(
        "Constant",
        "scales_const",
        &[],
        &["scales"],
        vec![tensor_attr(
            "value",
            float_tensor("", &[4], vec![1.0, 1.0, 2.0, 2.0]),
        )],
    ));
    b.graph.node.push(node(
        "Resize",
        "up",
        &[&d, "roi", "scales"],
        &["up.out"],
        vec![string_attr("mode", "nearest")],
    ));
    b.graph.node.push(node(
        "Concat",
        "cat",
        &["up.out", "res.out"],
        &["cat.out"],
        vec![int_attr("axis", 1)],
    ));
    let h = b.conv("head", "cat.out", 24, 12, 1, 1);
    b.graph.node.push(node(
        "Constant",
        "gain_const",
        &[],
        &["gain"],
        vec![tensor_attr("value", float_tensor("", &[], vec![0.5]))],
    ));
    b.graph
        .node
        .push(node("Mul", "gain_mul", &[&h, "gain"], &["logits"], vec![]));
    b.graph.node.push(node(
        "Sigmoid",
        "head_act",
        &["logits"],
        &["scores"],
        vec![],
    ));
    b.graph.output.push(value_info("scores", &[1, 12, 16, 16]));
    b.finish(13, "fp16_detector.onnx")
}

fn run(m: &Model, name: &str, x: &ArrayD<f32>) -> Option<Vec<(String, ArrayD<f32>)>> {
    Some(session(m, &[])?.run(&[(name, x.view())]).unwrap())
}

/// FP16 numerics emulated for ONNX Runtime. Its CPU kernels do not compute in FP16 here: it
/// wraps FP16 nodes in Casts of its own and then drops pairs of them with ours, so the FP16
/// model runs with FP32 activations and only the FP16 constants are really rounded. This
/// builds the FP32 model with the FP16 model's constants and with an explicit FP32 -> FP16 ->
/// FP32 Cast pair (which ONNX Runtime keeps) on every tensor the FP16 model holds in float16:
/// FP16 storage with FP32 arithmetic inside each node. TensorRT's FP16 kernels also store
/// FP16 but may accumulate in FP16, so its error can be somewhat larger than this one.
fn fp16_emulation(m: &Model, h: &Model, sum: &Fp16Summary) -> Model {
    let (g, hg) = (Graph::new(m), Graph::new(h));
    let in_h: HashMap<&str, &NodeProto> = h
        .proto
        .graph
        .node
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    let ty = elem_types(m);
    let converted: HashSet<&String> = sum.converted.iter().collect();
    let mut p = Patch::new(&g);
    let pair = |p: &mut Patch, at, from: &str, to: &str| {
        let half = p.fresh(&format!("{to}_half"));
        let (c1, c2) = (
            p.fresh(&format!("{to}_round")),
            p.fresh(&format!("{to}_back")),
        );
        p.insert_before(
            at,
            node("Cast", &c1, &[from], &[&half], vec![int_attr("to", 10)]),
        );
        p.insert_before(
            at,
            node("Cast", &c2, &[&half], &[to], vec![int_attr("to", 1)]),
        );
    };
    let mut rounded: HashMap<String, String> = HashMap::new();
    let mut consts: HashMap<String, String> = HashMap::new();
    for (id, n) in g.nodes() {
        if !converted.contains(&g.key(id)) {
            continue;
        }
        let hn = in_h[n.name.as_str()];
        for (slot, t) in n.input.iter().enumerate() {
            let ht = hn.input[slot].as_str();
            if t.is_empty() || ty.get(t) != Some(&FLOAT) {
                continue;
            }
            if let Some(c) = hg.constant(ht).filter(|c| c.data_type == FLOAT16) {
                // The FP16 model's values (rounded, clamped), stored as float32.
                let v = trtforge::onnx::tensor::read_f32(c).unwrap();
                if ht == t {
                    if consts.insert(t.clone(), t.clone()).is_none() {
                        p.replace_constant(float_tensor(t, &c.dims, v)).unwrap();
                    }
                } else {
                    let name = consts.entry(t.clone()).or_insert_with(|| {
                        let name = p.fresh(&format!("{t}_rounded"));
                        p.add_initializer(float_tensor(&name, &c.dims, v));
                        name
                    });
                    p.set_input(id, slot, name);
                }
            } else if hg.producer(ht).is_some_and(|c| {
                let c = hg.node(c);
                c.op_type == "Cast" && c.attribute[0].i == 10 && c.input[0] == *t
            }) {
                // A Cast down in the FP16 model, from an input or an FP32 node.
                let r = rounded.entry(t.clone()).or_insert_with(|| {
                    let r = p.fresh(&format!("{t}_rounded"));
                    pair(&mut p, id, t, &r);
                    r
                });
                p.set_input(id, slot, r);
            }
        }
        for (k, o) in n.output.iter().enumerate() {
            if ty.get(o) == Some(&FLOAT) {
                let raw = p.fresh(&format!("{o}_raw"));
                p.node_mut(id).output[k] = raw.clone();
                pair(&mut p, id, &raw, o);
            }
        }
    }
    p.apply().unwrap()
}

/// Tolerance on the generated detector's scores (sigmoids in [0.44, 0.56], logits within
/// ±0.25): rounding the scores to FP16 alone is off by up to half an ulp at 0.5, 2^-12 =
/// 2.4e-4; rounding the ~6 stages before it (stem, b1 and the residual, down, head, gain;
/// Resize and Concat are exact) moves the logits by at most 6 x 2^-11 x 0.25 = 7.3e-4 if
/// every error adds up, which the sigmoid's slope (at most 1/4) turns into 1.8e-4. 1e-3 is
/// about twice that worst case (4.2e-4); the emulated FP16 figure printed is 2.8e-4.
const MAX_ABS: f64 = 1e-3;

#[test]
fn generated_detector_runs_in_fp16_and_stays_close() {
    let m = detector();
    let Some((h, sum)) = convert(&m, &[]) else {
        return;
    };
    let ty = elem_types(&h);
    // Every Conv reads and writes float16 (data, weight and bias).
    assert_eq!(count(&h, "Conv"), 4);
    for n in h.proto.graph.node.iter().filter(|n| n.op_type == "Conv") {
        for t in n.input.iter().chain(&n.output) {
            assert_eq!(ty[t], FLOAT16, "{}: '{t}'", n.name);
        }
    }
    for t in ["res.out", "up.out", "cat.out", "logits"] {
        assert_eq!(ty[t], FLOAT16, "{t}");
    }
    // Weights are now float16 initializers in place; the Mul's Constant scalar too.
    let g = Graph::new(&h);
    assert_eq!(g.initializer("stem.weight").unwrap().data_type, FLOAT16);
    assert_eq!(g.constant("gain").unwrap().data_type, FLOAT16);
    // Resize's scales and roi stay float32, as the spec types them.
    let up = h.proto.graph.node.iter().find(|n| n.name == "up").unwrap();
    assert_eq!(ty[&up.input[1]], FLOAT);
    assert_eq!(ty[&up.input[2]], FLOAT);
    // The interface is unchanged: one Cast in after `images`, one Cast out to `scores`.
    assert_eq!(h.proto.graph.input, m.proto.graph.input);
    assert_eq!(h.proto.graph.output, m.proto.graph.output);
    assert_eq!(ty["images"], FLOAT);
    assert_eq!(ty["scores"], FLOAT);
    assert_eq!(cast_to(producer(&h, "scores").unwrap()), Some(FLOAT as i64));
    let ins = readers(&h, "images");
    assert_eq!(ins.len(), 1);
    assert_eq!(cast_to(ins[0]), Some(FLOAT16 as i64));
    assert_eq!(sum.casts_inserted, 2, "{sum:?}");
    assert_eq!(count(&h, "Cast"), 2);
    // Everything float runs in FP16: 4 convs, 3 activations, Add, Resize, Concat, Mul, Sigmoid.
    assert_eq!(sum.nodes_converted(), 12, "{sum:?}");
    assert_eq!(sum.nodes_kept(), 0, "{sum:?}");
    // 4 convs x (weight, bias) + the gain; the Resize scales stay float.
    assert_eq!(sum.initializers_converted, 9, "{sum:?}");
    assert_eq!(sum.values_clamped, 0);

    let x = input(&[1, 3, 32, 32], 7);
    let Some(fp) = run(&m, "images", &x) else {
        return;
    };
    let hp = run(&h, "images", &x).unwrap();
    let em = run(&fp16_emulation(&m, &h, &sum), "images", &x).unwrap();
    let e = output_errors(&vec![fp.clone()], &vec![hp]);
    let ee = output_errors(&vec![fp], &vec![em]);
    println!(
        "generated detector vs FP32 (tolerance {MAX_ABS:.0e}): FP16 model in ONNX Runtime: \
         cosine {:.7} max abs {:.2e}; FP16 emulated: cosine {:.7} max abs {:.2e}",
        e[0].cosine, e[0].max_abs, ee[0].cosine, ee[0].max_abs
    );
    assert_eq!(e[0].output, "scores");
    for e in [&e[0], &ee[0]] {
        assert!(e.max_abs < MAX_ABS, "{e:?}");
        assert!(e.cosine > 0.9999, "{e:?}");
    }
}

#[test]
fn a_node_the_plan_keeps_stays_float32_between_casts() {
    let m = detector();
    let Some((h, sum)) = convert(&m, &["b1"]) else {
        return;
    };
    let kept: Vec<&str> = sum.kept_by_plan().map(|k| k.node.as_str()).collect();
    assert_eq!(kept, ["b1"], "{sum:?}");
    assert!(!sum.converted.iter().any(|k| k == "b1"));
    let ty = elem_types(&h);
    let b1 = h.proto.graph.node.iter().find(|n| n.name == "b1").unwrap();
    // Its input, weight, bias and output are float32.
    for t in b1.input.iter().chain(&b1.output) {
        assert_eq!(ty[t], FLOAT, "'{t}'");
    }
    let g = Graph::new(&h);
    assert_eq!(g.initializer("b1.weight").unwrap().data_type, FLOAT);
    // A Cast up before it (from the FP16 stem activation), a Cast down after it.
    let before = producer(&h, &b1.input[0]).unwrap();
    assert_eq!(cast_to(before), Some(FLOAT as i64));
    assert_eq!(before.input[0], "stem_act.out");
    let after = readers(&h, "b1.out");
    assert_eq!(after.len(), 1);
    assert_eq!(cast_to(after[0]), Some(FLOAT16 as i64));
    // The neighbours are FP16 still.
    assert_eq!(ty["stem_act.out"], FLOAT16);
    assert_eq!(ty["b1_act.out"], FLOAT16);
    assert_eq!(sum.casts_inserted, 4, "{sum:?}");
    let x = input(&[1, 3, 32, 32], 3);
    let Some(fp) = run(&m, "images", &x) else {
        return;
    };
    let e = output_errors(&vec![fp], &vec![run(&h, "images", &x).unwrap()]);
    assert!(e[0].max_abs < MAX_ABS, "{e:?}");
}

/// Shape arithmetic done in float (Shape -> Cast -> Mul -> Cast -> Resize sizes) stays FP32;
/// a constant read by an FP16 and an FP32 node gets an FP16 copy; a constant beyond FP16's
/// range is clamped.
#[test]
fn shape_math_stays_fp32_shared_constants_are_copied_and_big_values_clamped() {
    let mut b = GraphBuilder::new("shapes");
    b.graph.input.push(value_info("images", &[1, 3, 8, 8]));
    let c = b.conv("c", "images", 3, 4, 3, 1);
    b.graph.initializer.extend([
        float_tensor("factor", &[4], vec![1.0, 1.0, 2.0, 2.0]),
        float_tensor("two", &[1], vec![2.0]),
        float_tensor("big", &[1], vec![1.0e5]),
    ]);
    let mut push = |op: &str, name: &str, ins: &[&str], out: &str, attrs| {
        b.graph.node.push(node(op, name, ins, &[out], attrs));
    };
    push("Shape", "shape", &[&c], "s", vec![]);
    push("Cast", "to_float", &["s"], "sf", vec![int_attr("to", 1)]);
    push("Mul", "sizes_mul", &["sf", "factor"], "sizes_f", vec![]);
    push(
        "Cast",
        "to_int",
        &["sizes_f"],
        "sizes",
        vec![int_attr("to", 7)],
    );
    push(
        "Resize",
        "up",
        &[&c, "", "", "sizes"],
        "up.out",
        vec![string_attr("mode", "nearest")],
    );
    push("Mul", "double", &["up.out", "two"], "d", vec![]);
    push("Min", "cap", &["d", "big"], "capped", vec![]);
    push("Mul", "again", &["capped", "two"], "y", vec![]);
    b.graph.output.push(value_info("y", &[1, 4, 16, 16]));
    let m = b.finish(13, "shapes.onnx");
    let Some((h, sum)) = convert(&m, &["again"]) else {
        return;
    };
    let why = |k: &str| sum.kept.iter().find(|n| n.node == k).map(|n| n.why.clone());
    assert!(
        matches!(why("sizes_mul"), Some(KeepReason::OpRule(r)) if r.contains("constants and shapes")),
        "{sum:?}"
    );
    assert_eq!(why("again"), Some(KeepReason::Plan));
    assert_eq!(sum.converted, ["c", "up", "double", "cap"]);
    let ty = elem_types(&h);
    assert_eq!(ty["sizes_f"], FLOAT);
    assert_eq!(ty["d"], FLOAT16);
    let g = Graph::new(&h);
    assert_eq!(g.initializer("factor").unwrap().data_type, FLOAT);
    // "two" stays float32 for the kept Mul; the converted one reads an FP16 copy.
    assert_eq!(g.initializer("two").unwrap().data_type, FLOAT);
    let double = h
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.name == "double")
        .unwrap();
    let copy = g.initializer(&double.input[1]).unwrap();
    assert_eq!((copy.name.as_str(), copy.data_type), ("two_fp16", FLOAT16));
    let again = h
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.name == "again")
        .unwrap();
    assert_eq!(again.input[1], "two");
    // 1e5 is beyond FP16's 65504: clamped, and counted.
    assert_eq!(sum.values_clamped, 1);
    let big = trtforge::onnx::tensor::read_f32(g.initializer("big").unwrap()).unwrap();
    assert_eq!(big, vec![65504.0]);
    // The model's own Casts stay; ours: images in, `capped` up to the kept Mul. `y` comes
    // from a float32 node, so it needs none.
    assert_eq!(count(&h, "Cast"), 4);
    assert_eq!(sum.casts_inserted, 2, "{sum:?}");
    let x = input(&[1, 3, 8, 8], 5);
    let Some(fp) = run(&m, "images", &x) else {
        return;
    };
    let hp = run(&h, "images", &x).unwrap();
    assert_eq!(hp[0].1.shape(), &[1, 4, 16, 16]);
    // `capped` is rounded to FP16 on its way to the kept Mul (at most 2^-11 of it), the conv's
    // weights too (about as much again): 2^-9 of the output's scale is twice both.
    let scale = fp[0].1.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let e = output_errors(&vec![fp], &vec![hp]);
    println!(
        "shape-math model: max abs {:.2e} of max |y| {scale:.2}",
        e[0].max_abs
    );
    assert!(e[0].max_abs <= scale / 512.0, "{e:?}");
    assert!(e[0].cosine > 0.99999, "{e:?}");
}

#[test]
fn qdq_model_keeps_every_qdq_with_fp32_scales() {
    let m = tiny_detector(32);
    let x = input(&[1, 3, 32, 32], 7);
    let Some(ranges) = minmax_ranges(&m, &x) else {
        return;
    };
    let (q, _) = quantize(&m, &ranges, &QdqOptions::default()).unwrap();
    let Some((h, sum)) = convert(&q, &[]) else {
        return;
    };
    let qdq = |m: &Model| -> Vec<String> {
        m.proto
            .graph
            .node
            .iter()
            .filter(|n| matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear"))
            .map(|n| n.name.clone())
            .collect()
    };
    assert_eq!(qdq(&h), qdq(&q));
    assert_eq!(qdq(&h).len(), 9);
    let ty = elem_types(&h);
    for n in h
        .proto
        .graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear"))
    {
        let scale = Graph::new(&h).initializer(&n.input[1]).unwrap().data_type;
        assert_eq!(scale, FLOAT, "{}: scale", n.name);
        // The float side stays float32 (Q's input, DQ's output).
        let float_side = if n.op_type == "QuantizeLinear" {
            &n.input[0]
        } else {
            &n.output[0]
        };
        assert_eq!(ty[float_side], FLOAT, "{}: '{float_side}'", n.name);
        assert!(sum.kept.iter().any(|k| k.node == n.name
            && matches!(&k.why, KeepReason::OpRule(r) if r.starts_with("Q/DQ"))));
    }
    // The float regions between them are FP16: every Conv and activation.
    for n in h
        .proto
        .graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Relu" | "Sigmoid"))
    {
        assert_eq!(ty[&n.output[0]], FLOAT16, "{}", n.name);
    }
    assert_eq!(sum.nodes_converted(), 6, "{sum:?}");
    let Some(qo) = run(&q, "images", &x) else {
        return;
    };
    let ho = run(&h, "images", &x).unwrap();
    let e = output_errors(&vec![qo], &vec![ho]);
    println!(
        "tiny Q/DQ detector FP16 vs FP32: cosine {:.6} max abs {:.2e}",
        e[0].cosine, e[0].max_abs
    );
    // FP16 rounding ahead of a Q can flip a value across a rounding boundary of the INT8
    // grid: one INT8 step (amax/127) here and there, not more.
    assert!(e[0].cosine > 0.999, "{e:?}");
}

#[test]
fn unconvertible_models_and_unknown_plan_nodes_are_refused() {
    // A plan naming a node the model lacks.
    let m = detector();
    let e = to_fp16(&m, &["nope".to_string()].into()).unwrap_err();
    assert!(matches!(e, trtforge::Error::Onnx { .. }), "{e:?}");
    assert!(e.to_string().contains("'nope'"), "{e}");
    // An op whose output type nothing says, feeding a node that would be converted.
    let mut b = GraphBuilder::new("mystery");
    b.graph.input.push(value_info("images", &[1, 3, 8, 8]));
    let mut mystery = node("Mystery", "mystery", &["images"], &["m"], vec![]);
    mystery.domain = "com.example".into();
    b.graph.node.push(mystery);
    b.graph
        .node
        .push(node("Relu", "act", &["m"], &["y"], vec![]));
    b.graph.output.push(value_info("y", &[1, 3, 8, 8]));
    let mut m = b.finish(13, "mystery.onnx");
    let mut domain = onnx_protobuf::OperatorSetIdProto::new();
    domain.domain = "com.example".into();
    domain.version = 1;
    m.proto.opset_import.push(domain);
    let e = to_fp16(&m, &BTreeSet::new()).unwrap_err().to_string();
    assert!(
        e.contains("mystery.onnx") && e.contains("node 'act' (Relu)") && e.contains("'m'"),
        "{e}"
    );
    // A subgraph reading a tensor that would become FP16 (subgraphs are not entered).
    let mut b = GraphBuilder::new("branch");
    b.graph.input.push(value_info("images", &[1, 3, 8, 8]));
    b.graph.input.push(trtforge::onnx::typed_value_info(
        "flag",
        onnx_protobuf::tensor_proto::DataType::BOOL,
        &[],
    ));
    let c = b.conv("c", "images", 3, 4, 3, 1);
    let branch = |name: &str| {
        let mut body = onnx_protobuf::GraphProto::new();
        body.name = name.into();
        let out = format!("{name}.out");
        body.node
            .push(node("Identity", name, &[c.as_str()], &[&out], vec![]));
        body.output.push(value_info(&out, &[1, 4, 8, 8]));
        let mut a = onnx_protobuf::AttributeProto::new();
        a.name = format!("{name}_branch");
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::GRAPH.into();
        a.g = Some(body).into();
        a
    };
    let (then, els) = (branch("then"), branch("else"));
    b.graph
        .node
        .push(node("If", "choose", &["flag"], &["y"], vec![then, els]));
    b.graph.output.push(value_info("y", &[1, 4, 8, 8]));
    let e = to_fp16(&b.finish(13, "branch.onnx"), &BTreeSet::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node 'choose' (If)") && e.contains("subgraph reads 'c.out'"),
        "{e}"
    );
    // Declared, the rewrite goes ahead, but ONNX Runtime does not know the op: the written
    // model is refused with its error, not returned.
    m.proto
        .graph
        .mut_or_insert_default()
        .value_info
        .push(value_info("m", &[1, 3, 8, 8]));
    match to_fp16(&m, &BTreeSet::new()) {
        Err(e @ trtforge::Error::Unavailable { .. }) => skip_or_panic(e),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("does not load in ONNX Runtime"), "{e}");
            assert!(e.contains("Mystery"), "{e}");
        }
        Ok(_) => panic!("a model ONNX Runtime cannot load was returned"),
    }
}

/// The shared detectors converted whole, run in ONNX Runtime on one real COCO image
/// preprocessed with each recipe's contract, compared with FP32 by cosine similarity.
#[test]
fn shared_detectors_convert_and_stay_close_to_fp32() {
    // Measured (printed below) on 000000000009.jpg: YOLOX-nano 0.99997 run as FP16 in ONNX
    // Runtime and 0.99988 emulated; NanoDet-m >= 0.99999 on all six outputs, both ways.
    // Over 16 coco128 images (every 8th) the worst were YOLOX 0.99987 / 0.99963 and NanoDet
    // 0.99999 / 0.99998. FP16 keeps 11 significant bits, so outputs keep a relative error of
    // ~1e-3 to 3e-2 (YOLOX's raw 0..255 input and its unbounded box regressions are the
    // larger end), a cosine of 1 - 1e-4 at worst. The thresholds sit below the worst images
    // measured (the ONNX Runtime figure at 1 - 5e-4, the emulated one at 1 - 1e-3), while a
    // broken rewrite (a wrong Cast, a slot in the wrong type, an overflow to inf) lands far
    // lower or fails to load.
    const MIN_COSINE: f64 = 0.9995;
    const MIN_EMULATED_COSINE: f64 = 0.999;
    for (model, recipe) in [
        (
            "models/yolox_nano/yolox_nano.onnx",
            "engines/yolox-nano-int8.yaml",
        ),
        (
            "models/nanodet_m_320/nanodet_m_320.onnx",
            "engines/nanodet-m-320-int8.yaml",
        ),
    ] {
        let Some(path) = common::shared(model) else {
            return;
        };
        let Some(image) = common::shared("datasets/coco128-train/images/000000000009.jpg") else {
            return;
        };
        let r = trtforge::recipe::LoadedRecipe::load(&common::crate_root().join(recipe)).unwrap();
        let c = &r.recipe.input;
        let x = trtforge::data::preprocess::preprocess_image(&image, c)
            .unwrap()
            .0
            .insert_axis(ndarray::Axis(0))
            .into_dyn();
        let m = Model::load(&path).unwrap();
        let started = std::time::Instant::now();
        let Some((h, sum)) = convert(&m, &[]) else {
            return;
        };
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(h.proto.graph.input, m.proto.graph.input, "{model}");
        assert_eq!(h.proto.graph.output, m.proto.graph.output, "{model}");
        let convs: Vec<String> = Graph::new(&m)
            .nodes()
            .filter(|(_, n)| n.op_type == "Conv")
            .map(|(id, _)| Graph::new(&m).key(id))
            .collect();
        for k in &convs {
            assert!(
                sum.converted.contains(k),
                "{model}: Conv '{k}' not converted"
            );
        }
        // Declared value infos follow the new types (YOLOX declares 368 of them).
        let written_by_converted: HashSet<&String> = h
            .proto
            .graph
            .node
            .iter()
            .filter(|n| sum.converted.contains(&n.name))
            .flat_map(|n| &n.output)
            .collect();
        for v in &m.proto.graph.value_info {
            let now = h.proto.graph.value_info.iter().find(|w| w.name == v.name);
            let now = now.map(|w| w.type_.tensor_type().elem_type);
            if written_by_converted.contains(&v.name) {
                assert_eq!(now, Some(FLOAT16), "{model}: value_info '{}'", v.name);
            }
        }
        println!(
            "{model}: {} nodes FP16, {} kept FP32, {} casts, {} constants FP16, {} clamped, \
             {} flushed to 0, converted in {secs:.2}s",
            sum.nodes_converted(),
            sum.nodes_kept(),
            sum.casts_inserted,
            sum.initializers_converted,
            sum.values_clamped,
            sum.values_flushed
        );
        for k in &sum.kept {
            println!("  kept {} ({}): {:?}", k.node, k.op, k.why);
        }
        let Some(fp) = run(&m, &c.tensor, &x) else {
            return;
        };
        let hp = run(&h, &c.tensor, &x).unwrap();
        let em = run(&fp16_emulation(&m, &h, &sum), &c.tensor, &x).unwrap();
        assert_eq!(fp.len(), m.proto.graph.output.len(), "{model}");
        let e = output_errors(&vec![fp.clone()], &vec![hp]);
        let ee = output_errors(&vec![fp], &vec![em]);
        for (e, ee) in e.iter().zip(&ee) {
            println!(
                "{model}: {}: FP16 model in ONNX Runtime cosine {:.7} max abs {:.3e}; \
                 FP16 emulated cosine {:.7} max abs {:.3e}",
                e.output, e.cosine, e.max_abs, ee.cosine, ee.max_abs
            );
            assert!(e.cosine > MIN_COSINE, "{model}: {e:?}");
            assert!(ee.cosine > MIN_EMULATED_COSINE, "{model}: emulated {ee:?}");
        }
    }
}
