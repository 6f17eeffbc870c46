//! The build pipeline and the engine executor against the TensorRT test double: a recipe goes
//! through the CPU plan, the settings for the compiled TensorRT version and
//! `build::build_serialized` (what `trtforge build` runs after loading TensorRT), and an engine
//! of the double runs through `measure::trt_exec` with host memory. The double enforces
//! TensorRT's rules (tests/trt_double.rs has one test per rule); here every sequence must come
//! out clean, and the settings must reach TensorRT as decided.
//!
//! Needs the `tensorrt` feature (TensorRT and CUDA headers) and a C++ compiler, not TensorRT.
#![cfg(feature = "tensorrt")]

// Shared with tests/trt_double.rs, which uses all of it.
#[allow(dead_code)]
#[path = "trt_double/mod.rs"]
mod double;

use double::host::HostBindings;
use double::{logger, models, session, trt11, PLAN_MAGIC};
use serde_json::Value;
use std::path::{Path, PathBuf};
use trtforge::build::{build_serialized, calibration, plan, settings, Built, CalibrationInputs};
use trtforge::measure::device_io::HostIo;
use trtforge::measure::trt_exec::{TrtExecutor, TrtOptions};
use trtforge::measure::Executor;
use trtforge::recipe::{BuildJob, LoadedRecipe};
use trtforge::trt::{header_version, TrtRuntime};

fn calib_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("calib_data")
}

/// A recipe for `model` (16 x 16 input unless `shape` says otherwise) with `extra` YAML,
/// targeting the compiled TensorRT version.
fn job(dir: &Path, model: &Path, shape: &str, extra: &str) -> BuildJob {
    job_on(dir, model, shape, "", extra)
}

/// As [`job`], with more `target:` lines (indented).
fn job_on(dir: &Path, model: &Path, shape: &str, target: &str, extra: &str) -> BuildJob {
    let v = header_version();
    let text = format!(
        "model: {}\ninput:\n  tensor: images\n  shape: {shape}\n  channel_order: rgb\n  resize: stretch\noutput: {}\ntarget:\n  tensorrt: '{}.{}'\n{target}{extra}",
        model.display(),
        dir.join("out").display(),
        v.major,
        v.minor
    );
    let path = dir.join("r.yaml");
    std::fs::write(&path, text).unwrap();
    LoadedRecipe::load(&path).unwrap().build_job().unwrap()
}

const SHAPE: &str = "[1, 3, 16, 16]";

/// Plan, settle for the compiled version, build with the double.
fn build(j: &BuildJob, calib: CalibrationInputs) -> trtforge::Result<Built> {
    let p = plan::plan(j)?;
    let s = settings::settings(j, &p, header_version())?;
    build_serialized(
        &s,
        &j.input,
        j.builder.timing_cache.as_deref(),
        calib,
        logger(),
    )
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_qdq_recipe_builds_as_settled_and_frees_the_builder_before_the_runtime() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::qdq(dir.path());
    let cache = dir.path().join("caches/t.cache");
    let j = job(
        dir.path(),
        &model,
        SHAPE,
        &format!(
            "precision: best\nbuilder:\n  workspace_mib: 64\n  timing_cache: {}\n",
            cache.display()
        ),
    );
    if trt11() {
        // best on 11 reads the FP16 rewrite, which needs ONNX Runtime; int8 reads the model.
        let j = job(dir.path(), &model, SHAPE, "precision: int8\n");
        let built = build(&j, CalibrationInputs::default()).unwrap();
        assert!(built.engine.starts_with(PLAN_MAGIC));
        assert_eq!(s.only("network")["strongly_typed"], true);
        assert!(names(&s.only("config")["flags_set"]).is_empty());
        s.assert_clean();
        return;
    }
    let built = build(&j, CalibrationInputs::default()).unwrap();
    assert!(
        built.engine.starts_with(PLAN_MAGIC),
        "the double's plan, never an engine"
    );
    assert!(built.calibration.is_none(), "Q/DQ: no calibrator");
    let c = s.only("config");
    // Weakly typed, INT8 for the Q/DQ nodes and FP16 for the rest (trtexec --best).
    assert_eq!(names(&c["flags_set"]), ["kFP16", "kINT8"]);
    assert_eq!(c["pools"]["kWORKSPACE"], 64 << 20);
    assert_eq!(c["timing_cache"]["ignore_mismatch"], true);
    assert_eq!(s.only("network")["strongly_typed"], false);
    assert_eq!(
        built
            .io
            .iter()
            .map(|t| (t.name.as_str(), t.is_input))
            .collect::<Vec<_>>(),
        [("images", true), ("conv.out", false)]
    );
    assert!(built.layer_info.as_deref().unwrap().contains("\"Layers\""));
    // The shared cache file exists, written under its lock.
    assert!(std::fs::read(&cache)
        .unwrap()
        .starts_with(double::TIMING_CACHE_MAGIC));
    assert!(cache.with_file_name("t.cache.lock").exists());
    // A second build combines into the file as it is.
    build(&j, CalibrationInputs::default()).unwrap();
    s.assert_clean();
}

/// The calibrator gets the network's input in full (static dims, float32) from the recipe's
/// images, through the stream `trtforge calibrate` reads.
#[test]
fn calibration_binds_the_networks_full_input_from_the_recipes_images() {
    if trt11() {
        eprintln!("skipping: TensorRT 11 has no calibrator");
        return;
    }
    let s = session();
    s.double.use_oracle(true);
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let extra = format!(
        "precision: int8\ncalibration:\n  images: {}\n  batch_size: 1\n",
        calib_data().display()
    );
    let j = job(dir.path(), &model, SHAPE, &extra);
    let p = plan::plan(&j).unwrap();
    let prep = calibration::prepare(&j, &p, true).unwrap().unwrap();
    let images = prep.set.len();
    let (source, cache) = prep.bridge_inputs(0).unwrap();
    let calib = CalibrationInputs {
        source: Some(Box::new(source)),
        cache: Some(Box::new(cache)),
        memory: Some(Box::new(HostBindings::default())),
    };
    let built = build(&j, calib).unwrap();
    let summary = built.calibration.unwrap();
    assert_eq!((summary.batches, summary.ended), (images, true));
    let c = &s.record()["builds"][0]["calibration"];
    assert_eq!(c["inputs"][0]["bytes"], 3 * 16 * 16 * 4);
    for b in c["batches"].as_array().unwrap() {
        assert_eq!(b[0]["oracle_bytes"], b[0]["expected_bytes"]);
    }
    // The cache TensorRT wrote is stored with its provenance, beside the recipe's outputs.
    assert!(prep.cache_path().exists());
    s.assert_clean();
}

/// A recipe whose input contract is not the network's is refused before TensorRT reads a
/// single batch, naming both shapes.
#[test]
fn a_contract_that_is_not_the_networks_is_refused_before_calibrating() {
    if trt11() {
        eprintln!("skipping: TensorRT 11 has no calibrator");
        return;
    }
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let extra = format!(
        "precision: int8\ncalibration:\n  images: {}\n",
        calib_data().display()
    );
    let j = job(dir.path(), &model, "[1, 3, 32, 32]", &extra);
    let p = plan::plan(&j).unwrap();
    let prep = calibration::prepare(&j, &p, true).unwrap().unwrap();
    let (source, cache) = prep.bridge_inputs(0).unwrap();
    let calib = CalibrationInputs {
        source: Some(Box::new(source)),
        cache: Some(Box::new(cache)),
        memory: Some(Box::new(HostBindings::default())),
    };
    let e = build(&j, calib).err().expect("refused").to_string();
    assert!(
        e.contains("[1, 3, 16, 16]") && e.contains("[1, 3, 32, 32]") && e.contains("input.shape"),
        "{e}"
    );
    assert!(s.record()["builds"].as_array().unwrap().is_empty());
    s.assert_clean();
}

#[test]
fn dla_needs_the_core_and_gets_it_before_deserializing() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let dla = "  device: dla\n  dla_core: 1\n";
    let j = job_on(dir.path(), &model, SHAPE, dla, "precision: fp16\n");
    if !header_version().has_jetson_dla() {
        let e = plan::plan(&j).expect_err("no DLA").to_string();
        assert!(e.contains("target.device") && e.contains("no DLA"), "{e}");
        return;
    }
    // Orin Nano: no DLA core at all.
    s.double.set_dla_cores(0);
    let e = build(&j, CalibrationInputs::default())
        .err()
        .expect("no core")
        .to_string();
    assert!(
        e.contains("target.dla_core 1") && e.contains("0 DLA core"),
        "{e}"
    );
    s.double.set_dla_cores(2);
    let built = build(&j, CalibrationInputs::default()).unwrap();
    assert!(built.engine.starts_with(PLAN_MAGIC));
    let c = s.objects("config").pop().unwrap();
    let flags = names(&c["flags_set"]);
    for f in ["kFP16", "kPREFER_PRECISION_CONSTRAINTS", "kGPU_FALLBACK"] {
        assert!(flags.iter().any(|x| x == f), "{f} in {flags:?}");
    }
    // The double refuses a DLA plan deserialized without setDLACore first: it was set.
    s.assert_clean();
}

#[test]
fn layer_precisions_reach_the_named_layers_and_a_stray_pattern_is_an_error() {
    if trt11() {
        eprintln!("skipping: TensorRT 11 takes precision from the model");
        return;
    }
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let pins = "precision: fp16\nbuilder:\n  layer_precisions:\n    - {layers: 'head*', precision: fp32}\n    - {layers: stem, precision: fp16}\n";
    let j = job(dir.path(), &model, SHAPE, pins);
    build(&j, CalibrationInputs::default()).unwrap();
    let record = s.record().to_string();
    let c = s.only("config");
    assert!(
        names(&c["flags_set"]).contains(&"kOBEY_PRECISION_CONSTRAINTS".to_string()),
        "{c}"
    );
    for layer in ["head", "head_act", "stem"] {
        assert!(record.contains(&format!("\"{layer}\"")), "{layer}");
    }
    s.assert_clean();
    let stray = "precision: fp16\nbuilder:\n  layer_precisions:\n    - {layers: 'Conv_9*', precision: fp32}\n";
    let j = job(dir.path(), &model, SHAPE, stray);
    let e = build(&j, CalibrationInputs::default())
        .err()
        .expect("stray")
        .to_string();
    assert!(
        e.contains("Conv_9*") && e.contains("matches no layer"),
        "{e}"
    );
}

/// Build the tiny detector with the double and deserialize it (builder side freed first).
fn tiny_plan(dir: &Path) -> (Vec<u8>, PathBuf) {
    let model = models::tiny(dir);
    let j = job(dir, &model, SHAPE, "precision: fp32\n");
    let built = build(&j, CalibrationInputs::default()).unwrap();
    let path = dir.join("tiny.plan-of-the-double");
    std::fs::write(&path, &built.engine).unwrap();
    (built.engine, path)
}

fn log_of(io: &HostIo) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    io.log.clone()
}

#[test]
fn the_executor_binds_every_tensor_and_runs_trtexecs_sequence() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let (plan, path) = tiny_plan(dir.path());
    let rt = TrtRuntime::new(logger()).unwrap();
    let engine = rt.deserialize(&plan).unwrap();
    for opts in [
        TrtOptions::default(),
        TrtOptions {
            no_transfers: true,
            spin_wait: true,
            ..Default::default()
        },
        TrtOptions {
            cuda_graph: true,
            ..Default::default()
        },
    ] {
        let io = HostIo::default();
        let log = log_of(&io);
        let mut exec = TrtExecutor::new(&engine, &path, Box::new(io), opts).unwrap();
        assert_eq!(exec.info().input_shape, [1, 3, 16, 16]);
        let before = log.lock().unwrap().len();
        for _ in 0..2 {
            exec.run_once().unwrap();
        }
        let all = log.lock().unwrap().clone();
        assert_eq!(
            &all[..2],
            ["add images 3072", "add scores 2880"],
            "every tensor bound at its full volume"
        );
        let runs: Vec<&str> = all[before..].iter().map(String::as_str).collect();
        let one: &[&str] = match (opts.no_transfers, opts.cuda_graph) {
            (false, false) => &[
                "Start",
                "h2d",
                "InputsCopied",
                "Computed",
                "d2h",
                "OutputsCopied",
                "block",
            ],
            (true, _) => &["Start", "InputsCopied", "Computed", "OutputsCopied", "spin"],
            (false, true) => &["Start", "replay", "OutputsCopied", "block"],
        };
        assert_eq!(runs, [one, one].concat(), "{opts:?}");
        if opts.cuda_graph {
            // One plain inference, then the capture of copies and enqueue.
            let setup: Vec<&str> = all[2..before].iter().map(String::as_str).collect();
            assert_eq!(
                &setup[setup.len() - 4..],
                ["begin_capture", "h2d", "d2h", "end_capture"]
            );
        }
    }
    // Every enqueue had every address set and the shapes in range (the double checks).
    let enqueues: usize = s
        .objects("context")
        .iter()
        .map(|c| c["enqueues"].as_array().map_or(0, |e| e.len()))
        .sum();
    // 2 + 2 runs, and for the graph one plain run and one captured enqueue.
    assert_eq!(enqueues, 6);
    drop(engine);
    drop(rt);
    s.assert_clean();
}

#[test]
fn the_executor_runs_images_through_the_engine_and_refuses_what_does_not_fit() {
    use trtforge::exec::Infer;
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let (plan, path) = tiny_plan(dir.path());
    let rt = TrtRuntime::new(logger()).unwrap();
    let engine = rt.deserialize(&plan).unwrap();
    let mut exec = TrtExecutor::new(
        &engine,
        &path,
        Box::new(HostIo::default()),
        TrtOptions::default(),
    )
    .unwrap();
    let x = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 3, 16, 16]));
    let out = exec.infer(&[("images", x.view())]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0.as_str(), out[0].1.shape()),
        ("scores", &[1, 45, 4, 4][..])
    );
    let wrong = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 3, 32, 32]));
    let e = exec
        .infer(&[("images", wrong.view())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[1, 3, 32, 32]") && e.contains("[1, 3, 16, 16]"),
        "{e}"
    );
    let e = exec
        .infer(&[("input.1", x.view())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("input.1"), "{e}");
    drop(exec);
    // A fixed-batch engine refuses another batch, naming the fix.
    let e = TrtExecutor::new(
        &engine,
        &path,
        Box::new(HostIo::default()),
        TrtOptions {
            batch: Some(4),
            ..Default::default()
        },
    )
    .err()
    .expect("fixed batch")
    .to_string();
    assert!(e.contains("fixed batch") && e.contains("--batch 4"), "{e}");
    drop(engine);
    drop(rt);
    s.assert_clean();
}
