//! `trtforge build engines/demo.yaml` end to end without TensorRT: validation, inspection and
//! the INT8 calibration cache (on CPU) are done, then it exits 3. Runs on a temporary copy of
//! the demo (recipe, calib_data/, a freshly synthesised model), never on the repo's build/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use trtforge::calib::cache::CalibrationCache;
use trtforge::calib::provenance::Provenance;

fn run(cwd: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(common::bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run trtforge");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the demo: engines/demo.yaml, calib_data/ and build/demo/tiny_detector.onnx.
fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = common::crate_root();
    std::fs::create_dir_all(dir.path().join("engines")).unwrap();
    std::fs::create_dir_all(dir.path().join("calib_data")).unwrap();
    std::fs::copy(
        root.join("engines/demo.yaml"),
        dir.path().join("engines/demo.yaml"),
    )
    .unwrap();
    for e in std::fs::read_dir(root.join("calib_data"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), dir.path().join("calib_data").join(e.file_name())).unwrap();
    }
    let (code, _, err) = run(
        dir.path(),
        &["synth", "--out", "build/demo/tiny_detector.onnx"],
    );
    assert_eq!(code, 0, "{err}");
    let recipe = dir.path().join("engines/demo.yaml");
    (dir, recipe)
}

fn engines_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "engine" || x == "tmp"))
        .collect()
}

#[test]
fn demo_build_writes_the_calibration_cache_then_exits_3() {
    if cfg!(feature = "tensorrt") {
        eprintln!("SKIP: this binary has TensorRT compiled in");
        return;
    }
    let (dir, recipe) = demo_copy();
    let recipe = recipe.to_str().unwrap().to_string();
    let out = dir.path().join("build/demo");
    let cache = out.join("calibration.cache");

    // 1. No cache yet: calibrated on CPU, then "unavailable".
    let (code, v, err) = run(dir.path(), &["build", &recipe, "--json"]);
    if code == 3 && err.contains("ONNX Runtime") && !trtforge::env::in_ci() {
        eprintln!("SKIP: ONNX Runtime not found ({err}); `source scripts/env.sh`");
        return;
    }
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["plan"]["int8"], "calibrator");
    assert_eq!(v["calibration"]["state"], "absent");
    assert_eq!(v["calibration"]["action"], "calibrated-on-cpu");
    assert_eq!(
        v["calibration"]["network_batch"], 1,
        "the demo model's batch is static 1"
    );
    assert_eq!(v["calibration"]["images"], 5);
    assert!(
        err.contains("TensorRT") && err.contains("--features tensorrt"),
        "{err}"
    );
    let parsed = CalibrationCache::read(&cache).unwrap();
    assert_eq!(
        (parsed.version, parsed.algorithm.as_str()),
        (100300, "EntropyCalibration2")
    );
    assert!(
        parsed.entries.iter().any(|e| e.tensor == "images"),
        "{parsed:?}"
    );
    assert!(parsed
        .entries
        .iter()
        .all(|e| e.scale.is_finite() && e.scale > 0.0));
    let prov = Provenance::read(&out.join("provenance.json")).unwrap();
    assert_eq!(prov.images.len(), 5);
    assert_eq!(prov.tensorrt, "10.3.0");
    assert!(out.join("ranges.json").is_file() && out.join("dynamic_range.txt").is_file());
    assert!(
        engines_in(&out).is_empty(),
        "no engine may appear: {:?}",
        engines_in(&out)
    );
    let first = std::fs::read(&cache).unwrap();

    // 2. The same inputs again: the fresh cache is reused, untouched.
    let (code, v, err) = run(dir.path(), &["build", &recipe, "--json"]);
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(v["calibration"]["state"], "fresh");
    assert_eq!(v["calibration"]["action"], "reused");
    assert_eq!(std::fs::read(&cache).unwrap(), first);

    // 3. The contract changed: the cache is stale, refused (exit 1) naming the field and the fix.
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(&recipe, text.replace("pad_value: 114", "pad_value: 0")).unwrap();
    let (code, _, err) = run(dir.path(), &["build", &recipe]);
    assert_eq!(code, 1, "stderr: {err}");
    assert!(
        err.contains("stale") && err.contains("input.pad_value"),
        "{err}"
    );
    assert!(err.contains("--force-calibration"), "{err}");
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        first,
        "a refused cache is left alone"
    );

    // 4. --force-calibration recalibrates with the new contract.
    let (code, v, err) = run(
        dir.path(),
        &["build", &recipe, "--json", "--force-calibration"],
    );
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(v["calibration"]["state"], "forced");
    assert_eq!(v["calibration"]["action"], "calibrated-on-cpu");
    let prov = Provenance::read(&out.join("provenance.json")).unwrap();
    assert_eq!(prov.input.pad_value, 0.0);
    assert!(CalibrationCache::read(&cache).is_ok());
    let (code, v, _) = run(dir.path(), &["build", &recipe, "--json"]);
    assert_eq!(
        (code, &v["calibration"]["state"]),
        (3, &serde_json::json!("fresh"))
    );
    assert!(engines_in(&out).is_empty());
}

#[test]
fn fp16_build_needs_no_calibration() {
    if cfg!(feature = "tensorrt") {
        eprintln!("SKIP: this binary has TensorRT compiled in");
        return;
    }
    let (dir, recipe) = demo_copy();
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(&recipe, text.replace("precision: int8", "precision: fp16")).unwrap();
    let (code, v, err) = run(dir.path(), &["build", recipe.to_str().unwrap(), "--json"]);
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(v["plan"]["int8"], "none");
    assert!(v["calibration"].is_null());
    assert!(!dir.path().join("build/demo/calibration.cache").exists());
}
