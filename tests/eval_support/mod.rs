//! Helpers shared by the `eval_*` integration tests: locating shared data and the venv Python,
//! running pycocotools on the same detections, and a minimal reference preprocessing.
#![allow(dead_code)]

use ndarray::{Array4, ArrayD};
use std::path::{Path, PathBuf};
use trtforge::eval::map::{coco_detections_json, coco_ground_truth_json};
use trtforge::eval::{Detection, GroundTruth, Letterbox};
use trtforge::recipe::{ChannelOrder, InputContract};

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

/// OpenCV INTER_LINEAR taps (half-pixel centres, edge clamp, no antialiasing) along one axis.
fn taps(dst: usize, src_n: usize) -> Vec<(usize, usize, f32)> {
    let scale = src_n as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let s = (d as f64 + 0.5) * scale - 0.5;
            let i = s.floor();
            let (i, f) = if i < 0.0 {
                (0, 0.0)
            } else if i as usize >= src_n - 1 {
                (src_n - 1, 0.0)
            } else {
                (i as usize, (s - i) as f32)
            };
            (i, (i + 1).min(src_n - 1), f)
        })
        .collect()
}

/// Resize per the contract (letterbox or stretch; OpenCV INTER_LINEAR, rounded to u8
/// like OpenCV's output, which differs from its fixed-point result by at most 1 LSB), pad,
/// order channels and normalise: a 1x3xHxW tensor and the placement for mapping boxes back.
/// Written as flat loops because tests run unoptimised.
pub fn preprocess(img: &image::RgbImage, c: &InputContract) -> (ArrayD<f32>, Letterbox) {
    let (w, h) = img.dimensions();
    let src = img.as_raw();
    let sw = w as usize;
    let (in_h, in_w) = (c.shape[2], c.shape[3]);
    let lb = Letterbox::new(c.resize, w, h, in_w as u32, in_h as u32);
    let (nw, nh) = match c.resize {
        trtforge::recipe::ResizeMode::Stretch => (in_w, in_h),
        _ => {
            let (a, b) = Letterbox::resized_size(w, h, in_w as u32, in_h as u32);
            (a as usize, b as usize)
        }
    };
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    let xt = taps(nw, sw);
    let yt = taps(nh, h as usize);
    let plane = in_h * in_w;
    let mut t = vec![0f32; 3 * plane];
    for ch in 0..3 {
        let pad = (c.pad_value * c.scale - c.mean[ch]) / c.std[ch];
        t[ch * plane..(ch + 1) * plane].fill(pad);
    }
    // Output channel k takes source (RGB) channel src_c[k].
    let src_c = match c.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    for (y, &(y0, y1, fy)) in yt.iter().enumerate() {
        let (r0, r1) = (y0 * sw * 3, y1 * sw * 3);
        let out_row = (y + py) * in_w + px;
        for (x, &(x0, x1, fx)) in xt.iter().enumerate() {
            for (k, &sc) in src_c.iter().enumerate() {
                let (a, b) = (x0 * 3 + sc, x1 * 3 + sc);
                let top = src[r0 + a] as f32 * (1.0 - fx) + src[r0 + b] as f32 * fx;
                let bot = src[r1 + a] as f32 * (1.0 - fx) + src[r1 + b] as f32 * fx;
                let v = (top * (1.0 - fy) + bot * fy).round();
                t[k * plane + out_row + x] = (v * c.scale - c.mean[k]) / c.std[k];
            }
        }
    }
    let t = Array4::from_shape_vec((1, 3, in_h, in_w), t).unwrap();
    (t.into_dyn(), lb)
}
