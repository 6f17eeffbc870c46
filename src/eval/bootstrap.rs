//! How sure is a mAP drop? A paired bootstrap over images: resample the evaluated images with
//! replacement, score the reference and the candidate on the *same* resample, and read the
//! drop's percentile interval. Pairing matters: most of the variance of one model's mAP on a
//! small set comes from which images it holds, and both models share that part.
//!
//! mAP is not a mean over images, so each resample is scored anew from the per-image matches
//! ([`Matched::score`]); matching is per image, so this is exact, not an approximation.

use super::map::Matched;
use crate::error::{Error, Result};
use serde::Serialize;

/// Resamples when the caller does not choose (the percentile method's usual count).
pub const RESAMPLES: usize = 1000;
/// Fixed, so a report is reproducible run to run.
const SEED: u64 = 0x7472_7466_6f72_6765;

/// The drop `reference - candidate` of mAP@0.5:0.95 on one image set, with its interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct DropInterval {
    pub images: usize,
    /// On the set itself.
    pub drop: f64,
    /// Percentile interval at `level`.
    pub low: f64,
    pub high: f64,
    pub level: f64,
    /// Standard deviation of the resampled drops (the bootstrap standard error).
    pub std_error: f64,
    pub resamples: usize,
}

impl DropInterval {
    /// Images needed for an interval of half-width `half` at the same level, assuming the
    /// standard error falls as 1/sqrt(n) (it does for a sum over independent images, which
    /// mAP approximately is at these sizes).
    /// None for a half-width of 0 (no finite set resolves it); the images it has when the
    /// interval is already that narrow.
    pub fn images_for_half_width(&self, half: f64) -> Option<usize> {
        let now = (self.high - self.low) / 2.0;
        if half.is_nan() || half <= 0.0 {
            return None;
        }
        if now <= half {
            return Some(self.images);
        }
        Some((self.images as f64 * (now / half).powi(2)).ceil() as usize)
    }
}

/// Paired bootstrap of `reference.score - candidate.score` (mAP@0.5:0.95) over the images
/// both were matched on.
pub fn drop_interval(
    reference: &Matched,
    candidate: &Matched,
    resamples: usize,
    level: f64,
) -> Result<DropInterval> {
    let n = reference.images();
    if n != candidate.images() || n == 0 || resamples == 0 || !(0.0..1.0).contains(&level) {
        return Err(Error::internal(format!(
            "bootstrap of {} vs {} images, {resamples} resamples, level {level}",
            n,
            candidate.images()
        )));
    }
    let all: Vec<usize> = (0..n).collect();
    let drop = reference.score(&all).map50_95 - candidate.score(&all).map50_95;
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut idx = vec![0usize; n];
    let mut drops: Vec<f64> = (0..resamples)
        .map(|_| {
            idx.iter_mut().for_each(|i| *i = rng.usize(..n));
            reference.score(&idx).map50_95 - candidate.score(&idx).map50_95
        })
        .collect();
    drops.sort_by(f64::total_cmp);
    let at = |q: f64| drops[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    let mean = drops.iter().sum::<f64>() / resamples as f64;
    let var = drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / resamples as f64;
    Ok(DropInterval {
        images: n,
        drop,
        low: at((1.0 - level) / 2.0),
        high: at((1.0 + level) / 2.0),
        level,
        std_error: var.sqrt(),
        resamples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::labels::{GroundTruth, ImageTruth};
    use crate::eval::{match_images, Detection};

    /// `n` images with one box each; the candidate finds it on images where `hit(i)`.
    fn pair(n: usize, hit: impl Fn(usize) -> bool) -> (Matched, Matched) {
        let gt = GroundTruth {
            images: (0..n)
                .map(|i| ImageTruth {
                    image: format!("{i}.jpg").into(),
                    width: 100,
                    height: 100,
                    boxes: vec![([10.0, 10.0, 50.0, 50.0], 0)],
                })
                .collect(),
        };
        let det = |on: bool| -> Vec<Detection> {
            if on {
                vec![Detection {
                    bbox: [10.0, 10.0, 50.0, 50.0],
                    score: 0.9,
                    class: 0,
                }]
            } else {
                vec![]
            }
        };
        let r: Vec<_> = (0..n).map(|_| det(true)).collect();
        let c: Vec<_> = (0..n).map(|i| det(hit(i))).collect();
        (
            match_images(&gt, &r).unwrap(),
            match_images(&gt, &c).unwrap(),
        )
    }

    #[test]
    fn identical_models_have_a_zero_width_interval() {
        let (r, _) = pair(20, |_| true);
        let d = drop_interval(&r, &r, 200, 0.95).unwrap();
        assert_eq!((d.drop, d.low, d.high, d.std_error), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn the_interval_holds_the_drop_and_narrows_with_more_images() {
        // The candidate misses one image in four: recall 0.75, AP about 0.75, drop about 0.25.
        let (r, c) = pair(40, |i| i % 4 != 0);
        let small = drop_interval(&r, &c, 1000, 0.95).unwrap();
        assert!(
            small.low <= small.drop && small.drop <= small.high,
            "{small:?}"
        );
        assert!(small.low > 0.0 && small.high < 0.5, "{small:?}");
        let (r, c) = pair(400, |i| i % 4 != 0);
        let big = drop_interval(&r, &c, 1000, 0.95).unwrap();
        let (ws, wb) = (small.high - small.low, big.high - big.low);
        // Ten times the images: about sqrt(10) = 3.2 times narrower.
        assert!(ws / wb > 2.2 && ws / wb < 4.5, "{ws} vs {wb}");
        let need = small.images_for_half_width(wb / 2.0).unwrap();
        assert_eq!(small.images_for_half_width(0.0), None);
        assert!((200..=800).contains(&need), "{need}");
    }

    #[test]
    fn resampling_is_reproducible() {
        let (r, c) = pair(30, |i| i % 3 != 0);
        assert_eq!(
            drop_interval(&r, &c, 300, 0.9).unwrap(),
            drop_interval(&r, &c, 300, 0.9).unwrap()
        );
    }
}
