//! Latency statistics over per-iteration times, with the definitions trtexec uses so the
//! numbers can be put next to a `trtexec` run without footnotes.
//!
//! Definitions (from TensorRT `samples/common/sampleReporting.cpp`, `findPercentile`,
//! `findMedian`, `findCoeffOfVariance`):
//! - percentile p of n ascending values: `exclude = floor((1 - p/100) * n)`, value at index
//!   `max(n - 1 - exclude, 0)`. A nearest-rank style rule (no interpolation), evaluated in
//!   f32 exactly as trtexec's C++ does (`percentile` is a float there): so p90 of 100 values is
//!   the 90th value, but p99 of 100 values is the maximum (1 - 0.99f32 is just below 0.01 and
//!   the product truncates to 0). p100 is always the max, p0 the min.
//! - median: the middle value, or the mean of the two middle values for even n (so the median
//!   can differ from p50, exactly as in trtexec).
//! - standard deviation: population form (divide by n), as trtexec's coefficient of variance.

use serde::{Deserialize, Serialize};

/// One requested percentile and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PercentileValue {
    /// The percentile in [0, 100].
    pub p: f64,
    pub value_ms: f64,
}

/// Summary of a set of per-iteration times, all in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub percentiles: Vec<PercentileValue>,
    pub max_ms: f64,
    /// Population standard deviation.
    pub std_ms: f64,
    /// std / mean in percent (0 when the mean is 0).
    pub cv_percent: f64,
}

impl Summary {
    /// What any real summary satisfies: samples, positive finite times, min <= median, mean,
    /// percentiles <= max, a non-negative spread. A report that breaks this was edited or
    /// corrupted (an old mean of 0 would hide every regression).
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        let in_range = |v: f64| v.is_finite() && self.min_ms <= v && v <= self.max_ms;
        if self.count == 0 {
            return Err("no samples".into());
        }
        if !(self.min_ms.is_finite() && self.min_ms >= 0.0) {
            return Err(format!("min {} ms", self.min_ms));
        }
        if !(self.mean_ms.is_finite() && self.mean_ms > 0.0) {
            return Err(format!("mean {} ms", self.mean_ms));
        }
        for (what, v) in [("mean", self.mean_ms), ("median", self.median_ms)] {
            if !in_range(v) {
                return Err(format!(
                    "{what} {v} ms outside min {} .. max {}",
                    self.min_ms, self.max_ms
                ));
            }
        }
        if let Some(p) = self.percentiles.iter().find(|p| !in_range(p.value_ms)) {
            return Err(format!("p{} {} ms outside min .. max", p.p, p.value_ms));
        }
        if !(self.std_ms.is_finite() && self.std_ms >= 0.0) {
            return Err(format!("std {} ms", self.std_ms));
        }
        Ok(())
    }

    /// The value of percentile `p` if it was requested.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|v| (v.p - p).abs() < 1e-9)
            .map(|v| v.value_ms)
    }
}

/// trtexec's percentile of an ascending slice. `None` for an empty slice or p outside [0, 100].
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let n = sorted.len();
    // Same arithmetic as trtexec: float (f32) product truncated toward zero.
    let exclude = ((1.0f32 - p as f32 / 100.0f32) * n as f32) as usize;
    let idx = (n - 1).saturating_sub(exclude);
    Some(sorted[idx])
}

/// Median of an ascending slice (mean of the two middle values for even length).
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let m = n / 2;
    Some(if n % 2 == 1 {
        sorted[m]
    } else {
        (sorted[m - 1] + sorted[m]) / 2.0
    })
}

/// Summarize `samples_ms` (any order). `None` when there are no samples; percentiles outside
/// [0, 100] are rejected by the caller ([`validate_percentiles`]).
pub fn summarize(samples_ms: &[f64], percentiles: &[f64]) -> Option<Summary> {
    if samples_ms.is_empty() {
        return None;
    }
    let mut sorted = samples_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let var = sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    Some(Summary {
        count: sorted.len(),
        min_ms: sorted[0],
        mean_ms: mean,
        median_ms: median(&sorted)?,
        percentiles: percentiles
            .iter()
            .filter_map(|&p| percentile(&sorted, p).map(|v| PercentileValue { p, value_ms: v }))
            .collect(),
        max_ms: sorted[sorted.len() - 1],
        std_ms: std,
        cv_percent: if mean > 0.0 { std / mean * 100.0 } else { 0.0 },
    })
}

/// Check a percentile list: each in [0, 100], finite.
pub fn validate_percentiles(ps: &[f64]) -> crate::Result<()> {
    for &p in ps {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(crate::Error::Invalid(format!(
                "percentile {p} is outside [0, 100]; pass e.g. --percentiles 50,90,95,99"
            )));
        }
    }
    Ok(())
}

/// Inferences per second: `iterations * batch / wall_s`. `None` when the wall time is zero
/// or not finite (a sub-resolution run), instead of an infinite or NaN figure.
pub fn throughput(iterations: usize, batch: usize, wall_s: f64) -> Option<f64> {
    if wall_s > 0.0 && wall_s.is_finite() {
        Some(iterations as f64 * batch as f64 / wall_s)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trtexec_rule_small() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // exclude = floor(0.5*4)=2 -> idx 1
        assert_eq!(percentile(&v, 50.0), Some(2.0));
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        // exclude = floor(1.0*4)=4 -> saturates to idx 0
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(median(&v), Some(2.5));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 101.0), None);
    }

    #[test]
    fn throughput_no_div_by_zero() {
        assert_eq!(throughput(10, 1, 0.0), None);
        assert_eq!(throughput(10, 2, 0.5), Some(40.0));
    }
}
