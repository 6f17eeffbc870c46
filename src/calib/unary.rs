//! Element-wise activations whose histograms are derived from their input's signed histogram
//! once, after the run, instead of computing and binning their values image by image.
//!
//! Why: on YOLOX-nano, Sigmoid and SiLU outputs are 54% of all activation values. Binning
//! them cost more than everything else in calibration; deriving them costs one pass over the
//! input's fine bins per tensor, whatever the number of images.
//!
//! How: the input x is histogrammed with its sign ([`TensorHistogram::new_signed`]). Every fine
//! bin of x maps through f onto an interval of y = f(x); its count is spread evenly over that
//! interval (f taken as linear within one x bin), into the y fine bins it covers, then rounded
//! to whole counts keeping the total. Exact zeros and runs of one value (letterbox padding:
//! spikes that must stay spikes) map exactly, as points. The largest |y| is exact when it comes
//! from x's largest value (Sigmoid with any x >= 0; SiLU whenever some x is above 0.43, where
//! SiLU passes its negative peak); otherwise it is taken at a bin edge, within one x fine bin.
//! The result differs from binning the values themselves only inside one x fine bin (1/65536
//! of x's range), a fraction of one of the 2048 bins the range algorithms work on; `trtforge
//! calibrate --expose-all` bins the real values to cross-check. That is still enough to tip a
//! tensor whose KL curve has two near-equal minima to the other one (see the README). Values
//! dropped from x (NaN/Inf under `drop_nonfinite`) are counted there, not again here.

use super::histogram::TensorHistogram;

/// An activation derived from its input tensor's histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    Sigmoid,
    /// `Mul(x, Sigmoid(x))`: SiLU / Swish.
    Silu,
}

/// |x| at SiLU's minimum on x < 0 (where 1 + x (1 - sigmoid(x)) = 0): |SiLU| rises up to it
/// and falls after, so bins are split there.
const SILU_TURN: f64 = 1.278_464_542_761_074;

impl Unary {
    /// f(x), rounded to f32 as the f32 kernels that compute it at inference round it.
    fn at(self, x: f64) -> f64 {
        let y = match self {
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Silu => x / (1.0 + (-x).exp()),
        };
        y as f32 as f64
    }
}

/// Values spread uniformly over |y| in [lo, hi].
struct Piece {
    lo: f64,
    hi: f64,
    count: f64,
}

/// The |y| histogram of `op` applied to the values of the signed histogram `x`.
///
/// Panics if `x` is not signed (the capture plan makes every derivation source signed).
pub fn derive(op: Unary, x: &TensorHistogram) -> TensorHistogram {
    let (mut pos, mut neg) = x
        .signed_counts()
        .expect("derived activations come from a signed histogram");
    if x.count() == 0 {
        return TensorHistogram::new(x.policy());
    }
    let w = x.bin_width();
    let (max_pos, max_neg) = x.signed_max();
    let mut pieces = Vec::new();
    let mut push = |xa: f64, xb: f64, count: f64| {
        let (ya, yb) = (op.at(xa).abs(), op.at(xb).abs());
        pieces.push(Piece {
            lo: ya.min(yb),
            hi: ya.max(yb),
            count,
        });
    };
    // Exact zeros sit in bin 0 of the x >= 0 half: a point at f(0). Runs of one value
    // (padding) are points too, taken out of their bins.
    if x.zeros() > 0 {
        push(0.0, 0.0, x.zeros() as f64);
    }
    for (v, n) in x.points().into_iter().flatten() {
        let bins = if v < 0.0 { &mut neg } else { &mut pos };
        let i = ((v.abs() as f64 / w) as usize).min(bins.len() - 1);
        bins[i] = bins[i].saturating_sub(n);
        push(v as f64, v as f64, n as f64);
    }
    for (i, &c) in pos.iter().enumerate() {
        let c = c - if i == 0 { x.zeros() } else { 0 };
        if c > 0 {
            let a = i as f64 * w;
            push(a, (a + w).min(max_pos as f64), c as f64);
        }
    }
    for (i, &c) in neg.iter().enumerate().filter(|(_, &c)| c > 0) {
        let (a, b) = (i as f64 * w, ((i + 1) as f64 * w).min(max_neg as f64));
        let c = c as f64;
        if op == Unary::Silu && a < SILU_TURN && SILU_TURN < b {
            let share = (SILU_TURN - a) / (b - a);
            push(-a, -SILU_TURN, c * share);
            push(-SILU_TURN, -b, c * (1.0 - share));
        } else {
            push(-a, -b, c);
        }
    }
    let max_y = pieces
        .iter()
        .filter(|p| p.count > 0.0)
        .map(|p| p.hi)
        .fold(0.0, f64::max) as f32;
    let zeros = pieces
        .iter()
        .filter(|p| p.hi == 0.0)
        .map(|p| p.count)
        .sum::<f64>()
        .round() as u64;
    let counts = spread(&pieces, TensorHistogram::grid_width(max_y), x.count());
    TensorHistogram::from_counts(x.policy(), &counts, max_y, zeros)
}

/// Fine bins of width `wy` holding `pieces`, rounded to whole counts that sum to `total`.
fn spread(pieces: &[Piece], wy: f64, total: u64) -> Vec<u64> {
    let n = super::histogram::FINE_BINS;
    let bin = |y: f64| ((y / wy) as usize).min(n - 1);
    let mut acc = vec![0f64; n];
    for p in pieces.iter().filter(|p| p.count > 0.0) {
        let (ja, jb) = (bin(p.lo), bin(p.hi));
        if ja == jb {
            acc[ja] += p.count;
            continue;
        }
        let per_y = p.count / (p.hi - p.lo);
        for (j, a) in acc.iter_mut().enumerate().take(jb + 1).skip(ja) {
            let s = (j as f64 * wy).max(p.lo);
            let e = if j == n - 1 {
                p.hi
            } else {
                ((j + 1) as f64 * wy).min(p.hi)
            };
            *a += per_y * (e - s).max(0.0);
        }
    }
    // Round the running sum, so rounding never drifts and the total is kept.
    let mut out = vec![0u64; n];
    let (mut cum, mut done) = (0f64, 0u64);
    for (o, a) in out.iter_mut().zip(&acc) {
        cum += a;
        let upto = (cum.round() as u64).min(total);
        *o = upto - done;
        done = upto;
    }
    if let Some(last) = out.iter().rposition(|&c| c > 0) {
        out[last] += total - done;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::histogram::NonFinitePolicy;
    use crate::calib::range;

    /// Conv-output-like values: a deterministic mix of a wide gaussian-ish bulk and a tail.
    fn conv_like(n: usize) -> Vec<f32> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                let g = (u * 12.0 - 6.0) * 0.6 + if i % 97 == 0 { 9.0 * u } else { 0.0 };
                (g - 0.7) as f32
            })
            .collect()
    }

    fn binned(xs: &[f32], signed: bool) -> TensorHistogram {
        let mut h = if signed {
            TensorHistogram::new_signed(NonFinitePolicy::Error)
        } else {
            TensorHistogram::new(NonFinitePolicy::Error)
        };
        h.add(xs).unwrap();
        h
    }

    #[test]
    fn derived_histograms_agree_with_binning_the_values() {
        let xs = conv_like(400_000);
        let x = binned(&xs, true);
        assert_eq!(
            x.counts(),
            binned(&xs, false).counts(),
            "|x| of a signed histogram"
        );
        for (op, f) in [
            (
                Unary::Sigmoid,
                (|v: f64| 1.0 / (1.0 + (-v).exp())) as fn(f64) -> f64,
            ),
            (Unary::Silu, |v| v / (1.0 + (-v).exp())),
        ] {
            let ys: Vec<f32> = xs.iter().map(|&v| f(v as f64) as f32).collect();
            let exact = binned(&ys, false);
            let d = derive(op, &x);
            assert_eq!(d.count(), exact.count(), "{op:?}");
            assert_eq!(d.zeros(), exact.zeros(), "{op:?}");
            let rel = (d.max_abs() - exact.max_abs()).abs() / exact.max_abs();
            assert!(
                rel < 1e-6,
                "{op:?}: max {} vs {}",
                d.max_abs(),
                exact.max_abs()
            );
            // The 2048 bins the range algorithms use differ by a small share of the values.
            let (cd, ce) = (d.coarse(2048), exact.coarse(2048));
            let moved: f64 = cd.iter().zip(&ce).map(|(a, b)| (a - b).abs()).sum();
            assert!(moved / (exact.count() as f64) < 0.01, "{op:?}: {moved}");
            // And every algorithm lands within one of those bins.
            let bin = exact.max_abs() as f64 / 2048.0;
            let amax = |h: &TensorHistogram| {
                [
                    range::entropy(h, 2048).amax as f64,
                    range::percentile(h, 99.99) as f64,
                    range::mse(h, 2048) as f64,
                ]
            };
            for (a, b) in amax(&d).iter().zip(amax(&exact)) {
                assert!((a - b).abs() <= bin * 1.0001, "{op:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn silu_minimum_and_empty_inputs() {
        // Only negative inputs: |SiLU| peaks at the turn, inside the bins around it.
        let xs: Vec<f32> = (1..=4000).map(|i| -(i as f32) * 1e-3).collect();
        let d = derive(Unary::Silu, &binned(&xs, true));
        let peak = SILU_TURN / (1.0 + SILU_TURN.exp());
        assert!((d.max_abs() as f64 - peak).abs() < 1e-6, "{}", d.max_abs());
        assert_eq!(d.count(), 4000);
        // Sigmoid of negative inputs only: its largest value is near the smallest |x|, not 0.5.
        let d = derive(Unary::Sigmoid, &binned(&xs, true));
        let top = 1.0 / (1.0 + 1e-3f64.exp());
        assert!((d.max_abs() as f64 - top).abs() < 1e-4, "{}", d.max_abs());
        let empty = derive(Unary::Sigmoid, &binned(&[], true));
        assert_eq!((empty.count(), empty.max_abs()), (0, 0.0));
    }

    #[test]
    fn a_run_of_one_value_stays_a_spike() {
        // Letterbox padding: one conv output value repeated over a region. Binning the sigmoid
        // of it puts the whole run into one bin; so must the derivation.
        let mut xs = conv_like(50_000);
        xs.extend(std::iter::repeat_n(0.4137f32, 20_000));
        let x = binned(&xs, true);
        assert_eq!(x.points().unwrap().collect::<Vec<_>>(), [(0.4137, 20_000)]);
        let sig = |v: f32| (1.0 / (1.0 + (-(v as f64)).exp())) as f32;
        let exact = binned(&xs.iter().map(|&v| sig(v)).collect::<Vec<_>>(), false);
        let d = derive(Unary::Sigmoid, &x);
        let spike = (sig(0.4137) as f64 / exact.max_abs() as f64 * 2048.0) as usize;
        let (cd, ce) = (d.coarse(2048), exact.coarse(2048));
        assert!(ce[spike] >= 20_000.0);
        assert!(
            (cd[spike] - ce[spike]).abs() < 50.0,
            "{} vs {}",
            cd[spike],
            ce[spike]
        );
    }
}
