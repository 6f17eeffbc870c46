//! The opset upgrade to 13 on generated models, one per form an export at opset 9-12 has:
//! ONNX Runtime gives bit-identical outputs before and after (every op here is computed the
//! same way by the same kernel at both opsets), and what cannot be kept exact is refused.

mod common;

use ndarray::ArrayD;
use onnx_protobuf::tensor_proto::DataType;
use trtforge::onnx::synth::GraphBuilder;
use trtforge::onnx::{
    float_attr, float_tensor, int64_tensor, int_attr, ints_attr, node, string_attr, tensor_attr,
    typed_value_info, upgrade_opset, value_info, Graph, Model,
};

use common::{ort_session as session, ramp_input};

/// Outputs of `m` on `inputs`, or None when ONNX Runtime is absent (outside CI).
fn run(m: &Model, inputs: &[(&str, &ArrayD<f32>)]) -> Option<Vec<(String, ArrayD<f32>)>> {
    let views: Vec<_> = inputs.iter().map(|(n, a)| (*n, a.view())).collect();
    Some(session(m, &[])?.run(&views).unwrap())
}

fn assert_bitwise(a: &[(String, ArrayD<f32>)], b: &[(String, ArrayD<f32>)]) {
    assert_eq!(a.len(), b.len());
    for ((na, xa), (nb, xb)) in a.iter().zip(b) {
        assert_eq!((na, xa.shape()), (nb, xb.shape()));
        let bits = |x: &ArrayD<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(xa), bits(xb), "output {na} differs");
    }
}

/// Upgrade `m` to 13, check the result loads and computes bit for bit what `reference`
/// (by default `m` itself) computes; returns the upgraded model.
fn upgraded_same(m: &Model, reference: Option<&Model>, inputs: &[(&str, &ArrayD<f32>)]) -> Model {
    let up = upgrade_opset(m, 13).unwrap();
    assert_eq!(up.opset(), 13);
    assert!(up.proto.ir_version >= 7);
    if let Some(before) = run(reference.unwrap_or(m), inputs) {
        trtforge::exec::check_loads(&up).unwrap();
        let after = run(&up, inputs).unwrap();
        assert_bitwise(&before, &after);
    }
    up
}

fn find<'m>(m: &'m Model, name: &str) -> &'m onnx_protobuf::NodeProto {
    m.proto.graph.node.iter().find(|n| n.name == name).unwrap()
}

fn attr_s(n: &onnx_protobuf::NodeProto, name: &str) -> Option<String> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// A graph output of any type and shape (ONNX Runtime infers them).
fn out(name: &str) -> onnx_protobuf::ValueInfoProto {
    let mut v = onnx_protobuf::ValueInfoProto::new();
    v.name = name.into();
    v
}

fn empty(name: &str) -> onnx_protobuf::TensorProto {
    float_tensor(name, &[0], vec![])
}

/// The NanoDet-m form: opset 11, IR 6, every initializer also a graph input, a Resize with
/// `sizes` and an empty initializer `scales`/`roi`; next to it the YOLOX form, empty
/// Constant-node `roi` and `scales` beside `sizes`, and a Resize with non-empty `scales`.
#[test]
fn nanodet_resize_with_sizes_and_empty_scales_upgrades_and_stays_identical() {
    let mut b = GraphBuilder::new("nanodet_like");
    b.graph.input.push(value_info("images", &[1, 3, 6, 5]));
    let c = b.conv("conv", "images", 3, 4, 3, 1);
    for (n, dims) in [("conv.weight", vec![4, 3, 3, 3]), ("conv.bias", vec![4])] {
        b.graph.input.push(value_info(n, &dims));
    }
    for t in [empty("roi"), empty("scales")] {
        b.graph.input.push(value_info(&t.name, &[0]));
        b.graph.initializer.push(t);
    }
    b.graph
        .initializer
        .push(int64_tensor("sizes", &[1, 4, 12, 10]));
    b.graph
        .input
        .push(typed_value_info("sizes", DataType::INT64, &[4]));
    b.graph.node.push(node(
        "Resize",
        "Resize_222",
        &[&c, "roi", "scales", "sizes"],
        &["up"],
        vec![
            string_attr("coordinate_transformation_mode", "pytorch_half_pixel"),
            string_attr("mode", "linear"),
            string_attr("nearest_mode", "floor"),
            float_attr("cubic_coeff_a", -0.75),
        ],
    ));
    for (out, t) in [("c_roi", empty("")), ("c_scales", empty(""))] {
        b.graph.node.push(node(
            "Constant",
            out,
            &[],
            &[out],
            vec![tensor_attr("value", t)],
        ));
    }
    b.graph.node.push(node(
        "Resize",
        "Resize_yolox",
        &["up", "c_roi", "c_scales", "sizes"],
        &["up2"],
        vec![
            string_attr("coordinate_transformation_mode", "asymmetric"),
            string_attr("mode", "nearest"),
            string_attr("nearest_mode", "floor"),
        ],
    ));
    b.graph
        .initializer
        .push(float_tensor("two", &[4], vec![1.0, 1.0, 2.0, 2.0]));
    b.graph.node.push(node(
        "Resize",
        "Resize_scales",
        &["up", "roi", "two"],
        &["up3"],
        vec![string_attr("mode", "nearest")],
    ));
    b.graph.output.push(value_info("up2", &[1, 4, 12, 10]));
    b.graph.output.push(value_info("up3", &[1, 4, 24, 20]));
    let mut m = b.finish(11, "nanodet_like.onnx");
    m.proto.ir_version = 6;

    // What the bug report saw: the opset raised alone, ONNX Runtime refuses the Resize.
    let mut naive = m.clone();
    naive.proto.opset_import[0].version = 13;
    naive.proto.ir_version = 7;
    if session(&m, &[]).is_some() {
        let e = trtforge::exec::check_loads(&naive).unwrap_err().to_string();
        assert!(
            e.starts_with("nanodet_like.onnx: node 'Resize_222' (Resize): ")
                && e.contains("not written")
                && !e.contains('\n'),
            "{e}"
        );
    }

    let x = ramp_input(&[1, 3, 6, 5], 11);
    let up = upgraded_same(&m, None, &[("images", &x)]);
    assert_eq!(find(&up, "Resize_222").input, ["conv.out", "", "", "sizes"]);
    assert_eq!(find(&up, "Resize_yolox").input, ["up", "", "", "sizes"]);
    assert_eq!(find(&up, "Resize_scales").input, ["up", "", "two"]);
    // Modes are kept.
    let r = find(&up, "Resize_222");
    assert_eq!(
        attr_s(r, "coordinate_transformation_mode").as_deref(),
        Some("pytorch_half_pixel")
    );
    assert_eq!(attr_s(r, "nearest_mode").as_deref(), Some("floor"));
    // The empty constants nobody reads are gone, with their graph input entries; the
    // weights stay listed as inputs, as the export had them.
    let g = Graph::new(&up);
    assert!(!g.is_constant("roi") && !g.is_constant("scales") && !g.is_constant("c_roi"));
    let inputs: Vec<&str> = up
        .proto
        .graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(inputs, ["images", "conv.weight", "conv.bias", "sizes"]);
}

/// Upsample-9 and Resize-10 become Resize-13 with asymmetric coordinates; nearest rounds down
/// when upscaling and up when downscaling, as ONNX Runtime does before opset 11.
#[test]
fn upsample_and_resize_10_become_resize_13_with_the_same_rounding() {
    let cases: [(&str, &[f32], &str); 4] = [
        ("nearest", &[1.0, 1.0, 2.0, 3.0], "floor"),
        ("nearest", &[1.0, 1.0, 0.6, 0.75], "ceil"),
        ("linear", &[1.0, 1.0, 2.0, 1.5], ""),
        ("linear", &[1.0, 1.0, 0.5, 0.4], ""),
    ];
    let x = ramp_input(&[1, 2, 5, 7], 5);
    for (op, opset) in [("Upsample", 9), ("Resize", 10)] {
        for (mode, scales, rounding) in cases {
            if op == "Upsample" && scales[2] < 1.0 {
                continue; // Upsample's scales are >= 1
            }
            let build = |opset: i64| {
                let mut b = GraphBuilder::new("up");
                b.graph.input.push(value_info("images", &[1, 2, 5, 7]));
                b.graph
                    .initializer
                    .push(float_tensor("scales", &[4], scales.to_vec()));
                b.graph.node.push(node(
                    op,
                    "up",
                    &["images", "scales"],
                    &["y"],
                    vec![string_attr("mode", mode)],
                ));
                b.graph.output.push(out("y"));
                b.finish(opset, "up.onnx")
            };
            let up = upgraded_same(&build(opset), None, &[("images", &x)]);
            let r = find(&up, "up");
            assert_eq!(
                (r.op_type.as_str(), &r.input[..]),
                (
                    "Resize",
                    &["images".to_string(), String::new(), "scales".into()][..]
                )
            );
            assert_eq!(
                attr_s(r, "coordinate_transformation_mode").as_deref(),
                Some("asymmetric")
            );
            assert_eq!(attr_s(r, "nearest_mode").unwrap_or_default(), rounding);
            if op == "Upsample" {
                // Exporters still write Upsample at opset 10, which ONNX Runtime no longer
                // loads: the upgrade computes what the opset-9 model does.
                let reference = build(9);
                upgraded_same(&build(10), Some(&reference), &[("images", &x)]);
            }
        }
    }
}

/// Opset 9: Slice-1, TopK-1, Clip-6, Pad-2, Dropout-7, Split-2, Squeeze-1, Unsqueeze-1 and
/// ReduceSum-1 carry attributes that are inputs at 13.
#[test]
fn opset_9_attributes_become_inputs_and_outputs_stay_identical() {
    let mut b = GraphBuilder::new("o9");
    b.graph.input.push(value_info("images", &[1, 4, 6, 6]));
    let nodes = [
        node(
            "Slice",
            "slice",
            &["images"],
            &["sl"],
            vec![
                ints_attr("starts", &[1, -5]),
                ints_attr("ends", &[i64::MAX, 5]),
                ints_attr("axes", &[1, 3]),
            ],
        ),
        node(
            "TopK",
            "topk",
            &["sl"],
            &["tv", "ti"],
            vec![int_attr("k", 2)],
        ),
        node("Cast", "cast", &["ti"], &["tif"], vec![int_attr("to", 1)]),
        // No `max`: Clip-6 still clamps +inf to FLT_MAX.
        node(
            "Clip",
            "clip",
            &["images"],
            &["cl"],
            vec![float_attr("min", -0.25)],
        ),
        node(
            "Pad",
            "pad",
            &["cl"],
            &["pd"],
            vec![
                ints_attr("pads", &[0, 0, 1, 2, 0, 1, 0, 1]),
                float_attr("value", 1.5),
            ],
        ),
        node(
            "Pad",
            "pad_reflect",
            &["images"],
            &["pr"],
            vec![
                string_attr("mode", "reflect"),
                ints_attr("pads", &[0, 0, 2, 1, 0, 0, 1, 2]),
            ],
        ),
        node(
            "Dropout",
            "drop",
            &["pd"],
            &["dr"],
            vec![float_attr("ratio", 0.3)],
        ),
        node(
            "Split",
            "split",
            &["images"],
            &["s0", "s1"],
            vec![int_attr("axis", 1), ints_attr("split", &[1, 3])],
        ),
        node(
            "Unsqueeze",
            "unsq",
            &["s0"],
            &["u"],
            vec![ints_attr("axes", &[0])],
        ),
        node(
            "Squeeze",
            "sq",
            &["u"],
            &["q"],
            vec![ints_attr("axes", &[0, 1])],
        ),
        node(
            "ReduceSum",
            "rsum",
            &["s1"],
            &["rs"],
            vec![ints_attr("axes", &[1, 3]), int_attr("keepdims", 0)],
        ),
    ];
    b.graph.node.extend(nodes);
    for o in ["tv", "tif", "dr", "pr", "q", "rs"] {
        b.graph.output.push(out(o));
    }
    let m = b.finish(9, "o9.onnx");
    let mut x = ramp_input(&[1, 4, 6, 6], 9);
    x[[0, 0, 0, 0]] = f32::INFINITY;
    x[[0, 1, 2, 3]] = f32::NEG_INFINITY;
    let up = upgraded_same(&m, None, &[("images", &x)]);
    for (name, inputs) in [
        ("slice", 4),
        ("topk", 2),
        ("clip", 3),
        ("pad", 3),
        ("pad_reflect", 2),
        ("drop", 2),
        ("split", 2),
        ("unsq", 2),
        ("sq", 2),
        ("rsum", 2),
    ] {
        let n = find(&up, name);
        assert_eq!(n.input.len(), inputs, "{name}: {:?}", n.input);
        let kept: Vec<&str> = n.attribute.iter().map(|a| a.name.as_str()).collect();
        assert!(
            kept.iter()
                .all(|a| ["mode", "axis", "keepdims"].contains(a)),
            "{name} keeps {kept:?}"
        );
    }
}

/// Opset 10: Slice-10 and TopK-10 are already in their opset-13 form; Clip-6, Pad-2 and
/// Dropout-10 move their attributes; Resize-10 is covered above.
#[test]
fn opset_10_forms_upgrade_and_stay_identical() {
    let mut b = GraphBuilder::new("o10");
    b.graph.input.push(value_info("images", &[1, 4, 6, 6]));
    for t in [
        int64_tensor("starts", &[0, 1]),
        int64_tensor("ends", &[3, -1]),
        int64_tensor("axes", &[1, 2]),
        int64_tensor("steps", &[2, 1]),
        int64_tensor("k", &[3]),
    ] {
        b.graph.initializer.push(t);
    }
    b.graph.node.extend([
        node(
            "Slice",
            "slice",
            &["images", "starts", "ends", "axes", "steps"],
            &["sl"],
            vec![],
        ),
        node(
            "TopK",
            "topk",
            &["sl", "k"],
            &["tv", "ti"],
            vec![int_attr("axis", 2)],
        ),
        node(
            "Clip",
            "clip",
            &["tv"],
            &["cl"],
            vec![float_attr("min", -0.5), float_attr("max", 0.5)],
        ),
        node(
            "Pad",
            "pad",
            &["cl"],
            &["pd"],
            vec![ints_attr("pads", &[0, 0, 1, 1, 0, 0, 1, 1])],
        ),
        node("Dropout", "drop", &["pd"], &["dr"], vec![]),
    ]);
    b.graph.output.push(out("dr"));
    let m = b.finish(10, "o10.onnx");
    let x = ramp_input(&[1, 4, 6, 6], 10);
    let up = upgraded_same(&m, None, &[("images", &x)]);
    assert_eq!(find(&up, "slice"), find(&m, "slice"));
    assert_eq!(find(&up, "topk"), find(&m, "topk"));
    assert_eq!(find(&up, "clip").input.len(), 3);
    // Pad without `value` pads with 0, as constant_value does when omitted.
    assert_eq!(find(&up, "pad").input.len(), 2);
    assert_eq!(find(&up, "drop"), find(&m, "drop"));
}

/// Opset 11 and 12: Clip, Pad, Slice, TopK already take inputs, the reductions other than
/// ReduceSum keep `axes` until 18, Softmax on the last axis (-1, or 3 of a declared 4-D input)
/// means the same: nodes are unchanged.
#[test]
fn opset_11_and_12_forms_that_do_not_change_are_left_alone() {
    for opset in [11, 12] {
        let mut b = GraphBuilder::new("o11");
        b.graph.input.push(value_info("images", &[1, 4, 6, 6]));
        for t in [
            float_tensor("lo", &[], vec![-0.5]),
            float_tensor("hi", &[], vec![0.75]),
            int64_tensor("pads", &[0, 0, 1, 0, 0, 0, 2, 1]),
            float_tensor("pv", &[], vec![0.25]),
            int64_tensor("starts", &[-4]),
            int64_tensor("ends", &[i64::MAX]),
            int64_tensor("axes", &[-1]),
            int64_tensor("k", &[2]),
        ] {
            b.graph.initializer.push(t);
        }
        b.graph.node.extend([
            node("Clip", "clip", &["images", "lo", "hi"], &["cl"], vec![]),
            node("Clip", "clip_lo", &["images", "lo"], &["cl2"], vec![]),
            node("Pad", "pad", &["cl", "pads", "pv"], &["pd"], vec![]),
            node(
                "Slice",
                "slice",
                &["pd", "starts", "ends", "axes"],
                &["sl"],
                vec![],
            ),
            node(
                "TopK",
                "topk",
                &["sl", "k"],
                &["tv", "ti"],
                vec![
                    int_attr("axis", -2),
                    int_attr("largest", 0),
                    int_attr("sorted", 1),
                ],
            ),
            node(
                "ReduceMean",
                "rmean",
                &["tv"],
                &["rm"],
                vec![ints_attr("axes", &[1, -1])],
            ),
            node(
                "ReduceMax",
                "rmax",
                &["cl2"],
                &["rx"],
                vec![ints_attr("axes", &[2]), int_attr("keepdims", 0)],
            ),
            node("ReduceMin", "rmin", &["cl2"], &["rn"], vec![]),
            node(
                "Softmax",
                "sm",
                &["images"],
                &["smo"],
                vec![int_attr("axis", -1)],
            ),
            // FastestDet's form: the last axis by number, on an input of declared rank 4.
            node(
                "Softmax",
                "sm3",
                &["images"],
                &["sm3o"],
                vec![int_attr("axis", 3)],
            ),
            node("Dropout", "drop", &["rx"], &["dr"], vec![]),
        ]);
        for o in ["rm", "dr", "rn", "smo", "sm3o"] {
            b.graph.output.push(out(o));
        }
        let m = b.finish(opset, "o11.onnx");
        let x = ramp_input(&[1, 4, 6, 6], 12);
        let up = upgraded_same(&m, None, &[("images", &x)]);
        assert_eq!(up.proto.graph.node, m.proto.graph.node, "opset {opset}");
    }
}

/// What the upgrade cannot keep exact is refused with the model file, the node and the fix.
#[test]
fn forms_that_cannot_stay_exact_are_refused_naming_file_and_node() {
    let one = |opset: i64, n: onnx_protobuf::NodeProto, inits: Vec<onnx_protobuf::TensorProto>| {
        let mut b = GraphBuilder::new("bad");
        b.graph.input.push(value_info("images", &[1, 2, 4, 4]));
        b.graph.initializer.extend(inits);
        for o in &n.output {
            b.graph.output.push(out(o));
        }
        b.graph.node.push(n);
        let m = b.finish(opset, "bad.onnx");
        upgrade_opset(&m, 13).unwrap_err().to_string()
    };
    let cases = [
        one(
            11,
            node(
                "Resize",
                "tfnn",
                &["images", "roi", "sc"],
                &["y"],
                vec![string_attr(
                    "coordinate_transformation_mode",
                    "tf_half_pixel_for_nn",
                )],
            ),
            vec![
                empty("roi"),
                float_tensor("sc", &[4], vec![1.0, 1.0, 2.0, 2.0]),
            ],
        ),
        one(
            10,
            node("Resize", "mixed", &["images", "sc"], &["y"], vec![]),
            vec![float_tensor("sc", &[4], vec![1.0, 1.0, 2.0, 0.6])],
        ),
        one(
            11,
            node(
                "Resize",
                "nosizes",
                &["images", "roi", "sc"],
                &["y"],
                vec![],
            ),
            vec![empty("roi"), empty("sc")],
        ),
        one(
            11,
            node(
                "Softmax",
                "sm",
                &["images"],
                &["y"],
                vec![int_attr("axis", 1)],
            ),
            vec![],
        ),
        one(
            9,
            node("Dropout", "dmask", &["images"], &["y", "mask"], vec![]),
            vec![],
        ),
        one(8, node("Relu", "old", &["images"], &["y"], vec![]), vec![]),
    ];
    let wants = [
        "node 'tfnn' (Resize)",
        "node 'mixed' (Resize)",
        "node 'nosizes' (Resize)",
        "node 'sm' (Softmax)",
        "node 'dmask' (Dropout)",
        "opset 8",
    ];
    for (e, want) in cases.iter().zip(wants) {
        assert!(e.starts_with("bad.onnx: ") && e.contains(want), "{e}");
        assert!(e.contains("re-export") && !e.contains('\n'), "{e}");
    }
}

/// An op that changes inside a subgraph is not rewritten there: refused, naming both.
#[test]
fn changed_ops_inside_subgraphs_are_refused() {
    let mut body = onnx_protobuf::GraphProto::new();
    body.name = "then".into();
    body.node.push(node(
        "Unsqueeze",
        "inner",
        &["images"],
        &["u"],
        vec![ints_attr("axes", &[0])],
    ));
    body.output.push(out("u"));
    let mut then = trtforge::onnx::attr::tensor_attr("then_branch", float_tensor("", &[], vec![]));
    then.type_ = onnx_protobuf::attribute_proto::AttributeType::GRAPH.into();
    then.t = Default::default();
    then.g = Some(body).into();
    let mut els = then.clone();
    els.name = "else_branch".into();
    let mut b = GraphBuilder::new("sub");
    b.graph.input.push(value_info("images", &[1, 2]));
    b.graph
        .initializer
        .push(trtforge::onnx::tensor::int8_tensor("flag", &[], &[1]));
    let mut iff = node("If", "branch", &["flag"], &["y"], vec![]);
    iff.attribute = vec![then, els];
    b.graph.node.push(iff);
    b.graph.output.push(out("y"));
    let m = b.finish(11, "sub.onnx");
    let e = upgrade_opset(&m, 13).unwrap_err().to_string();
    assert!(
        e.starts_with("sub.onnx: node 'branch' (If)") && e.contains("'inner' (Unsqueeze)"),
        "{e}"
    );
}

/// The load check before writing: a model ONNX Runtime refuses (a Resize with both `sizes`
/// and non-empty `scales`, which opset 13 forbids) is an error naming the file and the node.
#[test]
fn a_model_onnx_runtime_refuses_is_not_accepted_for_writing() {
    let mut b = GraphBuilder::new("both");
    b.graph.input.push(value_info("images", &[1, 2, 4, 4]));
    b.graph
        .initializer
        .push(float_tensor("sc", &[4], vec![1.0, 1.0, 2.0, 2.0]));
    b.graph.initializer.push(int64_tensor("sz", &[1, 2, 8, 8]));
    b.graph.node.push(node(
        "Resize",
        "both_given",
        &["images", "", "sc", "sz"],
        &["y"],
        vec![],
    ));
    b.graph.output.push(out("y"));
    let m = b.finish(13, "both.onnx");
    if session(&b_ok(), &[]).is_none() {
        return;
    }
    let e = trtforge::exec::check_loads(&m).unwrap_err().to_string();
    assert!(
        e.starts_with("both.onnx: node 'both_given' (Resize): ONNX Runtime refuses")
            && e.contains("not written")
            && !e.contains('\n'),
        "{e}"
    );
}

/// A model ONNX Runtime loads (to tell "absent" from "refuses").
fn b_ok() -> Model {
    let mut b = GraphBuilder::new("ok");
    b.graph.input.push(value_info("images", &[1]));
    b.graph
        .node
        .push(node("Relu", "r", &["images"], &["y"], vec![]));
    b.graph.output.push(value_info("y", &[1]));
    b.finish(13, "ok.onnx")
}
