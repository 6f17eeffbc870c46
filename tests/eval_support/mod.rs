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

/// OpenCV INTER_LINEAR resize (half-pixel centres, edge clamp, no antialiasing) of an
/// interleaved 3-channel u8 image, in f32 (OpenCV rounds to u8 after; differences < 1 LSB).
fn resize_linear(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let taps = |dst: usize, src_n: usize| -> Vec<(usize, usize, f32)> {
        let scale = src_n as f64 / dst as f64;
        (0..dst)
            .map(|d| {
                let s = (d as f64 + 0.5) * scale - 0.5;
                let mut i = s.floor() as isize;
                let mut f = (s - i as f64) as f32;
                if i < 0 {
                    i = 0;
                    f = 0.0;
                }
                if i as usize >= src_n - 1 {
                    i = src_n as isize - 1;
                    f = 0.0;
                }
                let i = i as usize;
                (i, (i + 1).min(src_n - 1), f)
            })
            .collect()
    };
    let xt = taps(dw, sw);
    let yt = taps(dh, sh);
    let mut out = vec![0f32; dw * dh * 3];
    for (y, &(y0, y1, fy)) in yt.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xt.iter().enumerate() {
            for c in 0..3 {
                let p = |yy: usize, xx: usize| src[(yy * sw + xx) * 3 + c] as f32;
                let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
                let bot = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
                out[(y * dw + x) * 3 + c] = (top * (1.0 - fy) + bot * fy).round();
            }
        }
    }
    out
}

/// Decode, resize per the contract (letterbox or stretch, linear), pad, order channels and
/// normalise: a 1x3xHxW tensor and the placement for mapping boxes back.
pub fn preprocess(path: &Path, c: &InputContract) -> (ArrayD<f32>, Letterbox) {
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let (in_h, in_w) = (c.shape[2], c.shape[3]);
    let lb = Letterbox::new(c.resize, w, h, in_w as u32, in_h as u32);
    let (nw, nh) = match c.resize {
        trtforge::recipe::ResizeMode::Stretch => (in_w, in_h),
        _ => {
            let (a, b) = Letterbox::resized_size(w, h, in_w as u32, in_h as u32);
            (a as usize, b as usize)
        }
    };
    let resized = resize_linear(img.as_raw(), w as usize, h as usize, nw, nh);
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    let mut t = Array4::<f32>::zeros((1, 3, in_h, in_w));
    for ch in 0..3 {
        // Source channel in RGB order for output channel `ch`.
        let src_c = match c.channel_order {
            ChannelOrder::Rgb => ch,
            ChannelOrder::Bgr => 2 - ch,
        };
        for y in 0..in_h {
            for x in 0..in_w {
                let inside = x >= px && x < px + nw && y >= py && y < py + nh;
                let v = if inside {
                    resized[((y - py) * nw + (x - px)) * 3 + src_c]
                } else {
                    c.pad_value
                };
                t[[0, ch, y, x]] = (v * c.scale - c.mean[ch]) / c.std[ch];
            }
        }
    }
    (t.into_dyn(), lb)
}
