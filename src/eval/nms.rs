//! Class-aware greedy non-maximum suppression and the per-image top-k cut.

use super::detection::Detection;

/// IoU of two `[x1, y1, x2, y2]` boxes (continuous coordinates, no +1), 0 for empty boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy NMS within each class: visit boxes by descending score, drop any box whose IoU
/// with an already kept box of the same class exceeds `iou_threshold`.
/// Returns the kept boxes sorted by descending score (ties keep input order).
pub fn nms_class_aware(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    // Kept boxes per class, so each candidate only meets its own class.
    let mut by_class: std::collections::HashMap<u32, Vec<usize>> = Default::default();
    for d in dets {
        let same = by_class.entry(d.class).or_default();
        if same
            .iter()
            .all(|&k| iou(&kept[k].bbox, &d.bbox) <= iou_threshold)
        {
            same.push(kept.len());
            kept.push(d);
        }
    }
    kept
}

/// Keep the `k` highest-scored detections (stable for ties).
pub fn top_k(dets: &mut Vec<Detection>, k: usize) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(b: [f32; 4], score: f32, class: u32) -> Detection {
        Detection {
            bbox: b,
            score,
            class,
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    }

    #[test]
    fn suppresses_within_class_only() {
        let dets = vec![
            det([0.0, 0.0, 10.0, 10.0], 0.5, 0),
            det([1.0, 0.0, 11.0, 10.0], 0.9, 0),
            det([1.0, 0.0, 11.0, 10.0], 0.8, 1),
            det([50.0, 50.0, 60.0, 60.0], 0.1, 0),
        ];
        let kept = nms_class_aware(dets, 0.65);
        let got: Vec<(f32, u32)> = kept.iter().map(|d| (d.score, d.class)).collect();
        assert_eq!(got, vec![(0.9, 0), (0.8, 1), (0.1, 0)]);
    }

    #[test]
    fn top_k_keeps_best() {
        let mut d: Vec<Detection> = (0..5).map(|i| det([0.0; 4], i as f32, 0)).collect();
        top_k(&mut d, 2);
        assert_eq!(
            d.iter().map(|d| d.score).collect::<Vec<_>>(),
            vec![4.0, 3.0]
        );
    }
}
