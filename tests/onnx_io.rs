//! ONNX I/O: lossless round trips of the shared models, external data, bad files.

mod common;

use protobuf::Message;
use trtforge::exec::OrtSession;
use trtforge::onnx::{self, Model};

#[test]
fn round_trip_of_every_shared_model_is_lossless() {
    for path in common::shared_models() {
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::load(&path).unwrap();
        let written = model.to_bytes().unwrap();
        let reparsed = Model::from_bytes(&written, &path).unwrap();
        // Same message in every field (nodes, attributes, initializers, metadata, opsets,
        // doc strings, unknown fields) ...
        assert_eq!(model.proto, reparsed.proto, "{}", path.display());
        let g = &model.proto.graph;
        let original = onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap();
        assert_eq!(original, model.proto);
        assert_eq!(original.metadata_props, reparsed.proto.metadata_props);
        assert_eq!(original.doc_string, reparsed.proto.doc_string);
        assert!(!g.node.is_empty());
        // ... and writing is a fixpoint (the exporters' field order may differ from protobuf's
        // canonical one, so the first write need not equal the original bytes).
        assert_eq!(reparsed.to_bytes().unwrap(), written, "{}", path.display());
    }
}

#[test]
fn round_trip_gives_bit_identical_onnx_runtime_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for path in common::shared_models() {
        let model = Model::load(&path).unwrap();
        let copy = dir.path().join(path.file_name().unwrap());
        model.save(&copy).unwrap();
        let shape = onnx::input_shape(
            &model,
            &onnx::Graph::new(&model).real_inputs()[0].name,
            &Default::default(),
        )
        .unwrap();
        let input_name = onnx::Graph::new(&model).real_inputs()[0].name.clone();
        let x = common::real_input(&path, &shape);
        let mut a = OrtSession::open(&path, &[]).unwrap();
        let mut b = OrtSession::open(&copy, &[]).unwrap();
        let ya = a.run(&[(&input_name, x.view())]).unwrap();
        let yb = b.run(&[(&input_name, x.view())]).unwrap();
        assert_eq!(ya.len(), yb.len());
        assert!(!ya.is_empty());
        for ((na, ta), (nb, tb)) in ya.iter().zip(&yb) {
            assert_eq!(na, nb);
            assert_eq!(ta.shape(), tb.shape());
            let same = ta
                .iter()
                .zip(tb.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(
                same,
                "{}: output {na} differs after round trip",
                path.display()
            );
        }
    }
}

#[test]
fn initializers_listed_as_inputs_and_constant_weights_are_handled() {
    for path in common::shared_models() {
        let model = Model::load(&path).unwrap();
        let ins = onnx::inspect(&model);
        // Only real inputs are reported, whatever IR version listed initializers as inputs.
        assert_eq!(ins.inputs.len(), 1, "{}", path.display());
        assert!(
            ins.params > 100_000,
            "{}: params {}",
            path.display(),
            ins.params
        );
        assert!((6..=8).contains(&ins.ir_version), "{}", path.display());
        assert!((11..=12).contains(&ins.opset), "{}", path.display());
    }
}

/// The tiny detector's first weight, to edit.
fn stem_weight(m: &mut Model) -> &mut onnx_protobuf::TensorProto {
    let g = m.proto.graph.mut_or_insert_default();
    g.initializer
        .iter_mut()
        .find(|t| t.name == "stem.weight")
        .unwrap()
}

#[test]
fn external_data_inside_the_folder_loads_and_traversal_is_refused() {
    use onnx_protobuf::{tensor_proto::DataLocation, StringStringEntryProto};
    let dir = tempfile::tempdir().unwrap();
    let mut m = onnx::synth::tiny_detector(16);
    // Move the stem weight to an external file.
    let t = stem_weight(&mut m);
    let values = t.float_data.clone();
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.float_data.clear();
    t.data_location = DataLocation::EXTERNAL.into();
    let kv = |k: &str, v: &str| {
        let mut e = StringStringEntryProto::new();
        e.key = k.into();
        e.value = v.into();
        e
    };
    let mut padded = vec![0u8; 16];
    padded.extend_from_slice(&raw);
    std::fs::write(dir.path().join("weights.bin"), &padded).unwrap();
    t.external_data = vec![
        kv("location", "weights.bin"),
        kv("offset", "16"),
        kv("length", &raw.len().to_string()),
    ];
    let good = dir.path().join("model.onnx");
    std::fs::write(&good, m.proto.write_to_bytes().unwrap()).unwrap();
    let loaded = Model::load(&good).unwrap();
    let t = onnx::Graph::new(&loaded)
        .initializer("stem.weight")
        .unwrap();
    assert_eq!(t.raw_data, raw);
    assert!(t.external_data.is_empty());

    // The same model pointing outside its folder is refused, naming the tensor and the location.
    for bad in ["../weights.bin", "/etc/passwd", "sub/../../weights.bin"] {
        let mut m2 = m.clone();
        let t = stem_weight(&mut m2);
        t.external_data[0] = kv("location", bad);
        let sub = dir.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let p = sub.join("model.onnx");
        std::fs::write(&p, m2.proto.write_to_bytes().unwrap()).unwrap();
        let err = Model::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("stem.weight") && err.contains("outside the model's folder"),
            "{err}"
        );
    }
    // A symlink that escapes is refused too.
    #[cfg(unix)]
    {
        let sub = dir.path().join("linked");
        std::fs::create_dir_all(&sub).unwrap();
        std::os::unix::fs::symlink(dir.path().join("weights.bin"), sub.join("weights.bin"))
            .unwrap();
        std::fs::write(sub.join("model.onnx"), m.proto.write_to_bytes().unwrap()).unwrap();
        let err = Model::load(&sub.join("model.onnx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the model's folder"), "{err}");
    }
}

#[test]
fn corrupt_truncated_and_non_onnx_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = onnx::synth::tiny_detector(16).to_bytes().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.onnx", tiny[..tiny.len() / 2].to_vec()),
        ("empty.onnx", vec![]),
        ("text.onnx", b"this is not a model\n".to_vec()),
        ("image.onnx", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = Model::load(&p).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
        assert!(
            err.contains("re-export")
                || err.contains("expected an ONNX model")
                || err.contains("not an ONNX model"),
            "{err}"
        );
        // The CLI: one line, non-zero exit, no panic.
        let (code, out, errout) = common::trtforge(&["inspect", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{errout}");
        assert!(out.is_empty());
        assert_eq!(errout.trim().lines().count(), 1, "{errout}");
        assert!(
            errout.starts_with("error: ") && errout.contains(name),
            "{errout}"
        );
    }
    let (code, _, errout) = common::trtforge(&["inspect", "/nonexistent/model.onnx"]);
    assert_eq!(code, 1);
    assert!(errout.contains("/nonexistent/model.onnx"), "{errout}");
}
