//! Our COCO-style mAP against pycocotools on the same synthetic detections: many images and
//! classes, jittered true positives, wrong classes, duplicates, false positives, score ties,
//! images with more than 100 detections of one class, and images without objects.

mod eval_support;

use trtforge::eval::{evaluate, Detection, GroundTruth, ImageTruth};

/// Small deterministic generator (SplitMix64), so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn synthetic(seed: u64) -> (GroundTruth, Vec<Vec<Detection>>) {
    let mut rng = Rng(seed);
    let mut gt = GroundTruth::default();
    let mut all = Vec::new();
    for i in 0..300 {
        let (w, h) = (320 + rng.below(400) as u32, 240 + rng.below(300) as u32);
        let (wf, hf) = (w as f32, h as f32);
        let n_obj = if i % 17 == 0 { 0 } else { rng.below(12) };
        let mut boxes = Vec::new();
        for _ in 0..n_obj {
            let bw = 4.0 + rng.unit() * wf * 0.6;
            let bh = 4.0 + rng.unit() * hf * 0.6;
            let x = rng.unit() * (wf - bw);
            let y = rng.unit() * (hf - bh);
            // Classes 0..29 skewed to low ids; class 25..29 rare, 30+ never in ground truth.
            let class = (rng.below(30) * rng.below(30) / 29) as u32;
            boxes.push(([x, y, x + bw, y + bh], class));
        }
        let mut dets = Vec::new();
        for &(b, class) in &boxes {
            if rng.unit() < 0.85 {
                let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
                let jitter = [0.02, 0.08, 0.2][rng.below(3) as usize];
                let j = |r: &mut Rng, s: f32| (r.unit() - 0.5) * 2.0 * jitter * s;
                let d = [
                    (b[0] + j(&mut rng, bw)).clamp(0.0, wf),
                    (b[1] + j(&mut rng, bh)).clamp(0.0, hf),
                    (b[2] + j(&mut rng, bw)).clamp(0.0, wf),
                    (b[3] + j(&mut rng, bh)).clamp(0.0, hf),
                ];
                let wrong = rng.unit() < 0.08;
                let score = 0.3 + 0.7 * rng.unit() - jitter;
                dets.push(Detection {
                    bbox: d,
                    score,
                    class: if wrong { (class + 1) % 35 } else { class },
                });
                if rng.unit() < 0.2 {
                    // A duplicate with a lower score: a false positive once the first matched.
                    dets.push(Detection {
                        bbox: d,
                        score: score * 0.5,
                        class,
                    });
                }
            }
        }
        let n_fp = if i % 50 == 3 { 130 } else { rng.below(8) };
        for _ in 0..n_fp {
            let x = rng.unit() * wf * 0.8;
            let y = rng.unit() * hf * 0.8;
            let class = if i % 50 == 3 { 1 } else { rng.below(35) as u32 };
            dets.push(Detection {
                bbox: [
                    x,
                    y,
                    (x + 10.0 + rng.unit() * wf * 0.3).min(wf),
                    (y + 10.0 + rng.unit() * hf * 0.3).min(hf),
                ],
                // Quantised scores make ties across and within images.
                score: (rng.unit() * 20.0).floor() / 40.0,
                class,
            });
        }
        gt.images.push(ImageTruth {
            image: format!("img{i:04}.jpg").into(),
            width: w,
            height: h,
            boxes,
        });
        all.push(dets);
    }
    (gt, all)
}

#[test]
fn map_matches_pycocotools_on_synthetic_detections() {
    let Some(py) = eval_support::python() else {
        return;
    };
    for seed in [1u64, 2, 3] {
        let (gt, dets) = synthetic(seed);
        let ours = evaluate(&gt, &dets).unwrap();
        let (ref50, ref5095) = eval_support::pycocotools(&py, &gt, &dets);
        println!(
            "seed {seed}: {} images, {} detections: ours map50 {:.6} map50_95 {:.6}; pycocotools map50 {ref50:.6} map50_95 {ref5095:.6}",
            ours.images,
            dets.iter().map(Vec::len).sum::<usize>(),
            ours.map50,
            ours.map50_95
        );
        assert!(
            (ours.map50 - ref50).abs() < 0.002,
            "map50 {} vs {ref50}",
            ours.map50
        );
        assert!(
            (ours.map50_95 - ref5095).abs() < 0.002,
            "map50_95 {} vs {ref5095}",
            ours.map50_95
        );
        // Not a degenerate set: far from both 0 and 1.
        assert!(
            ours.map50_95 > 0.2 && ours.map50_95 < 0.9,
            "{}",
            ours.map50_95
        );
    }
}
