//! INT8 range (amax) algorithms over a [`TensorHistogram`]: entropy (KL divergence, the
//! default), minmax, percentile and MSE. All are pure functions of the histogram, hence of the
//! multiset of values: the result does not depend on image order or batch size.
//!
//! Entropy follows the published KL method (reference: pytorch-quantization's
//! `_compute_amax_entropy`): a histogram of |x| with `bins` (2048) bins over [0, max|x|], bin 0
//! given bin 1's count, candidates i = 128..=bins, P = first i bins with the tail folded into bin
//! i-1, Q = the first i bins merged into 128 levels and spread back over the non-empty bins,
//! KL(P||Q), ties to the larger i, amax = i * max / bins. On ordinary data we land within one bin
//! of the reference. Two documented departures fix its pathologies:
//!
//! 1. Empty low bins. A candidate whose first i bins are all empty has an all-zero Q; the
//!    reference's KL is then 0/0 = NaN, NaN wins its argmin, and it picks a threshold below every
//!    sample (N(10,1) data: about 5.3). We skip such candidates (Q carries no information), and
//!    also any candidate that would clip more than half of the values: a threshold is never
//!    below the median |x|.
//! 2. Spikes. A single bin holding a large share of all values (letterbox padding: 114 on a
//!    quarter of the pixels) dominates P and drags the threshold onto it, clipping the real
//!    range above. A bin (other than bin 0) is a spike when it holds at least [`SPIKE_SHARE`]
//!    of the values and at least [`SPIKE_RATIO`] times the mean of its [`SPIKE_HALF_WINDOW`]
//!    neighbours on each side. Its count is replaced by that neighbour mean before the KL search
//!    (the search sees the distribution around it), and the threshold is raised to cover the
//!    spike's bin (a value that frequent must be represented, not clipped).
//!
//! Every result carries the share of values it clips; [`TensorRange::flagged`] is set when that
//! share exceeds the recipe's `max_clip_share`.

use super::histogram::{HistogramSet, TensorHistogram};
use crate::recipe::{Algorithm, Calibration};
use rayon::prelude::*;

/// Quantization levels on one side of zero (int8: 127 + the level at 0).
const LEVELS: usize = 128;
const START_BIN: usize = 128;
/// A spike holds at least this share of all values...
pub const SPIKE_SHARE: f64 = 0.005;
/// ...and at least this many times the mean count of its neighbours.
pub const SPIKE_RATIO: f64 = 32.0;
pub const SPIKE_HALF_WINDOW: usize = 16;

/// Parameters of the range computation (recipe `calibration` section, with defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RangeParams {
    pub algorithm: Algorithm,
    /// Algorithm for graph inputs (their range is fixed by the input contract).
    pub input_algorithm: Algorithm,
    /// Percentile of |x| for `percentile`.
    pub percentile: f64,
    /// Histogram bins for entropy and MSE.
    pub bins: usize,
    /// Flag tensors clipping more than this share of their values.
    pub max_clip_share: f64,
}

impl Default for RangeParams {
    fn default() -> Self {
        RangeParams {
            algorithm: Algorithm::Entropy,
            input_algorithm: Algorithm::Minmax,
            percentile: 99.99,
            bins: 2048,
            max_clip_share: 0.001,
        }
    }
}

impl RangeParams {
    pub fn from_recipe(c: Option<&Calibration>) -> Self {
        let d = RangeParams::default();
        match c {
            None => d,
            Some(c) => RangeParams {
                algorithm: c.algorithm,
                input_algorithm: c.input_algorithm.unwrap_or(d.input_algorithm),
                percentile: c.percentile.unwrap_or(d.percentile),
                bins: c.bins.unwrap_or(d.bins),
                max_clip_share: c.max_clip_share.unwrap_or(d.max_clip_share),
            },
        }
    }
}

/// The range chosen for one tensor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorRange {
    pub algorithm: Algorithm,
    pub amax: f32,
    /// Exact max |x| seen.
    pub max_abs: f32,
    /// Share of values with |x| > amax.
    pub clip_share: f64,
    /// clip_share > max_clip_share.
    pub flagged: bool,
    /// Values of the spikes the entropy search set aside (empty for other algorithms).
    pub spikes: Vec<f32>,
}

/// Compute the range of one tensor with `algorithm`.
pub fn compute(h: &TensorHistogram, algorithm: Algorithm, p: &RangeParams) -> TensorRange {
    let (amax, spikes) = match algorithm {
        Algorithm::Minmax => (h.max_abs(), vec![]),
        Algorithm::Percentile => (percentile(h, p.percentile), vec![]),
        Algorithm::Mse => (mse(h, p.bins), vec![]),
        Algorithm::Entropy => {
            let e = entropy(h, p.bins);
            (e.amax, e.spikes)
        }
    };
    let clip_share = h.share_above(amax as f64);
    TensorRange {
        algorithm,
        amax,
        max_abs: h.max_abs(),
        clip_share,
        flagged: clip_share > p.max_clip_share,
        spikes,
    }
}

/// Ranges for every tensor of a set, in its (graph) order; tensors named in `inputs` use
/// `input_algorithm`. Parallel over tensors.
pub fn compute_all(
    set: &HistogramSet,
    p: &RangeParams,
    inputs: &[String],
) -> Vec<(String, TensorRange)> {
    set.names
        .par_iter()
        .zip(set.hists.par_iter())
        .map(|(name, h)| {
            let algo = if inputs.contains(name) {
                p.input_algorithm
            } else {
                p.algorithm
            };
            (name.clone(), compute(h, algo, p))
        })
        .collect()
}

/// The |x| value below which `pct` percent of the values lie (linear inside a fine bin,
/// never above max|x|).
pub fn percentile(h: &TensorHistogram, pct: f64) -> f32 {
    let n = h.count();
    if n == 0 || h.max_abs() == 0.0 {
        return 0.0;
    }
    let target = (pct / 100.0).clamp(0.0, 1.0) * n as f64;
    let w = h.bin_width();
    let mut cum = 0f64;
    for (i, &c) in h.counts().iter().enumerate() {
        if c == 0 {
            continue;
        }
        let next = cum + c as f64;
        if next >= target {
            let v = (i as f64 + (target - cum) / c as f64) * w;
            return (v as f32).min(h.max_abs());
        }
        cum = next;
    }
    h.max_abs()
}

/// The amax on the `bins`-bin grid over [0, max|x|] minimising the expected squared int8
/// error: inside [0, amax] each value costs min(m^2, s^2/12) (m the bin centre, s = amax/127:
/// uniform rounding noise, or the value itself when it rounds to zero; exact zeros cost
/// nothing), beyond amax it costs (m - amax)^2 (clipping). Ties go to the smaller amax.
pub fn mse(h: &TensorHistogram, bins: usize) -> f32 {
    let max = h.max_abs() as f64;
    if h.count() == 0 || max == 0.0 {
        return 0.0;
    }
    let mut c = h.coarse(bins);
    c[0] = (c[0] - h.zeros() as f64).max(0.0);
    let cw = max / bins as f64;
    let centre = |b: usize| (b as f64 + 0.5) * cw;
    // Prefix sums of count, count*m, count*m^2.
    let mut s0 = vec![0f64; bins + 1];
    let mut s1 = vec![0f64; bins + 1];
    let mut s2 = vec![0f64; bins + 1];
    for b in 0..bins {
        let m = centre(b);
        s0[b + 1] = s0[b] + c[b];
        s1[b + 1] = s1[b] + c[b] * m;
        s2[b + 1] = s2[b] + c[b] * m * m;
    }
    let mut best = (f64::INFINITY, bins);
    for i in 1..=bins {
        let a = i as f64 * cw;
        let s = a / 127.0;
        let noise = s * s / 12.0;
        // Bins [0, j) have m^2 < noise: they cost m^2; bins [j, i) cost the rounding noise.
        let j = (((noise.sqrt() / cw) - 0.5).ceil().max(0.0) as usize).min(i);
        let inside = (s2[j] - s2[0]) + noise * (s0[i] - s0[j]);
        let (t0, t1, t2) = (s0[bins] - s0[i], s1[bins] - s1[i], s2[bins] - s2[i]);
        let outside = t2 - 2.0 * a * t1 + a * a * t0;
        let err = inside + outside.max(0.0);
        if err < best.0 {
            best = (err, i);
        }
    }
    ((best.1 as f64 * cw) as f32).min(h.max_abs())
}

/// Result of the entropy search, with what it set aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Entropy {
    pub amax: f32,
    /// The winning candidate i (threshold = i * max / bins); 0 when no candidate was usable.
    pub index: usize,
    pub spikes: Vec<f32>,
}

/// KL-divergence threshold with the two fixes described in the module docs.
pub fn entropy(h: &TensorHistogram, bins: usize) -> Entropy {
    let max = h.max_abs();
    if h.count() == 0 || max == 0.0 {
        return Entropy {
            amax: 0.0,
            index: 0,
            spikes: vec![],
        };
    }
    let search = KlSearch::new(h, bins);
    let mut best: Option<(f64, usize)> = None;
    for i in START_BIN..=bins {
        let Some(kl) = search.kl(i) else { continue };
        match best {
            Some((k, _)) if kl > k => {}
            _ => best = Some((kl, i)),
        }
    }
    let Some((_, index)) = best else {
        // Nothing usable (every candidate clips most values or sees no data): keep everything.
        return Entropy {
            amax: max,
            index: 0,
            spikes: search.spikes,
        };
    };
    let i = index.max(search.floor_index);
    let amax = ((i as f64 * search.cw) as f32).min(max);
    Entropy {
        amax,
        index: i,
        spikes: search.spikes,
    }
}

/// KL(P || Q) of candidate `i` (threshold i * max / bins) on `h`, as [`entropy`] scores it;
/// `None` where it skips the candidate. Lets a check ask how good another threshold is.
pub fn entropy_kl(h: &TensorHistogram, bins: usize, i: usize) -> Option<f64> {
    if h.count() == 0 || h.max_abs() == 0.0 || !(START_BIN..=bins).contains(&i) {
        return None;
    }
    KlSearch::new(h, bins).kl(i)
}

/// The coarse histogram with spikes flattened and its prefix sums: each candidate is O(LEVELS).
/// KL(P||Q) = sum_b p_b ln p_b - sum_b p_b ln q_b, with p_b = c_b / total for b < i-1 and
/// q_b = (level mean over non-empty bins) / (sum of the first i bins) wherever c_b > 0.
struct KlSearch {
    c: Vec<f64>,
    cw: f64,
    total: f64,
    ln_total: f64,
    /// Prefix sums of counts, of non-empty bins, and of c ln c.
    s: Vec<f64>,
    nz: Vec<u32>,
    a: Vec<f64>,
    spikes: Vec<f32>,
    floor_index: usize,
}

impl KlSearch {
    fn new(h: &TensorHistogram, bins: usize) -> Self {
        let mut c = h.coarse(bins);
        let cw = h.max_abs() as f64 / bins as f64;
        let total: f64 = c.iter().sum();
        // Fix 2: find spikes on the raw histogram (bin 0 excluded: zeros are handled below).
        let mut spikes = vec![];
        let mut floor_index = 0usize;
        let raw = c.clone();
        for b in 1..bins {
            if raw[b] < SPIKE_SHARE * total {
                continue;
            }
            let lo = b.saturating_sub(SPIKE_HALF_WINDOW).max(1);
            let hi = (b + SPIKE_HALF_WINDOW).min(bins - 1);
            let n = (hi - lo) as f64; // neighbours, b excluded
            let neigh = (raw[lo..=hi].iter().sum::<f64>() - raw[b]) / n.max(1.0);
            if raw[b] >= SPIKE_RATIO * neigh {
                c[b] = neigh;
                spikes.push(((b as f64 + 0.5) * cw) as f32);
                floor_index = floor_index.max(b + 1);
            }
        }
        c[0] = c[1];
        let total: f64 = c.iter().sum();
        let mut s = vec![0f64; bins + 1];
        let mut nz = vec![0u32; bins + 1];
        let mut a = vec![0f64; bins + 1];
        for b in 0..bins {
            s[b + 1] = s[b] + c[b];
            nz[b + 1] = nz[b] + (c[b] != 0.0) as u32;
            a[b + 1] = a[b] + if c[b] > 0.0 { c[b] * c[b].ln() } else { 0.0 };
        }
        KlSearch {
            c,
            cw,
            total,
            ln_total: total.ln(),
            s,
            nz,
            a,
            spikes,
            floor_index,
        }
    }

    fn kl(&self, i: usize) -> Option<f64> {
        let (c, s, nz, a, total) = (&self.c, &self.s, &self.nz, &self.a, self.total);
        let tail = total - s[i];
        // Fix 1b: never clip more than half the values.
        if tail > 0.5 * total {
            return None;
        }
        let q_total = s[i];
        // Fix 1a: an all-empty Q carries no information (the reference's NaN).
        if q_total <= 0.0 {
            return None;
        }
        let last = c[i - 1];
        let p_last = last + tail;
        if p_last > 0.0 && last == 0.0 {
            return None; // P > 0 where Q = 0: infinite divergence
        }
        let ln_q_total = q_total.ln();
        // Bins [0, i-1): sum p ln p - sum p ln q.
        let mut kl = (a[i - 1] - self.ln_total * s[i - 1]) / total;
        let mut ln_q_last = 0.0;
        for l in 0..LEVELS {
            let start = (l * i).div_ceil(LEVELS);
            let end = ((l + 1) * i).div_ceil(LEVELS);
            let n = nz[end] - nz[start];
            if n == 0 {
                continue;
            }
            let sum = s[end] - s[start];
            let ln_q = (sum / n as f64).ln() - ln_q_total;
            let own = if end == i { sum - last } else { sum };
            kl -= own * ln_q / total;
            if end == i {
                ln_q_last = ln_q;
            }
        }
        if p_last > 0.0 {
            let p = p_last / total;
            kl += p * (p.ln() - ln_q_last);
        }
        (!kl.is_nan()).then_some(kl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::histogram::NonFinitePolicy;

    fn hist(xs: &[f32]) -> TensorHistogram {
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        h.add(xs).unwrap();
        h
    }

    #[test]
    fn all_zero_gives_zero() {
        let h = hist(&[0.0; 100]);
        let p = RangeParams::default();
        for a in [
            Algorithm::Entropy,
            Algorithm::Minmax,
            Algorithm::Percentile,
            Algorithm::Mse,
        ] {
            let r = compute(&h, a, &p);
            assert_eq!(r.amax, 0.0, "{a:?}");
            assert_eq!(r.clip_share, 0.0);
        }
    }

    #[test]
    fn uniform_percentile_and_minmax() {
        let xs: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).collect();
        let h = hist(&xs);
        assert_eq!(
            compute(&h, Algorithm::Minmax, &RangeParams::default()).amax,
            0.99999
        );
        let p = percentile(&h, 50.0);
        assert!((p - 0.5).abs() < 1e-3, "{p}");
        // Uniform data has no clipping benefit: MSE keeps (almost) the whole range.
        let m = mse(&h, 2048);
        assert!(m > 0.99, "{m}");
    }
}
