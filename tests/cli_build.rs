//! `trtforge build` without TensorRT: does the CPU steps, then exits 3 saying what is missing.

use std::path::Path;
use std::process::Command;

fn model() -> Option<std::path::PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models/yolox_nano/yolox_nano.onnx");
    if p.exists() {
        return Some(p.canonicalize().unwrap());
    }
    let ci = matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"));
    assert!(!ci, "{} is missing (CI=true)", p.display());
    eprintln!("skipping: {} not found", p.display());
    None
}

#[test]
fn build_without_tensorrt_exits_3_after_the_cpu_steps() {
    if cfg!(feature = "tensorrt") {
        eprintln!("skipping: this binary has TensorRT compiled in");
        return;
    }
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("yolox.yaml");
    std::fs::write(
        &recipe,
        format!(
            "model: {}\ninput:\n  tensor: images\n  shape: [1, 3, 416, 416]\n  channel_order: bgr\n  resize: letterbox-top-left\nprecision: fp16\n",
            model.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["build"])
        .arg(&recipe)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["plan"]["inputs"][0][0], "images");
    assert_eq!(v["tensorrt"]["compiled_in"], false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features tensorrt"), "{err}");
    assert!(
        !dir.path().join("../build/yolox.engine").exists(),
        "no engine may appear"
    );

    // A bad recipe is a plain failure (1), not "unavailable".
    std::fs::write(&recipe, "model: nope.onnx\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .arg("build")
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// `run`/`eval --engine` without TensorRT: one line saying so and how to fix it, exit 3,
/// nothing written; `build --engine` writes nowhere either.
#[test]
fn engine_options_without_tensorrt_exit_3_and_write_nothing() {
    if cfg!(feature = "tensorrt") {
        eprintln!("skipping: this binary has TensorRT compiled in");
        return;
    }
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let imgs = Path::new(env!("CARGO_MANIFEST_DIR")).join("calib_data");
    let recipe = dir.path().join("yolox.yaml");
    std::fs::write(
        &recipe,
        format!(
            "model: {}\ninput:\n  tensor: images\n  shape: [1, 3, 416, 416]\n  channel_order: bgr\n  resize: letterbox-top-left\nprecision: fp16\ndecoder: yolox\neval:\n  images: {}\n  labels: {}\n",
            model.display(),
            imgs.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let engine = dir.path().join("elsewhere/y.engine");
    for args in [
        vec!["run", "--limit", "1", "--out"],
        vec!["eval", "--limit", "1", "--labels"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
            .args(&args)
            .arg(dir.path().join("out"))
            .arg(&recipe)
            .arg("--engine")
            .arg(&engine)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("y.engine") && err.contains("--features tensorrt"),
            "{err}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["build"])
        .arg(&recipe)
        .arg("--engine")
        .arg(&engine)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!engine.exists() && !dir.path().join("elsewhere").exists());
    assert!(!dir.path().join("out").join("000000_chelsea").exists());
}
