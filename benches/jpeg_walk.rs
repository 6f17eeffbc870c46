//! What the JPEG completeness walk (`data::jpeg`, run before every JPEG decode) costs next
//! to the decode itself, on the 128 COCO images of ../shared/datasets/coco128-train.
//! Run: `cargo bench --bench jpeg_walk`.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/coco128-train/images");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: {} is absent", dir.display());
        return;
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for round in 0..3 {
        let t = Instant::now();
        let complete = files
            .iter()
            .filter(|b| trtforge::data::jpeg::entropy_data_complete(b))
            .count();
        let walk = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (b, p) in files.iter().zip(&paths) {
            trtforge::data::image::decode_rgb8(b, p).expect("every coco128 image decodes");
        }
        // decode_rgb8 includes the walk.
        let decode = t.elapsed().as_secs_f64();
        println!(
            "round {round}: {} JPEGs ({complete} complete): walk {:.1} ms, decode (walk included) {:.1} ms, walk share {:.1}%",
            files.len(),
            walk * 1e3,
            decode * 1e3,
            100.0 * walk / decode
        );
    }
}
