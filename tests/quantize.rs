//! Q/DQ writer and quantize pipeline: generated models (always) and the shared detectors
//! on coco128 (when ../shared is present).

mod common;

use std::collections::{BTreeSet, HashMap};
use trtforge::data::ImageSet;
use trtforge::onnx::synth::{tiny_detector, GraphBuilder};
use trtforge::onnx::{
    float_tensor, int_attr, ints_attr, node, upgrade_opset, value_info, Graph, Model,
};
use trtforge::quant::plan::{check_disjoint, int8_mac_share, mac_table, output_errors};
use trtforge::quant::{candidates, quantize, QdqOptions};
use trtforge::recipe::{Order, QuantOp};

use common::{minmax_ranges, ort_session as session, ramp_input as input};

#[test]
fn tiny_detector_qdq_runs_and_stays_close() {
    let m = tiny_detector(32);
    let x = input(&[1, 3, 32, 32], 7);
    let Some(ranges) = minmax_ranges(&m, &x) else {
        return;
    };
    let (q, sum) = quantize(&m, &ranges, &QdqOptions::default()).unwrap();
    assert_eq!(sum.quantized.len(), 3, "{sum:?}");
    let ops = |op: &str| {
        q.proto
            .graph
            .node
            .iter()
            .filter(|n| n.op_type == op)
            .count()
    };
    // One activation pair per conv input, one weight DequantizeLinear per conv.
    assert_eq!(ops("QuantizeLinear"), 3);
    assert_eq!(ops("DequantizeLinear"), 6);
    // Per-channel weights: INT8 initializer, axis 0, one scale per output channel.
    let g = Graph::new(&q);
    let w = g.initializer("pruned.weight_quantized").unwrap();
    assert_eq!(w.data_type, 3, "INT8");
    let s = g.initializer("pruned.weight_scale").unwrap();
    assert_eq!(s.dims, vec![27]);
    assert!(!g.is_initializer("pruned.weight"), "float weight dropped");
    // Same inputs and outputs.
    assert_eq!(q.proto.graph.input, m.proto.graph.input);
    assert_eq!(q.proto.graph.output, m.proto.graph.output);
    let fp = session(&m, &[])
        .unwrap()
        .run(&[("images", x.view())])
        .unwrap();
    let qo = session(&q, &[])
        .unwrap()
        .run(&[("images", x.view())])
        .unwrap();
    let e = output_errors(&vec![fp], &vec![qo]);
    assert_eq!(e[0].output, "scores");
    assert!(e[0].cosine > 0.999, "{e:?}");
    assert!(e[0].max_abs < 0.05, "{e:?}");
}

#[test]
fn keep_fp_layers_get_no_qdq() {
    let m = tiny_detector(32);
    let ranges: HashMap<String, f32> = Graph::new(&m)
        .activation_names()
        .into_iter()
        .map(|n| (n, 4.0))
        .collect();
    let all = candidates(&m, &ranges, &BTreeSet::new()).unwrap();
    assert_eq!(
        all.iter().map(|l| l.node.as_str()).collect::<Vec<_>>(),
        ["stem", "pruned", "head"]
    );
    let opts = QdqOptions {
        keep_fp: ["head".to_string()].into(),
        ..Default::default()
    };
    let (q, sum) = quantize(&m, &ranges, &opts).unwrap();
    let g = Graph::new(&q);
    let head = g.node(g.producer("head.out").unwrap());
    assert_eq!(head.input[0], "pruned_act.out");
    assert_eq!(head.input[1], "head.weight");
    assert_eq!(sum.quantized.len(), 2);
    // A tensor with no range is not quantized, and says why.
    let mut partial = ranges.clone();
    partial.remove("stem_act.out");
    let (_, sum) = quantize(&m, &partial, &QdqOptions::default()).unwrap();
    assert!(
        sum.skipped
            .iter()
            .any(|(n, why)| n == "pruned" && why.contains("stem_act.out")),
        "{sum:?}"
    );
}

#[test]
fn residual_add_and_concat_share_a_scale() {
    let mut b = GraphBuilder::new("res");
    b.graph.input.push(value_info("images", &[1, 4, 8, 8]));
    let a = b.conv("a", "images", 4, 4, 3, 1);
    let c = b.conv("c", &a, 4, 4, 3, 1);
    b.graph
        .node
        .push(node("Add", "add", &[&a, &c], &["sum"], vec![]));
    b.graph.node.push(node(
        "Concat",
        "cat",
        &["sum", &a],
        &["out"],
        vec![int_attr("axis", 1)],
    ));
    b.graph.output.push(value_info("out", &[1, 8, 8, 8]));
    let m = b.finish(13, "res.onnx");
    let ranges: HashMap<String, f32> = [
        ("images", 1.0),
        (a.as_str(), 2.0),
        (c.as_str(), 3.0),
        ("sum", 5.0),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    let opts = QdqOptions {
        ops: [QuantOp::Add, QuantOp::Concat].into(),
        ..Default::default()
    };
    let (q, sum) = quantize(&m, &ranges, &opts).unwrap();
    assert_eq!(sum.quantized.len(), 4, "{sum:?}");
    let g = Graph::new(&q);
    let cat = g.node(g.producer("out").unwrap());
    let scale_of = |dq_out: &str| {
        let dq = g.node(g.producer(dq_out).unwrap());
        g.initializer(&dq.input[1]).unwrap().float_data[0]
    };
    // Both Concat inputs carry the widest of their ranges.
    assert_eq!(scale_of(&cat.input[0]), 5.0 / 127.0);
    assert_eq!(scale_of(&cat.input[1]), 5.0 / 127.0);
    if let Some(mut s) = session(&q, &[]) {
        s.run(&[("images", input(&[1, 4, 8, 8], 1).view())])
            .unwrap();
    }
}

#[test]
fn opset_11_split_unsqueeze_squeeze_are_rewritten_for_13() {
    let mut b = GraphBuilder::new("split");
    b.graph.input.push(value_info("images", &[1, 6, 4, 4]));
    b.graph.node.push(node(
        "Split",
        "split",
        &["images"],
        &["p", "q"],
        vec![ints_attr("split", &[2, 4]), int_attr("axis", 1)],
    ));
    b.graph.node.push(node(
        "Unsqueeze",
        "unsq",
        &["p"],
        &["u"],
        vec![ints_attr("axes", &[0])],
    ));
    b.graph.node.push(node(
        "Squeeze",
        "sq",
        &["u"],
        &["pp"],
        vec![ints_attr("axes", &[0])],
    ));
    b.graph
        .initializer
        .push(float_tensor("two", &[1], vec![2.0]));
    b.graph
        .node
        .push(node("Mul", "mul", &["q", "two"], &["qq"], vec![]));
    b.graph.output.push(value_info("pp", &[1, 2, 4, 4]));
    b.graph.output.push(value_info("qq", &[1, 4, 4, 4]));
    let m11 = b.finish(11, "split.onnx");
    let m13 = upgrade_opset(&m11, 13).unwrap();
    assert_eq!(m13.opset(), 13);
    let split = m13
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.name == "split")
        .unwrap();
    assert_eq!(split.input.len(), 2);
    assert!(split.attribute.iter().all(|a| a.name != "split"));
    let x = input(&[1, 6, 4, 4], 3);
    let Some(mut s11) = session(&m11, &[]) else {
        return;
    };
    let a = s11.run(&[("images", x.view())]).unwrap();
    let b = session(&m13, &[])
        .unwrap()
        .run(&[("images", x.view())])
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn softmax_whose_meaning_changes_is_refused() {
    let mut b = GraphBuilder::new("sm");
    b.graph.input.push(value_info("images", &[1, 3, 4]));
    b.graph
        .node
        .push(node("Softmax", "sm", &["images"], &["y"], vec![]));
    b.graph.output.push(value_info("y", &[1, 3, 4]));
    let m = b.finish(11, "sm.onnx");
    let e = upgrade_opset(&m, 13).unwrap_err().to_string();
    assert!(e.contains("'sm'") && e.contains("opset 13"), "{e}");
}

#[test]
fn overlapping_calibration_and_validation_are_refused() {
    let Some(images) = common::shared("datasets/coco128-train/images") else {
        return;
    };
    let cal = ImageSet::from_path(&images, Order::Sorted, 0, Some(4)).unwrap();
    // A validation set with a renamed copy of a calibration image.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&cal.paths()[2], dir.path().join("renamed.jpg")).unwrap();
    let val = ImageSet::from_path(dir.path(), Order::Sorted, 0, None).unwrap();
    let e = check_disjoint(&cal, &val).unwrap_err().to_string();
    assert!(
        e.contains("renamed.jpg") && e.contains("same content"),
        "{e}"
    );
    let all = ImageSet::from_path(&images, Order::Sorted, 0, None).unwrap();
    let rest =
        ImageSet::from_paths(all.paths()[4..8].to_vec(), &images, Order::Sorted, 0, None).unwrap();
    check_disjoint(&cal, &rest).unwrap();
}

/// The shared detectors: Q/DQ from ranges measured on one calibration image, run in ONNX
/// Runtime on two validation images; same interface, opset 13, outputs close to FP32.
#[test]
fn shared_detectors_qdq_run_in_onnx_runtime() {
    let Some(images) = common::shared("datasets/coco128-train/images") else {
        return;
    };
    if common::shared_models().len() < 2 {
        return;
    }
    let all = ImageSet::from_path(&images, Order::Sorted, 0, None).unwrap();
    for recipe in [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-qdq.yaml",
    ] {
        let r = trtforge::recipe::LoadedRecipe::load(&common::crate_root().join(recipe)).unwrap();
        let m = Model::load(&r.model_path()).unwrap();
        let c = &r.recipe.input;
        let prep = |p: &std::path::Path| {
            trtforge::data::preprocess::preprocess_image(p, c)
                .unwrap()
                .0
                .insert_axis(ndarray::Axis(0))
                .into_dyn()
        };
        let x = prep(&all.paths()[0]);
        let names: Vec<String> = Graph::new(&m)
            .activation_names()
            .into_iter()
            .filter(|n| *n != c.tensor)
            .collect();
        let Some(mut s) = session(&m, &names) else {
            return;
        };
        let mut ranges: HashMap<String, f32> = s
            .run(&[(c.tensor.as_str(), x.view())])
            .unwrap()
            .into_iter()
            .map(|(n, a)| (n, a.iter().fold(0f32, |m, v| m.max(v.abs()))))
            .collect();
        ranges.insert(c.tensor.clone(), x.iter().fold(0f32, |m, v| m.max(v.abs())));
        let (q, sum) = quantize(&m, &ranges, &QdqOptions::default()).unwrap();
        assert!(m.opset() < 13 && q.opset() == 13, "{recipe}");
        let convs = m
            .proto
            .graph
            .node
            .iter()
            .filter(|n| n.op_type == "Conv")
            .count();
        assert_eq!(sum.quantized.len(), convs, "{recipe}: every Conv quantized");
        assert_eq!(q.proto.graph.input, m.proto.graph.input);
        assert_eq!(q.proto.graph.output, m.proto.graph.output);
        assert_eq!(q.proto.metadata_props, m.proto.metadata_props);
        let mut fs = session(&m, &[]).unwrap();
        let mut qs = session(&q, &[]).unwrap();
        let (mut fp, mut qo) = (vec![], vec![]);
        for p in &all.paths()[64..66] {
            let v = prep(p);
            fp.push(fs.run(&[(c.tensor.as_str(), v.view())]).unwrap());
            qo.push(qs.run(&[(c.tensor.as_str(), v.view())]).unwrap());
        }
        for e in output_errors(&fp, &qo) {
            println!(
                "{recipe}: {} cosine {:.4} max abs {:.3}",
                e.output, e.cosine, e.max_abs
            );
            assert!(e.cosine > 0.8, "{recipe}: {e:?}");
        }
    }
}

/// The accuracy-aware plan end to end through the CLI, on the recipes' split of coco128-train
/// (first 64 images calibrate, the other 64 validate: every other one chooses the plan, the
/// rest confirm it): on the 32 confirmation images, which the plan never saw, the gate of
/// 0.015 mAP@0.5:0.95 holds with at least 90% of the MACs INT8, naive INT8 is worse, the
/// drop's bootstrap interval holds it, the files are written, and applying the written plan
/// reproduces the planned model.
#[test]
fn accuracy_aware_plan_keeps_map_within_the_gate_on_both_detectors() {
    if common::shared("datasets/coco128-train/images").is_none()
        || common::shared_models().len() < 2
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for recipe in [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-qdq.yaml",
    ] {
        let recipe = common::crate_root().join(recipe);
        let out = tmp.path().join(recipe.file_stem().unwrap());
        let (code, stdout, err) = common::trtforge(&[
            "quantize",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{}: {err}", recipe.display());
        let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let map = |k: &str| r[k]["map50_95"].as_f64().unwrap();
        let (fp32, naive, planned) = (map("fp32"), map("int8_naive"), map("int8_planned"));
        let share = r["int8_mac_share"].as_f64().unwrap();
        println!(
            "{}: FP32 {fp32:.4} naive {naive:.4} planned {planned:.4}, kept {}, INT8 MACs {:.1}%",
            recipe.display(),
            r["layers_kept"],
            share * 100.0
        );
        assert_eq!(r["validation_images"], 64);
        assert_eq!(r["calibration_images"], 64);
        assert_eq!(
            (&r["selection_images"], &r["confirmation_images"]),
            (&serde_json::json!(32), &serde_json::json!(32))
        );
        assert_eq!(r["judged_on_held_out"], true);
        let d = &r["planned_drop"];
        let (drop, low, high) = (
            d["drop"].as_f64().unwrap(),
            d["low"].as_f64().unwrap(),
            d["high"].as_f64().unwrap(),
        );
        assert!((drop - (fp32 - planned)).abs() < 1e-12, "{d}");
        assert!(low <= drop && drop <= high && low < high, "{d}");
        assert_eq!(d["images"], 32);
        assert!(
            fp32 - planned <= 0.015,
            "{}: drop {}",
            recipe.display(),
            fp32 - planned
        );
        assert!(share >= 0.9, "{}: INT8 MACs {share}", recipe.display());
        assert!(
            naive < planned,
            "{}: the plan should help",
            recipe.display()
        );
        assert_eq!(r["gate_met"], true);
        for f in [
            "model.qdq.onnx",
            "precision_plan.json",
            "report.json",
            "report.md",
        ] {
            assert!(out.join(f).is_file(), "{}: {f} missing", recipe.display());
        }
        // Applying the written plan gives the same model, so the same figure.
        let again = tmp.path().join("again");
        let (code, stdout, err) = common::trtforge(&[
            "quantize",
            recipe.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
            "--plan",
            out.join("precision_plan.json").to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let a: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(a["int8_planned"], r["int8_planned"]);
        assert_eq!(a["layers_kept"], r["layers_kept"]);
    }
}

/// Unnamed nodes are keyed as TensorRT names their layers (`node_of_<first output>`) by the
/// MAC table and the Q/DQ writer alike, so their MACs count in the INT8 share.
#[test]
fn unnamed_nodes_count_their_macs_in_the_int8_share() {
    let mut m = tiny_detector(32);
    for n in m.proto.graph.mut_or_insert_default().node.iter_mut() {
        n.name.clear();
    }
    let ranges: HashMap<String, f32> = Graph::new(&m)
        .activation_names()
        .into_iter()
        .map(|n| (n, 4.0))
        .collect();
    let (macs, total) = match mac_table(&m, &trtforge::exec::OrtShapes) {
        Ok(t) => t,
        Err(e @ trtforge::Error::Unavailable { .. }) => {
            assert!(!trtforge::env::in_ci(), "{e}");
            eprintln!("SKIP: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // By hand (tests/inspect.rs): stem 16x16x16 outputs x 27, pruned 27x8x8 x 144, head 45x8x8 x 27.
    let (stem, pruned, head) = (
        16 * 16 * 16 * 27u64,
        27 * 8 * 8 * 144u64,
        45 * 8 * 8 * 27u64,
    );
    assert_eq!(total, stem + pruned + head);
    assert_eq!(macs["node_of_pruned.out"], pruned);
    let (_, sum) = quantize(&m, &ranges, &QdqOptions::default()).unwrap();
    let keys: Vec<&str> = sum.quantized.iter().map(|l| l.node.as_str()).collect();
    assert_eq!(
        keys,
        ["node_of_stem.out", "node_of_pruned.out", "node_of_head.out"]
    );
    assert_eq!(int8_mac_share(&sum.quantized, &macs, total), 1.0);
    let opts = QdqOptions {
        keep_fp: ["node_of_head.out".to_string()].into(),
        ..Default::default()
    };
    let (_, sum) = quantize(&m, &ranges, &opts).unwrap();
    let share = int8_mac_share(&sum.quantized, &macs, total);
    assert_eq!(share, (stem + pruned) as f64 / total as f64);
}

/// Models that parse but break an op's rules are ONNX errors naming the node, never a panic.
#[test]
fn malformed_layers_are_onnx_errors_naming_the_node() {
    let model = |n: onnx_protobuf::NodeProto, w_dims: &[i64]| {
        let mut b = GraphBuilder::new("bad");
        b.graph.input.push(value_info("images", &[1, 4]));
        let count = w_dims.iter().product::<i64>().max(1) as usize;
        b.graph
            .initializer
            .push(float_tensor("w", w_dims, vec![0.5; count]));
        b.graph.node.push(n);
        b.graph.output.push(value_info("y", &[1, 4]));
        b.finish(13, "bad.onnx")
    };
    let ranges: HashMap<String, f32> = [("images".to_string(), 1.0)].into();
    let cases = [
        // Conv with its weight missing.
        (
            node("Conv", "conv1", &["images"], &["y"], vec![]),
            vec![4, 4, 1, 1],
            "1 input(s)",
        ),
        // Gemm's B must be 2-D.
        (
            node("Gemm", "gemm1", &["images", "w"], &["y"], vec![]),
            vec![4],
            "rank 1",
        ),
        // MatMul's B cannot be a scalar.
        (
            node("MatMul", "mm0", &["images", "w"], &["y"], vec![]),
            vec![],
            "rank 0",
        ),
    ];
    for (n, dims, why) in cases {
        let name = n.name.clone();
        let m = model(n, &dims);
        let e = quantize(&m, &ranges, &QdqOptions::default()).unwrap_err();
        assert!(matches!(e, trtforge::Error::Onnx { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("bad.onnx") && e.contains(&format!("'{name}'")) && e.contains(why),
            "{e}"
        );
        assert!(candidates(&m, &ranges, &BTreeSet::new()).is_err());
    }
    // A weight whose data does not fill its dims.
    let mut m = model(
        node("MatMul", "mm", &["images", "w"], &["y"], vec![]),
        &[4, 4],
    );
    m.proto.graph.mut_or_insert_default().initializer[0]
        .float_data
        .truncate(3);
    let e = quantize(&m, &ranges, &QdqOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("'mm'") && e.contains("3 values"), "{e}");
}

/// Too few validation images to split into a part that chooses and a part that confirms:
/// a one-line error naming the counts and the two settings to change, exit non-zero, and no
/// Q/DQ model written.
#[test]
fn a_validation_set_too_small_to_split_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_detector(32);
    m.path = dir.path().join("tiny.onnx");
    m.save(&m.path).unwrap();
    let (cal, val) = (dir.path().join("cal"), dir.path().join("val"));
    for (d, files) in [
        (&cal, &["chelsea.png", "coffee.png"][..]),
        (
            &val,
            &["astronaut.png", "rocket.jpg", "grace_hopper.jpg"][..],
        ),
    ] {
        std::fs::create_dir_all(d).unwrap();
        for f in files {
            std::fs::copy(common::crate_root().join("calib_data").join(f), d.join(f)).unwrap();
        }
    }
    std::fs::create_dir_all(dir.path().join("labels")).unwrap();
    let recipe = dir.path().join("tiny.yaml");
    std::fs::write(
        &recipe,
        "model: tiny.onnx\ninput:\n  tensor: images\n  shape: [1, 3, 32, 32]\n  channel_order: bgr\n  \
         scale: 0.00392156862745098\n  resize: letterbox-centre\n  pad_value: 114\noutput: out\n\
         decoder: yolox\ncalibration:\n  images: cal\n  batch_size: 1\n\
         quantize:\n  validation:\n    images: val\n    labels: labels\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, _, err) = common::trtforge(&[
        "quantize",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    if err.contains("ONNX Runtime") && !trtforge::env::in_ci() {
        eprintln!("SKIP: {err}");
        return;
    }
    assert_ne!(code, 0, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for want in [
        "3 validation images",
        "2 to choose",
        "1 to confirm",
        "quantize.validation.confirm",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!out.join("model.qdq.onnx").exists());
    assert!(
        !out.join("calibration.cache").exists(),
        "refused before calibrating"
    );
}
