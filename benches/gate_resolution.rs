//! How many labelled images does a mAP gate need? For each Q/DQ recipe, the paired bootstrap
//! interval of the FP32 -> written Q/DQ drop (mAP@0.5:0.95) on the first n of the recipe's eval
//! images (coco128-train: 128), for growing n, and the images an interval of half-width
//! 0.005 would need (a 0.015 gate told apart from 0.010 and 0.020), scaling the measured
//! half-width as 1/sqrt(n). Needs `trtforge quantize RECIPE` first (build/<model>-qdq/).
//! Its eval images include the calibration ones, which is fine for a width: the interval
//! measures how much the images spread the drop, not the drop itself.
//! Run: `source scripts/env.sh && cargo bench --bench gate_resolution`. Figures only.

use std::path::Path;
use trtforge::eval::{bootstrap::RESAMPLES, drop_interval, DecodeParams};
use trtforge::onnx::Model;
use trtforge::quant::validation::{matched_of_outputs, run_outputs, Validation};
use trtforge::recipe::{EvalOverrides, LoadedRecipe};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("paired bootstrap ({RESAMPLES} resamples, 95%) of the FP32 - Q/DQ mAP@0.5:0.95 drop");
    println!(
        "{:<16} {:>6} {:>8} {:>18} {:>11} {:>22}",
        "model", "images", "drop", "95% interval", "half-width", "images for +-0.005"
    );
    for recipe in [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-qdq.yaml",
    ] {
        let r = LoadedRecipe::load(&root.join(recipe)).expect("recipe");
        let qdq = r.output_dir().join("model.qdq.onnx");
        let Ok(q) = Model::load(&qdq) else {
            println!(
                "{recipe}: no {} (run `trtforge quantize {recipe}` first); skipped",
                qdq.display()
            );
            continue;
        };
        let job = r.eval_job(&EvalOverrides::default()).expect("eval job");
        let val = Validation::load(&job.set, &job.labels, &job.input).expect("images");
        let params = DecodeParams::with_thresholds(job.thresholds.score, job.thresholds.iou);
        let fp_all = run_outputs(&job.model, &val, val.len()).expect("FP32");
        let q_all = run_outputs(&q, &val, val.len()).expect("Q/DQ");
        let name = r
            .model_path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut n = 16;
        while n <= val.len() {
            let part = val.first(n);
            let fp =
                matched_of_outputs(&fp_all[..n].to_vec(), &part, job.decoder, &params).unwrap();
            let qm = matched_of_outputs(&q_all[..n].to_vec(), &part, job.decoder, &params).unwrap();
            let d = drop_interval(&fp, &qm, RESAMPLES, 0.95).unwrap();
            println!(
                "{name:<16} {n:>6} {:>8.4} {:>18} {:>11.4} {:>22}",
                d.drop,
                format!("[{:.4}, {:.4}]", d.low, d.high),
                (d.high - d.low) / 2.0,
                d.images_for_half_width(0.005).unwrap_or(0)
            );
            n *= 2;
        }
    }
}
