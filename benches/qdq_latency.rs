//! ONNX Runtime CPU latency of FP32 vs Q/DQ (naive and planned) for YOLOX-nano and
//! NanoDet-m-320, in one run. Needs the calibration of `trtforge quantize` in
//! build/<model>-qdq/ (ranges.json, and the written model.qdq.onnx).
//! Run: `source scripts/env.sh && cargo bench --bench qdq_latency`. Figures only.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use trtforge::data::preprocess::preprocess_image;
use trtforge::exec::OrtSession;
use trtforge::onnx::Model;
use trtforge::quant::{quantize, PrecisionPlan, QdqOptions};
use trtforge::recipe::LoadedRecipe;

fn time_ms(model: &Model, input: &str, x: &ndarray::ArrayD<f32>, iters: usize) -> (f64, f64) {
    let mut s = OrtSession::from_model(model, &[]).expect("session");
    for _ in 0..3 {
        s.run(&[(input, x.view())]).expect("run");
    }
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let t0 = Instant::now();
            s.run(&[(input, x.view())]).expect("run");
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t.iter().sum::<f64>() / t.len() as f64)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let iters: usize = std::env::var("QDQ_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let threads = std::env::var("TRTFORGE_ORT_THREADS").unwrap_or_else(|_| "all cores".into());
    println!(
        "ONNX Runtime CPU, {iters} runs after 3 warm-up, batch 1, intra-op threads: {threads}"
    );
    println!(
        "{:<16} {:<22} {:>10} {:>10} {:>8}",
        "model", "variant", "median ms", "mean ms", "vs FP32"
    );
    for recipe in [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-qdq.yaml",
    ] {
        let r = LoadedRecipe::load(&root.join(recipe)).expect("recipe");
        let out = r.output_dir();
        let ranges_path = out.join("ranges.json");
        let Ok(text) = std::fs::read_to_string(&ranges_path) else {
            println!(
                "{recipe}: no {} (run `trtforge quantize {recipe}` first); skipped",
                ranges_path.display()
            );
            continue;
        };
        let ranges: HashMap<String, f32> =
            trtforge::calib::cache::parse_ranges_json(&text, &ranges_path)
                .unwrap()
                .into_iter()
                .collect();
        let model = Model::load(&r.model_path()).expect("model");
        let c = &r.recipe.input;
        let img = root.join("../shared/images/public-domain");
        let first = std::fs::read_dir(&img).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| trtforge::data::image::has_image_extension(p))
        });
        let x = match first {
            Some(p) => preprocess_image(&p, c)
                .unwrap()
                .0
                .insert_axis(ndarray::Axis(0))
                .into_dyn(),
            None => ndarray::ArrayD::zeros(ndarray::IxDyn(&c.shape)),
        };
        let q = r.recipe.quantize.clone().unwrap_or_default();
        let base = QdqOptions {
            ops: q.ops.iter().copied().collect(),
            ..Default::default()
        };
        let mut variants = vec![("FP32".to_string(), model.clone())];
        variants.push((
            "Q/DQ naive".into(),
            quantize(&model, &ranges, &base).unwrap().0,
        ));
        // The written model, refinements and plan included, exactly as `quantize` left it.
        if let Ok(planned) = Model::load(&out.join("model.qdq.onnx")) {
            let kept = PrecisionPlan::read(&out.join("precision_plan.json"))
                .map(|p| p.keep.len())
                .unwrap_or(0);
            variants.push((format!("Q/DQ written ({kept} fp)"), planned));
        }
        let name = r
            .model_path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut fp = 0.0;
        for (label, m) in &variants {
            let (med, mean) = time_ms(m, &c.tensor, &x, iters);
            if fp == 0.0 {
                fp = med;
            }
            println!(
                "{name:<16} {label:<22} {med:>10.2} {mean:>10.2} {:>7.2}x",
                fp / med
            );
        }
    }
}
