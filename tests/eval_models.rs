//! End to end on the shared models: ONNX Runtime FP32 on all 128 coco128-train images, our
//! decoders, NMS and mAP, cross-checked against pycocotools on the same detections.

mod eval_support;

use image::RgbImage;
use rayon::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;
use trtforge::eval::labels::read_class_names;
use trtforge::eval::labels::{default_labels_dir, list_images};
use trtforge::eval::{DecodeParams, EvalReport, Evaluator, GroundTruth, Timing};
use trtforge::exec::OrtSession;
use trtforge::recipe::{Decoder, InputContract};

/// The input contract of a committed recipe (the tests exercise the recipes users run).
fn contract(recipe: &str) -> InputContract {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    trtforge::recipe::LoadedRecipe::load(&root.join("engines").join(recipe))
        .unwrap()
        .recipe
        .input
}

/// coco128-train's ground truth and decoded images, read once for all tests (decoding
/// dominates the run time of an unoptimised test build).
fn dataset(shared: &Path) -> &'static (GroundTruth, Vec<RgbImage>) {
    static DATA: OnceLock<(GroundTruth, Vec<RgbImage>)> = OnceLock::new();
    DATA.get_or_init(|| {
        let images_dir = shared.join("datasets/coco128-train/images");
        let images = list_images(&images_dir).unwrap();
        let gt = GroundTruth::load(&images, &default_labels_dir(&images_dir)).unwrap();
        let decoded = images
            .par_iter()
            .map(|p| image::open(p).unwrap().to_rgb8())
            .collect();
        (gt, decoded)
    })
}

/// Run `model` over coco128-train; our mAP and pycocotools' on the same detections.
fn run(
    shared: &Path,
    model: &str,
    decoder: Decoder,
    c: &InputContract,
) -> Option<(EvalReport, f64, f64)> {
    let py = eval_support::python()?;
    let (gt, decoded) = dataset(shared);
    let mut session = match OrtSession::open(&shared.join("models").join(model), &[]) {
        Ok(s) => s,
        Err(e) => {
            eval_support::skip(&format!("ONNX Runtime unavailable: {e}"));
            return None;
        }
    };
    let mut ev = Evaluator::new(decoder, DecodeParams::default(), (c.shape[2], c.shape[3]));
    let mut timing = Timing::default();
    for img in decoded {
        let t0 = Instant::now();
        let (x, lb) = eval_support::preprocess(img, c);
        let t1 = Instant::now();
        let outs = session.run(&[(c.tensor.as_str(), x.view())]).unwrap();
        timing.preprocess_s += (t1 - t0).as_secs_f64();
        timing.inference_s += t1.elapsed().as_secs_f64();
        ev.push_batch(&outs, &[lb]).unwrap();
        assert!(ev.detections().last().unwrap().len() <= 100);
    }
    let dets = ev.detections().to_vec();
    let names = read_class_names(&shared.join("datasets/coco128-train/classes.txt")).unwrap();
    let ours = ev.finish(model, gt, Some(&names), timing).unwrap();
    print!("{}", ours.table());
    let (r50, r5095) = eval_support::pycocotools(&py, gt, &dets);
    println!(
        "{model}: {} images, {} detections; ours map50 {:.4} map50_95 {:.4}; pycocotools map50 {r50:.4} map50_95 {r5095:.4}",
        ours.images, ours.detections, ours.map50, ours.map50_95
    );
    assert!(
        (ours.map50 - r50).abs() < 0.002,
        "{model}: map50 {} vs pycocotools {r50}",
        ours.map50
    );
    assert!(
        (ours.map50_95 - r5095).abs() < 0.002,
        "{model}: map50_95 {} vs pycocotools {r5095}",
        ours.map50_95
    );
    // Per-class figures exist for exactly the classes with ground truth.
    let with_gt: std::collections::BTreeSet<u32> = gt
        .images
        .iter()
        .flat_map(|i| i.boxes.iter().map(|b| b.1))
        .collect();
    assert_eq!(
        ours.per_class
            .iter()
            .map(|c| c.ap.class)
            .collect::<std::collections::BTreeSet<_>>(),
        with_gt
    );
    Some((ours, r50, r5095))
}

#[test]
fn yolox_nano_fp32_coco128() {
    let Some(shared) = eval_support::shared() else {
        return;
    };
    let c = contract("yolox-nano-int8.yaml");
    let Some((r, _, _)) = run(&shared, "yolox_nano/yolox_nano.onnx", Decoder::Yolox, &c) else {
        return;
    };
    assert_eq!(r.images, 128);
    // The published figure: about 0.33 (the Python reference pipeline gives 0.334).
    assert!(
        (r.map50_95 - 0.33).abs() < 0.02,
        "YOLOX-nano mAP@0.5:0.95 {}",
        r.map50_95
    );
}

#[test]
fn nanodet_m_320_fp32_coco128() {
    let Some(shared) = eval_support::shared() else {
        return;
    };
    let c = contract("nanodet-m-320-int8.yaml");
    let Some((r, _, _)) = run(
        &shared,
        "nanodet_m_320/nanodet_m_320.onnx",
        Decoder::Nanodet,
        &c,
    ) else {
        return;
    };
    assert!(r.map50_95 > 0.25, "NanoDet-m mAP@0.5:0.95 {}", r.map50_95);
}

#[test]
fn fastestdet_fp32_coco128() {
    let Some(shared) = eval_support::shared() else {
        return;
    };
    let c = contract("fastestdet-dla-fp16.yaml");
    let Some((r, _, _)) = run(
        &shared,
        "fastestdet/FastestDet.onnx",
        Decoder::Fastestdet,
        &c,
    ) else {
        return;
    };
    assert!(r.map50_95 > 0.15, "FastestDet mAP@0.5:0.95 {}", r.map50_95);
}
