//! Throughput of the calibration image stream: the 128 COCO images of
//! ../shared/datasets/coco128-train decoded and preprocessed to 416x416 (the YOLOX-nano
//! contract), printed as images/s for one worker and for every core.
//! Run: `cargo bench --bench stream`.

use std::path::PathBuf;
use std::time::Instant;
use trtforge::data::{ImageSet, ImageStream};
use trtforge::recipe::{LoadedRecipe, OnUnreadable, Order};

fn main() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/coco128-train/images");
    if !dir.is_dir() {
        eprintln!("SKIP: {} is absent", dir.display());
        return;
    }
    let recipe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("engines/yolox-nano-int8.yaml");
    let contract = LoadedRecipe::load(&recipe).expect("recipe").recipe.input;
    let set = ImageSet::from_path(&dir, Order::Sorted, 0, None).expect("image set");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for workers in [1, cores] {
        for round in 0..2 {
            let t = Instant::now();
            let stream = ImageStream::new(set.clone(), &contract, 8, OnUnreadable::Fail, workers)
                .expect("stream");
            let mut n = 0;
            for b in stream {
                n += b.expect("every coco128 image is readable").items.len();
            }
            let s = t.elapsed().as_secs_f64();
            // The first round warms the page cache; report both.
            println!(
                "stream coco128 -> 416x416 f32, batch 8, {workers} worker(s), round {round}: {n} images in {s:.3} s = {:.1} images/s",
                n as f64 / s
            );
        }
    }
}
