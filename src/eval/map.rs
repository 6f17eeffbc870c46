//! COCO-style box mAP, computed the way pycocotools' `COCOeval` does for `iouType="bbox"`,
//! area range "all" and `maxDets=100`:
//! - per image and class, detections sorted by score (stable) and cut to 100;
//! - per IoU threshold (0.50:0.05:0.95), each detection in score order takes the unmatched
//!   ground-truth box of its class with the highest IoU that is at least the threshold;
//! - per class, all images' detections sorted by score (stable, image order for ties),
//!   precision made monotone and read at the 101 recall points 0:0.01:1 (0 past the last);
//! - classes without ground truth are ignored; a class with ground truth but no detection
//!   scores 0. mAP@0.5:0.95 is the mean over classes and thresholds.

use super::detection::Detection;
use super::labels::GroundTruth;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};

/// Detections kept per image and class, as COCO's `maxDets[-1]`.
pub const MAX_DETS: usize = 100;
const N_IOU: usize = 10;
const N_REC: usize = 101;

/// Average precision of one class (classes with ground truth only).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassAp {
    pub class: u32,
    pub ap50: f64,
    pub ap50_95: f64,
    /// Ground-truth boxes of this class.
    pub ground_truth: usize,
    /// Detections of this class that entered the evaluation (after the per-image cut).
    pub detections: usize,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalResult {
    pub images: usize,
    pub map50: f64,
    pub map50_95: f64,
    pub per_class: Vec<ClassAp>,
}

/// IoU thresholds as `np.linspace(.5, .95, 10)` computes them (so edge cases agree).
fn iou_thresholds() -> [f64; N_IOU] {
    let step = (0.95 - 0.5) / 9.0;
    std::array::from_fn(|i| {
        if i == N_IOU - 1 {
            0.95
        } else {
            i as f64 * step + 0.5
        }
    })
}

/// Recall thresholds as `np.linspace(0, 1, 101)`.
fn recall_thresholds() -> [f64; N_REC] {
    std::array::from_fn(|i| if i == N_REC - 1 { 1.0 } else { i as f64 * 0.01 })
}

/// IoU of `[x1, y1, x2, y2]` boxes in f64, as pycocotools computes it from `[x, y, w, h]`.
fn iou64(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let a = a.map(f64::from);
    let b = b.map(f64::from);
    let (aw, ah, bw, bh) = (a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]);
    let iw = (a[0] + aw).min(b[0] + bw) - a[0].max(b[0]);
    let ih = (a[1] + ah).min(b[1] + bh) - a[1].max(b[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    inter / (aw * ah + bw * bh - inter)
}

/// Detections of one class in one image, matched against that image's ground truth: what
/// COCO's accumulation needs, and all it needs, so any multiset of images (a bootstrap
/// resample) can be scored without matching again.
#[derive(Debug, Clone, Default)]
struct ClassMatches {
    ground_truth: usize,
    /// (score, matched per IoU threshold), in descending score order (stable), cut to 100.
    scored: Vec<(f32, [bool; N_IOU])>,
}

/// Every image matched class by class: [`Matched::score`] gives COCO mAP over any list of
/// image indices; [`evaluate`] is the list 0..n. Matching is per image, so scoring a resample
/// equals matching the resampled images anew.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Classes with ground truth in the whole set, ascending.
    classes: Vec<u32>,
    /// `per_image[i][k]`: image i, class `classes[k]`.
    per_image: Vec<Vec<ClassMatches>>,
}

/// Match `detections[i]` (original-image pixels) against `gt.images[i]`, class by class.
pub fn match_images(gt: &GroundTruth, detections: &[Vec<Detection>]) -> Result<Matched> {
    if gt.images.len() != detections.len() {
        return Err(Error::internal(format!(
            "evaluation got detections for {} images but ground truth for {}",
            detections.len(),
            gt.images.len()
        )));
    }
    let ts = iou_thresholds();
    let mut classes: Vec<u32> = gt
        .images
        .iter()
        .flat_map(|im| im.boxes.iter().map(|b| b.1))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let per_image = gt
        .images
        .iter()
        .zip(detections)
        .map(|(im, dets)| {
            classes
                .iter()
                .map(|&k| {
                    let g: Vec<&[f32; 4]> =
                        im.boxes.iter().filter(|b| b.1 == k).map(|b| &b.0).collect();
                    let mut d: Vec<&Detection> = dets.iter().filter(|d| d.class == k).collect();
                    d.sort_by(|a, b| b.score.total_cmp(&a.score)); // stable, like mergesort
                    d.truncate(MAX_DETS);
                    let ious: Vec<Vec<f64>> = d
                        .iter()
                        .map(|d| g.iter().map(|gb| iou64(&d.bbox, gb)).collect())
                        .collect();
                    let mut matched = vec![[false; N_IOU]; d.len()];
                    for (ti, &t) in ts.iter().enumerate() {
                        let mut gt_taken = vec![false; g.len()];
                        for (di, row) in ious.iter().enumerate() {
                            let mut best = t.min(1.0 - 1e-10);
                            let mut m = None;
                            for (gi, &v) in row.iter().enumerate() {
                                if gt_taken[gi] || v < best {
                                    continue;
                                }
                                best = v;
                                m = Some(gi);
                            }
                            if let Some(gi) = m {
                                gt_taken[gi] = true;
                                matched[di][ti] = true;
                            }
                        }
                    }
                    ClassMatches {
                        ground_truth: g.len(),
                        scored: d.iter().zip(matched).map(|(d, m)| (d.score, m)).collect(),
                    }
                })
                .collect()
        })
        .collect();
    Ok(Matched { classes, per_image })
}

impl Matched {
    pub fn images(&self) -> usize {
        self.per_image.len()
    }

    /// COCO mAP over every image, in order (what [`evaluate`] returns).
    pub fn score_all(&self) -> EvalResult {
        let all: Vec<usize> = (0..self.images()).collect();
        self.score(&all)
    }

    /// COCO mAP over the images `which` (indices, repeats allowed), in that order. Classes
    /// without ground truth among them are ignored, as COCO ignores them.
    pub fn score(&self, which: &[usize]) -> EvalResult {
        let rs = recall_thresholds();
        let mut per_class = Vec::with_capacity(self.classes.len());
        for (k, &class) in self.classes.iter().enumerate() {
            let npig: usize = which
                .iter()
                .map(|&i| self.per_image[i][k].ground_truth)
                .sum();
            if npig == 0 {
                continue;
            }
            let mut scored: Vec<(f32, [bool; N_IOU])> = which
                .iter()
                .flat_map(|&i| self.per_image[i][k].scored.iter().copied())
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut ap = [0f64; N_IOU];
            for (ti, ap_t) in ap.iter_mut().enumerate() {
                let (mut tp, mut fp) = (0f64, 0f64);
                let mut rc = Vec::with_capacity(scored.len());
                let mut pr = Vec::with_capacity(scored.len());
                for (_, m) in &scored {
                    if m[ti] {
                        tp += 1.0;
                    } else {
                        fp += 1.0;
                    }
                    rc.push(tp / npig as f64);
                    pr.push(tp / (fp + tp + f64::EPSILON));
                }
                for i in (1..pr.len()).rev() {
                    if pr[i] > pr[i - 1] {
                        pr[i - 1] = pr[i];
                    }
                }
                let mut sum = 0.0;
                for &r in &rs {
                    let idx = rc.partition_point(|&x| x < r); // searchsorted side="left"
                    if idx < pr.len() {
                        sum += pr[idx];
                    }
                }
                *ap_t = sum / N_REC as f64;
            }
            per_class.push(ClassAp {
                class,
                ap50: ap[0],
                ap50_95: ap.iter().sum::<f64>() / N_IOU as f64,
                ground_truth: npig,
                detections: scored.len(),
            });
        }
        let n = per_class.len().max(1) as f64;
        EvalResult {
            images: which.len(),
            map50: per_class.iter().map(|c| c.ap50).sum::<f64>() / n,
            map50_95: per_class.iter().map(|c| c.ap50_95).sum::<f64>() / n,
            per_class,
        }
    }
}

/// COCO-style mAP of `detections[i]` (original-image pixels) against `gt.images[i]`.
pub fn evaluate(gt: &GroundTruth, detections: &[Vec<Detection>]) -> Result<EvalResult> {
    Ok(match_images(gt, detections)?.score_all())
}

/// The ground truth as a COCO annotation file (image ids are indices, category ids classes).
pub fn coco_ground_truth_json(gt: &GroundTruth, num_classes: u32) -> Value {
    let mut anns = Vec::new();
    for (i, im) in gt.images.iter().enumerate() {
        for (b, c) in &im.boxes {
            let (w, h) = (
                f64::from(b[2]) - f64::from(b[0]),
                f64::from(b[3]) - f64::from(b[1]),
            );
            anns.push(json!({
                "id": anns.len() + 1, "image_id": i, "category_id": c,
                "bbox": [f64::from(b[0]), f64::from(b[1]), w, h], "area": w * h, "iscrowd": 0,
            }));
        }
    }
    let max_class = gt
        .images
        .iter()
        .flat_map(|im| im.boxes.iter().map(|b| b.1 + 1))
        .max()
        .unwrap_or(0);
    let cats: Vec<Value> = (0..num_classes.max(max_class))
        .map(|c| json!({"id": c, "name": c.to_string()}))
        .collect();
    let images: Vec<Value> = gt
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| json!({"id": i, "width": im.width, "height": im.height, "file_name": im.image.display().to_string()}))
        .collect();
    json!({"images": images, "annotations": anns, "categories": cats})
}

/// Detections as a COCO results list (`bbox` is `[x, y, w, h]`).
pub fn coco_detections_json(detections: &[Vec<Detection>]) -> Value {
    let mut out = Vec::new();
    for (i, dets) in detections.iter().enumerate() {
        for d in dets {
            let b = d.bbox.map(f64::from);
            out.push(json!({
                "image_id": i, "category_id": d.class,
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": f64::from(d.score),
            }));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::labels::ImageTruth;

    fn truth(boxes: Vec<([f32; 4], u32)>) -> GroundTruth {
        GroundTruth {
            images: vec![ImageTruth {
                image: "a.jpg".into(),
                width: 100,
                height: 100,
                boxes,
            }],
        }
    }

    #[test]
    fn perfect_detections_score_one() {
        let gt = truth(vec![
            ([0.0, 0.0, 10.0, 10.0], 0),
            ([20.0, 20.0, 40.0, 50.0], 3),
        ]);
        let dets = vec![gt.images[0]
            .boxes
            .iter()
            .map(|(b, c)| Detection {
                bbox: *b,
                score: 0.9,
                class: *c,
            })
            .collect()];
        let r = evaluate(&gt, &dets).unwrap();
        assert!(
            (r.map50 - 1.0).abs() < 1e-12 && (r.map50_95 - 1.0).abs() < 1e-12,
            "{r:?}"
        );
        assert_eq!(r.per_class.len(), 2);
    }

    #[test]
    fn half_overlap_counts_only_at_low_thresholds() {
        // IoU 0.72: a hit at 0.50..0.70 (5 thresholds), a miss at 0.75..0.95.
        let gt = truth(vec![([0.0, 0.0, 100.0, 100.0], 0)]);
        let dets = vec![vec![Detection {
            bbox: [0.0, 0.0, 100.0, 72.0],
            score: 0.5,
            class: 0,
        }]];
        let r = evaluate(&gt, &dets).unwrap();
        assert!((r.map50 - 1.0).abs() < 1e-12);
        assert!((r.map50_95 - 0.5).abs() < 1e-12, "{}", r.map50_95);
    }

    #[test]
    fn class_without_truth_is_ignored_and_missed_class_is_zero() {
        let gt = truth(vec![
            ([0.0, 0.0, 10.0, 10.0], 0),
            ([50.0, 50.0, 60.0, 60.0], 1),
        ]);
        let dets = vec![vec![
            Detection {
                bbox: [0.0, 0.0, 10.0, 10.0],
                score: 0.9,
                class: 0,
            },
            Detection {
                bbox: [0.0, 0.0, 10.0, 10.0],
                score: 0.9,
                class: 7,
            },
        ]];
        let r = evaluate(&gt, &dets).unwrap();
        assert_eq!(
            r.per_class.iter().map(|c| c.class).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!((r.map50 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn scoring_a_subset_equals_evaluating_it_alone() {
        let im = |name: &str, boxes: Vec<([f32; 4], u32)>| ImageTruth {
            image: name.into(),
            width: 100,
            height: 100,
            boxes,
        };
        let gt = GroundTruth {
            images: vec![
                im(
                    "a",
                    vec![([0.0, 0.0, 10.0, 10.0], 0), ([20.0, 20.0, 40.0, 40.0], 1)],
                ),
                im("b", vec![([5.0, 5.0, 30.0, 30.0], 2)]),
                im("c", vec![([0.0, 0.0, 50.0, 50.0], 0)]),
            ],
        };
        let d = |b: [f32; 4], score: f32, class: u32| Detection {
            bbox: b,
            score,
            class,
        };
        let dets = vec![
            vec![
                d([0.0, 0.0, 10.0, 8.0], 0.9, 0),
                d([20.0, 20.0, 40.0, 40.0], 0.4, 1),
            ],
            vec![
                d([5.0, 5.0, 30.0, 25.0], 0.8, 2),
                d([0.0, 0.0, 9.0, 9.0], 0.7, 0),
            ],
            vec![
                d([0.0, 0.0, 45.0, 50.0], 0.6, 0),
                d([60.0, 60.0, 70.0, 70.0], 0.95, 0),
            ],
        ];
        let m = match_images(&gt, &dets).unwrap();
        // Class 2 has truth only in image b: a subset without b must ignore it, as COCO does.
        for which in [vec![0, 2], vec![2, 0], vec![1], vec![0, 1, 2]] {
            let sub = GroundTruth {
                images: which.iter().map(|&i| gt.images[i].clone()).collect(),
            };
            let sub_dets: Vec<_> = which.iter().map(|&i| dets[i].clone()).collect();
            let alone = evaluate(&sub, &sub_dets).unwrap();
            let scored = m.score(&which);
            assert_eq!(scored.per_class, alone.per_class, "{which:?}");
            assert_eq!(
                (scored.map50, scored.map50_95),
                (alone.map50, alone.map50_95)
            );
        }
    }
}
