//! The build's decisions per TensorRT version, on a generated detector (plain and with a
//! Q/DQ pair on its input).

use super::*;
use crate::onnx::{float_tensor, int8_tensor, node, synth::tiny_detector, Graph, Patch};
use crate::recipe::LoadedRecipe;
use std::path::Path;

fn v(s: &str) -> TrtVersion {
    TrtVersion::parse(s).unwrap()
}

/// tiny_detector(32) with `images` quantized and dequantized before the stem.
fn with_qdq() -> crate::onnx::Model {
    let m = tiny_detector(32);
    let g = Graph::new(&m);
    let mut p = Patch::new(&g);
    let stem = g.producer("stem.out").unwrap();
    let (scale, zp) = (p.fresh("images.scale"), p.fresh("images.zp"));
    p.add_initializer(float_tensor(&scale, &[], vec![0.02]));
    p.add_initializer(int8_tensor(&zp, &[], &[0]));
    let (q, dq) = (p.fresh("images.q"), p.fresh("images.dq"));
    p.insert_before(
        stem,
        node(
            "QuantizeLinear",
            "q_in",
            &["images", &scale, &zp],
            &[&q],
            vec![],
        ),
    );
    p.insert_before(
        stem,
        node(
            "DequantizeLinear",
            "dq_in",
            &[&q, &scale, &zp],
            &[&dq],
            vec![],
        ),
    );
    p.set_input(stem, 0, &dq);
    p.apply().unwrap()
}

struct Case {
    _dir: tempfile::TempDir,
    job: BuildJob,
}

fn case(qdq: bool, yaml: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    let m = if qdq { with_qdq() } else { tiny_detector(32) };
    m.save(&model).unwrap();
    let text = format!(
        "model: m.onnx\ninput:\n  tensor: images\n  shape: [1, 3, 32, 32]\n  channel_order: rgb\n  resize: stretch\n{yaml}"
    );
    let path = dir.path().join("r.yaml");
    std::fs::write(&path, text).unwrap();
    let job = LoadedRecipe::load(&path).unwrap().build_job().unwrap();
    Case { _dir: dir, job }
}

fn settings_for(c: &Case, library: &str) -> Result<EngineSettings> {
    let plan = super::super::plan::plan(&c.job)?;
    settings(&c.job, &plan, v(library))
}

#[test]
fn qdq_models_are_weakly_typed_int8_before_11_and_best_adds_fp16() {
    for lib in ["8.5", "8.6", "10.3", "10.16"] {
        let target = format!("target:\n  tensorrt: '{lib}'\n");
        let best = settings_for(&case(true, &format!("precision: best\n{target}")), lib).unwrap();
        assert!(!best.strongly_typed, "{lib}");
        assert_eq!(best.flags, [Flag::Fp16, Flag::Int8], "{lib}");
        assert_eq!(best.calibrator, None);
        // fp16 on a Q/DQ model still runs the Q/DQ nodes in INT8.
        let fp16 = settings_for(&case(true, &format!("precision: fp16\n{target}")), lib).unwrap();
        assert_eq!(fp16.flags, [Flag::Fp16, Flag::Int8], "{lib}");
        let int8 = settings_for(&case(true, &format!("precision: int8\n{target}")), lib).unwrap();
        assert_eq!(int8.flags, [Flag::Int8], "{lib}");
    }
}

#[test]
fn tensorrt_11_is_strongly_typed_fp16_comes_from_the_rewrite_and_int8_from_qdq() {
    let c = case(true, "precision: best\ntarget:\n  tensorrt: '11.1'\n");
    let s = settings_for(&c, "11.1").unwrap();
    assert!(s.strongly_typed && s.flags.is_empty(), "{s:?}");
    assert!(s.model.ends_with("r.fp16.onnx"), "{}", s.model.display());
    let s = settings_for(
        &case(true, "precision: int8\ntarget:\n  tensorrt: '11.1'\n"),
        "11.1",
    )
    .unwrap();
    assert!(s.model.ends_with("m.onnx") && s.flags.is_empty());
    // No Q/DQ nodes: no INT8 on 11.
    let c = case(
        false,
        "precision: int8\ncalibration:\n  images: imgs\ntarget:\n  tensorrt: '11.1'\n",
    );
    let e = settings_for(&c, "11.1").unwrap_err().to_string();
    assert!(e.contains("no calibrator") && e.contains("r.yaml"), "{e}");
    // Pins to int8 cannot be expressed on 11.
    let c = case(
        true,
        "precision: best\ntarget:\n  tensorrt: '11.1'\nbuilder:\n  layer_precisions:\n    - {layers: 'head*', precision: int8}\n",
    );
    let e = settings_for(&c, "11.1").unwrap_err().to_string();
    assert!(
        e.contains("builder.layer_precisions") && e.contains("strongly typed"),
        "{e}"
    );
}

#[test]
fn the_calibrator_path_picks_the_algorithm_and_obeys_pins() {
    let yaml = "precision: int8\ncalibration:\n  images: imgs\n  algorithm: minmax\nbuilder:\n  layer_precisions:\n    - {layers: 'head', precision: fp16}\n    - {layers: 'stem*', precision: fp32}\n";
    let c = case(false, yaml);
    let s = settings_for(&c, "10.3").unwrap();
    assert_eq!(s.calibrator, Some(CalibratorKind::MinMax));
    // The fp16 pin needs kFP16; pins are obeyed.
    assert_eq!(
        s.flags,
        [Flag::Int8, Flag::Fp16, Flag::ObeyPrecisionConstraints]
    );
    let layers: Vec<String> = ["stem", "stem_act", "pruned", "head", "head_act"]
        .map(String::from)
        .to_vec();
    let pins = resolve_pins(&s.layer_rules, &layers).unwrap();
    assert_eq!(
        pins,
        [
            (0, DataType::Float),
            (1, DataType::Float),
            (3, DataType::Half)
        ]
    );
    // A pattern that matches nothing is an error naming it and where it comes from.
    let rules = vec![LayerRule {
        pattern: "Conv_9*".into(),
        dtype: DataType::Half,
        source: "builder.layer_precisions".into(),
    }];
    let e = resolve_pins(&rules, &layers).unwrap_err().to_string();
    assert!(
        e.contains("Conv_9*") && e.contains("builder.layer_precisions") && e.contains("stem"),
        "{e}"
    );
    // An int8 pin without INT8 scales is refused.
    let c = case(
        false,
        "precision: fp16\nbuilder:\n  layer_precisions:\n    - {layers: head, precision: int8}\n",
    );
    let e = plan_error(&c);
    assert!(
        e.contains("builder.layer_precisions") && e.contains("int8"),
        "{e}"
    );
}

fn plan_error(c: &Case) -> String {
    super::super::plan::plan(&c.job).unwrap_err().to_string()
}

#[test]
fn dla_follows_trtexec_and_refuses_what_tensorrt_refuses() {
    let dla = "target:\n  device: dla\n  dla_core: 1\n";
    // FP32 is not permitted on the DLA: FP16, preferred constraints, GPU fallback.
    let s = settings_for(&case(false, &format!("precision: fp32\n{dla}")), "10.3").unwrap();
    assert_eq!(s.dla_core, Some(1));
    assert_eq!(
        s.flags,
        [
            Flag::Fp16,
            Flag::PreferPrecisionConstraints,
            Flag::GpuFallback
        ]
    );
    assert!(s.notes.iter().any(|n| n.contains("FP32 is not permitted")));
    // Without GPU fallback every tensor must stay on the DLA's formats: kDIRECT_IO.
    let y = format!("precision: fp16\n{dla}  gpu_fallback: false\nbuilder:\n  dla_sram_mib: 1\n");
    let s = settings_for(&case(false, &y), "10.3").unwrap();
    assert_eq!(*s.flags.last().unwrap(), Flag::DirectIo);
    assert_eq!(s.pools, [(Pool::DlaManagedSram, 1 << 20)]);
    // MinMax calibration is not allowed for the DLA.
    let y = format!("precision: int8\ncalibration:\n  images: imgs\n  algorithm: minmax\n{dla}");
    let e = plan_error(&case(false, &y));
    assert!(
        e.contains("calibration.algorithm") && e.contains("entropy"),
        "{e}"
    );
    // JetPack 7's TensorRT has no DLA.
    let y = format!("precision: fp16\n{dla}  tensorrt: '10.16'\n");
    let e = plan_error(&case(false, &y));
    assert!(e.contains("target.device") && e.contains("no DLA"), "{e}");
    // DLA pools on a GPU build are a mistake in the recipe.
    let e = plan_error(&case(false, "builder:\n  dla_sram_mib: 1\n"));
    assert!(e.contains("builder.dla_sram_mib"), "{e}");
}

#[test]
fn builder_fields_are_checked_before_tensorrt_runs() {
    let e = plan_error(&case(false, "builder:\n  exclude_lean_runtime: true\n"));
    assert!(e.contains("builder.version_compatible"), "{e}");
    let e = plan_error(&case(
        false,
        "builder:\n  hardware_compatibility: same-compute-capability\n",
    ));
    assert!(e.contains("10.16"), "{e}");
    let s = settings_for(
        &case(
            false,
            "builder:\n  version_compatible: true\n  exclude_lean_runtime: true\n  sparsity: true\n  workspace_mib: 64\n  tactic_sources: {disable: [cudnn]}\n  profiling_verbosity: layer-names-only\n",
        ),
        "10.3",
    )
    .unwrap();
    assert_eq!(
        s.flags,
        [
            Flag::SparseWeights,
            Flag::VersionCompatible,
            Flag::ExcludeLeanRuntime
        ]
    );
    assert_eq!(s.pools, [(Pool::Workspace, 64 << 20)]);
    assert_eq!(s.tactics_disable, [TacticSource::Cudnn]);
    assert_eq!(s.profiling_verbosity, ProfilingVerbosity::LayerNamesOnly);
    assert!(s.dump_layer_info);
}

#[test]
fn the_library_must_be_the_recipes_version_unless_allowed() {
    let c = case(false, "target:\n  tensorrt: '10.3'\n");
    let o = &c.job.origin;
    check_library(o, v("10.3"), v("10.3.1"), false).unwrap();
    let e = check_library(o, v("10.3"), v("8.6.2"), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target.tensorrt")
            && e.contains("10.3.0")
            && e.contains("8.6.2")
            && e.contains("--allow-tensorrt-mismatch"),
        "{e}"
    );
    check_library(o, v("10.3"), v("8.6.2"), true).unwrap();
}

#[test]
fn calibration_shapes_come_from_static_dims_or_the_profile() {
    let t = |dims: &[i64]| IoTensor {
        name: "images".into(),
        is_input: true,
        dims: dims.to_vec(),
        dtype: "float32",
    };
    let profile = InputProfile {
        name: "images".into(),
        min: vec![1, 3, 32, 32],
        opt: vec![4, 3, 32, 32],
        max: vec![8, 3, 32, 32],
    };
    assert_eq!(
        calibration_shape(&t(&[2, 3, 32, 32]), &[]).unwrap(),
        [2, 3, 32, 32]
    );
    assert_eq!(
        calibration_shape(&t(&[-1, 3, 32, 32]), std::slice::from_ref(&profile)).unwrap(),
        [4, 3, 32, 32]
    );
    let e = calibration_shape(&t(&[-1, 3, 32, 32]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("builder.profiles.images"), "{e}");
    check_network_inputs(&[t(&[-1, 3, 32, 32])], std::slice::from_ref(&profile)).unwrap();
    assert!(check_network_inputs(&[t(&[-1, 3, 32, 32])], &[]).is_err());
    // A profile whose static dims differ from the network's.
    let e = check_network_inputs(&[t(&[-1, 3, 64, 64])], &[profile])
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");
    let _ = Path::new("");
}
