//! Helpers shared by the `eval_*` integration tests: locating shared data and the venv Python,
//! running pycocotools on the same detections, and a minimal reference preprocessing.
#![allow(dead_code)]

use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use trtforge::eval::map::{coco_detections_json, coco_ground_truth_json};
use trtforge::eval::{Detection, GroundTruth, Letterbox};
use trtforge::recipe::InputContract;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Skip (print why) outside CI; fail under CI.
pub fn skip(why: &str) {
    assert!(!trtforge::env::in_ci(), "required under CI=true: {why}");
    eprintln!("SKIP: {why}");
}

/// `../shared` relative to the crate root, if present.
pub fn shared() -> Option<PathBuf> {
    let p = root().join("../shared");
    if p.join("datasets/coco128-train/images").is_dir() {
        Some(p)
    } else {
        skip(&format!(
            "{} not found (shared models and datasets)",
            p.display()
        ));
        None
    }
}

/// The venv Python with pycocotools: TRTFORGE_PYTHON, else .venv/bin/python.
pub fn python() -> Option<PathBuf> {
    let p = trtforge::env::var("TRTFORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    if p.exists() {
        Some(p)
    } else {
        skip(&format!(
            "{} not found; run `source scripts/env.sh` to create the venv",
            p.display()
        ));
        None
    }
}

/// (map50, map50_95) from pycocotools on exactly these ground truth and detections.
pub fn pycocotools(py: &Path, gt: &GroundTruth, dets: &[Vec<Detection>]) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let gt_path = dir.path().join("gt.json");
    let dt_path = dir.path().join("dt.json");
    std::fs::write(&gt_path, coco_ground_truth_json(gt, 80).to_string()).unwrap();
    std::fs::write(&dt_path, coco_detections_json(dets).to_string()).unwrap();
    let out = std::process::Command::new(py)
        .arg(root().join("tests/py/coco_eval.py"))
        .arg(&gt_path)
        .arg(&dt_path)
        .output()
        .expect("run the pycocotools helper");
    assert!(
        out.status.success(),
        "pycocotools helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["map50"].as_f64().unwrap(),
        v["map50_95"].as_f64().unwrap(),
    )
}

/// Preprocess exactly as `trtforge run`/`eval`/`calibrate` do (the library's stream code):
/// a 1x3xHxW tensor and the placement for mapping boxes back.
pub fn preprocess(img: &image::RgbImage, c: &InputContract) -> (ArrayD<f32>, Letterbox) {
    let (t, lb) = trtforge::data::preprocess::preprocess_rgb8(img, c).expect("preprocess");
    (t.insert_axis(ndarray::Axis(0)).into_dyn(), lb)
}
