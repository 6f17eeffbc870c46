//! The nightly matrix fixture of tests/matrix.rs and benches/matrix_rerun.rs: the three
//! shared detectors x {fp16, int8, int8-qdq} x two device classes (JetPack 6.2 / TensorRT
//! 10.3 and JetPack 7.2 / TensorRT 11.1, which has no calibrator: int8 excluded there), with
//! recipes written into a temporary folder with small image counts, on the shared models,
//! images and labels.

use std::path::PathBuf;
use trtforge::matrix::store::Store;

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn matrix(&self) -> String {
        self.path("matrix.yaml").display().to_string()
    }
    pub fn store(&self) -> Store {
        Store::open(&self.path("store")).unwrap()
    }
}

/// One shared detector and its preprocessing, as the committed recipes have it.
pub struct Detector {
    pub name: &'static str,
    model: &'static str,
    tensor: &'static str,
    size: u32,
    scale: &'static str,
    mean: &'static str,
    std: &'static str,
    resize: &'static str,
}

pub const MODELS: [Detector; 3] = [
    Detector {
        name: "yolox",
        model: "models/yolox_nano/yolox_nano.onnx",
        tensor: "images",
        size: 416,
        scale: "1.0",
        mean: "[0.0, 0.0, 0.0]",
        std: "[1.0, 1.0, 1.0]",
        resize: "letterbox-top-left",
    },
    Detector {
        name: "nanodet",
        model: "models/nanodet_m_320/nanodet_m_320.onnx",
        tensor: "image",
        size: 320,
        scale: "1.0",
        mean: "[103.53, 116.28, 123.675]",
        std: "[57.375, 57.12, 58.395]",
        resize: "letterbox-centre",
    },
    Detector {
        name: "fastestdet",
        model: "models/fastestdet/FastestDet.onnx",
        tensor: "input.1",
        size: 352,
        scale: "0.00392156862745098",
        mean: "[0.0, 0.0, 0.0]",
        std: "[1.0, 1.0, 1.0]",
        resize: "stretch",
    },
];

/// YOLOX and NanoDet calibrate on `calib-a`, FastestDet on `calib-b` (copies of shared
/// images), so that changing one image of `calib-a` concerns exactly two recipes.
pub fn fixture() -> Option<Fixture> {
    let images = super::shared("datasets/coco128-train/images")?;
    let labels = super::shared("datasets/coco128-train/labels")?;
    let shared_models: Vec<PathBuf> = MODELS
        .iter()
        .map(|m| super::shared(m.model))
        .collect::<Option<_>>()?;
    let f = Fixture {
        dir: tempfile::tempdir().unwrap(),
    };
    let mut all: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    for (folder, range) in [("calib-a", 0..6), ("calib-b", 6..12)] {
        std::fs::create_dir_all(f.path(folder)).unwrap();
        for p in &all[range] {
            std::fs::copy(p, f.path(folder).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(f.path("recipes")).unwrap();
    for (m, model) in MODELS.iter().zip(&shared_models) {
        let Detector {
            name,
            tensor,
            size,
            scale,
            mean,
            std,
            resize,
            ..
        } = m;
        let calib = if *name == "fastestdet" {
            "calib-b"
        } else {
            "calib-a"
        };
        let text = format!(
            "model: {model}\ninput:\n  tensor: {tensor}\n  shape: [1, 3, {size}, {size}]\n  dtype: float32\n  channel_order: bgr\n  scale: {scale}\n  mean: {mean}\n  std: {std}\n  resize: {resize}\n  pad_value: 114\n  interpolation: linear\n\
             calibration:\n  images: ../{calib}\n  batch_size: 3\n\
             decoder: {name}\neval:\n  images: {images}\n  labels: {labels}\n  limit: 6\n\
             quantize:\n  validation:\n    images: {images}\n    skip: 100\n    limit: 6\n  refine: []\n",
            model = model.display(),
            images = images.display(),
            labels = labels.display(),
        );
        std::fs::write(f.path(&format!("recipes/{name}.yaml")), text).unwrap();
    }
    std::fs::write(
        f.path("matrix.yaml"),
        "recipes: [recipes/*.yaml]\nprecisions: [fp16, int8, int8-qdq]\ntargets:\n\
         \x20 - device: orin-nano-8gb\n    jetpack: \"6.2\"\n    tensorrt: \"10.3\"\n    power_mode: MAXN_SUPER\n    runner: [self-hosted, jetson, orin-nano-8gb]\n\
         \x20 - device: agx-thor\n    jetpack: \"7.2\"\n    tensorrt: \"11.1\"\n    runner: [self-hosted, jetson, agx-thor]\n\
         exclude:\n  - {precision: int8, target: agx-thor}\n\
         gates:\n  max_map_drop: 0.9\n  max_map_regression: 0.01\n\
         bench:\n  iterations: 5\n  warmup: 1\nstore: store\n",
    )
    .unwrap();
    Some(f)
}
