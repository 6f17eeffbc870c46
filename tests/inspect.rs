//! `trtforge inspect`: MACs, the alignment lint on a pruned model, support warnings, JSON keys.

mod common;

use trtforge::exec::OrtShapes;
use trtforge::onnx::{self, synth, Model};

#[test]
fn pruned_convs_are_flagged_with_wasted_macs() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = synth::tiny_detector(32);
    m.path = dir.path().join("pruned.onnx");
    m.save(&m.path).unwrap();
    let ins = onnx::inspect_with_shapes(
        &Model::load(&m.path).unwrap(),
        &Default::default(),
        &OrtShapes,
    )
    .unwrap();
    // stem: 16 ch (multiple of 8, not of 32), pruned: 27, head: 45.
    let by_node = |n: &str| ins.alignment.iter().find(|f| f.node == n).cloned();
    let pruned = by_node("pruned").expect("27-channel conv flagged");
    assert_eq!(
        (pruned.out_channels, pruned.fp16_padded, pruned.int8_padded),
        (27, 32, 32)
    );
    let head = by_node("head").expect("45-channel conv flagged");
    assert_eq!((head.fp16_padded, head.int8_padded), (48, 64));
    let stem = by_node("stem").expect("16 channels is not a multiple of 32");
    assert_eq!(stem.wasted_macs_fp16, Some(0));
    // MACs by hand: stem 1*16*16*16 outputs * 3*3*3; pruned 27*8*8 * 16*9; head 45*8*8 * 27.
    let stem_macs = 16 * 16 * 16 * 27u64;
    let pruned_macs = 27 * 8 * 8 * 16 * 9u64;
    let head_macs = 45 * 8 * 8 * 27u64;
    assert_eq!(ins.macs, Some(stem_macs + pruned_macs + head_macs));
    assert_eq!(pruned.macs, Some(pruned_macs));
    assert_eq!(pruned.wasted_macs_fp16, Some(pruned_macs * 5 / 27));
    assert_eq!(head.wasted_macs_int8, Some(head_macs * 19 / 45));
}

#[test]
fn shared_models_inspect_with_macs() {
    for path in common::shared_models() {
        let (code, out, err) = common::trtforge(&["inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for key in [
            "opset",
            "ir_version",
            "params",
            "macs",
            "inputs",
            "outputs",
            "ops",
            "alignment",
        ] {
            assert!(
                v.get(key).is_some(),
                "{}: missing key {key}",
                path.display()
            );
        }
        let macs = v["macs"].as_u64().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        // Published figures: YOLOX-nano 1.08 GFLOPs at 416 (0.54 GMACs... counted as MACs in the
        // YOLOX table), NanoDet-m 0.72 GFLOPs at 320, FastestDet 0.25 GFLOPs at 352.
        let (lo, hi) = match name {
            "yolox_nano.onnx" => (0.4e9, 0.7e9),
            "nanodet_m_320.onnx" => (0.25e9, 0.5e9),
            _ => (0.08e9, 0.3e9),
        };
        assert!((lo..hi).contains(&(macs as f64)), "{name}: {macs} MACs");
        assert!(v["ops"]["Conv"].as_u64().unwrap() > 10);
    }
}

#[test]
fn unsupported_ops_are_warnings_and_dynamic_inputs_need_shape() {
    let mut m = synth::tiny_detector(16);
    m.proto.graph.mut_or_insert_default().node.push(onnx::node(
        "Unique",
        "uniq",
        &["scores"],
        &["u"],
        vec![],
    ));
    let ins = onnx::inspect(&m);
    assert!(
        ins.warnings
            .iter()
            .any(|w| w.starts_with("Unique x1") && w.contains("TensorRT")),
        "{:?}",
        ins.warnings
    );
    assert!(
        ins.warnings
            .iter()
            .any(|w| w.contains("DLA") && w.contains("Unique")),
        "{:?}",
        ins.warnings
    );

    // A dynamic batch dimension: MACs need --shape.
    let mut d = synth::tiny_detector(16);
    let dim = &mut d.proto.graph.mut_or_insert_default().input[0]
        .type_
        .mut_or_insert_default()
        .mut_tensor_type()
        .shape
        .mut_or_insert_default()
        .dim[0];
    dim.set_dim_param("batch".into());
    let err = onnx::inspect_with_shapes(&d, &Default::default(), &OrtShapes)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--shape images:"), "{err}");
    let ins = onnx::inspect(&d);
    assert!(ins.inputs[0].dynamic);
    let shapes = [("images".to_string(), vec![2, 3, 16, 16])]
        .into_iter()
        .collect();
    let with = onnx::inspect_with_shapes(&d, &shapes, &OrtShapes).unwrap();
    let single =
        onnx::inspect_with_shapes(&synth::tiny_detector(16), &Default::default(), &OrtShapes)
            .unwrap();
    assert_eq!(with.macs.unwrap(), 2 * single.macs.unwrap());
}
