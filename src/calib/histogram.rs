//! Streaming |x| histograms, one per tensor, whose final state depends only on the multiset
//! of values seen: not on their order, nor on how they were split into batches or threads.
//!
//! How: [`FINE_BINS`] u64 bins cover `[0, 2^k)` where `2^k` is the smallest power of two
//! strictly above the largest |x| seen so far. A value lands in bin `floor(|x| * FINE_BINS / 2^k)`;
//! multiplying by a power of two is exact in floating point, so when the range doubles the new
//! bin of every value is exactly the old bin halved, and merging adjacent bin pairs reproduces
//! the histogram that would have been built directly with the larger range. The final histogram
//! therefore equals the one built in a single pass with the final range `2^K`, whatever the
//! order, and [`TensorHistogram::merge`] is exact for the same reason.
//!
//! Memory: `FINE_BINS * 4` bytes = 256 KiB per tensor (u32 low words; the rare bins past 2^32
//! counts keep their high words in a small map) plus a few counters, fixed whatever the
//! number of images (a few hundred tensors: well under 100 MiB). Accumulate in parallel across
//! tensors with [`HistogramSet::add_all`] (each tensor's histogram is touched by one thread at a
//! time), so no per-thread copies are needed.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Fine bins per tensor histogram (a power of two).
pub const FINE_BINS: usize = 1 << LOG2_FINE;
const LOG2_FINE: i32 = 16;
/// Smallest range exponent: values below 2^-100 all share bin 0 (keeps the bin scale a normal f32).
const K_MIN: i32 = -100;
const ABS_MASK: u32 = 0x7fff_ffff;
const INF_BITS: u32 = 0x7f80_0000;

/// What to do with NaN or ±Inf activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonFinitePolicy {
    /// Refuse the chunk: the caller reports an error naming tensor and image.
    #[default]
    Error,
    /// Drop the values, counting them (`nan`, `inf`).
    Drop,
}

/// Non-finite values found in a chunk under [`NonFinitePolicy::Error`]; nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite {
    pub nan: u64,
    pub inf: u64,
}

/// Histogram of |x| for one tensor. See the module docs for the invariants.
#[derive(Clone, PartialEq, Eq)]
pub struct TensorHistogram {
    /// Low 32 bits of each bin's count; `hi` holds the rest (bin -> count >> 32) for the rare
    /// bins past 2^32, so the hot array is 4 bytes a bin and stays cache-resident.
    lo: Box<[u32]>,
    hi: BTreeMap<u32, u64>,
    /// Range exponent: bins cover [0, 2^k).
    k: i32,
    /// Bit pattern of the largest finite |x| (bit order equals numeric order for |x|).
    max_bits: u32,
    count: u64,
    zeros: u64,
    nan: u64,
    inf: u64,
    policy: NonFinitePolicy,
}

impl std::fmt::Debug for TensorHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorHistogram")
            .field("range", &self.range())
            .field("max_abs", &self.max_abs())
            .field("count", &self.count)
            .field("zeros", &self.zeros)
            .field("nan", &self.nan)
            .field("inf", &self.inf)
            .finish()
    }
}

/// Values per scan-then-bin block (64 KiB of f32).
const BLOCK: usize = 16 * 1024;

/// Largest |x| bit pattern and zero count of a block (vectorises). NaN and Inf have the largest
/// bit patterns, so `max_bits >= INF_BITS` detects them.
fn scan(xs: &[f32]) -> (u32, u64) {
    let (mut m, mut z) = (0u32, 0u32);
    for &x in xs {
        let b = x.to_bits() & ABS_MASK;
        m = m.max(b);
        z += (b == 0) as u32;
    }
    (m, z as u64)
}

/// 2^e as f32, for e in the normal exponent range.
fn pow2(e: i32) -> f32 {
    debug_assert!((-126..=127).contains(&e));
    f32::from_bits(((127 + e) as u32) << 23)
}

/// Smallest k >= K_MIN with 2^k > |x|, from the bit pattern of a finite |x|.
fn exponent_above(bits: u32) -> i32 {
    let e = (bits >> 23) as i32 - 127; // |x| in [2^e, 2^(e+1)) for normal |x|
    (e + 1).max(K_MIN)
}

impl TensorHistogram {
    pub fn new(policy: NonFinitePolicy) -> Self {
        TensorHistogram {
            lo: vec![0u32; FINE_BINS].into_boxed_slice(),
            hi: BTreeMap::new(),
            k: K_MIN,
            max_bits: 0,
            count: 0,
            zeros: 0,
            nan: 0,
            inf: 0,
            policy,
        }
    }

    /// Bytes of heap memory held (the bound stated in the module docs).
    pub const HEAP_BYTES: usize = FINE_BINS * std::mem::size_of::<u32>();

    /// Add a chunk of values. Under [`NonFinitePolicy::Error`] a chunk holding NaN or Inf is
    /// refused and the counts are returned: the bins and counters are as before the call (only
    /// the range may have widened; a run stops on this error anyway).
    pub fn add(&mut self, xs: &[f32]) -> std::result::Result<(), NonFinite> {
        let saved = (self.count, self.zeros, self.max_bits);
        // Blocks small enough to stay in L1/L2 between the scan and the binning pass.
        for (n, block) in xs.chunks(BLOCK).enumerate() {
            let (max_bits, zeros) = scan(block);
            if max_bits < INF_BITS {
                self.add_finite(block, max_bits, zeros);
                continue;
            }
            if self.policy == NonFinitePolicy::Error {
                self.unbin(&xs[..n * BLOCK]);
                (self.count, self.zeros, self.max_bits) = saved;
                let nan = xs.iter().filter(|x| x.is_nan()).count() as u64;
                let inf = xs.iter().filter(|x| x.is_infinite()).count() as u64;
                return Err(NonFinite { nan, inf });
            }
            self.nan += block.iter().filter(|x| x.is_nan()).count() as u64;
            self.inf += block.iter().filter(|x| x.is_infinite()).count() as u64;
            let finite: Vec<f32> = block.iter().copied().filter(|x| x.is_finite()).collect();
            let (max_bits, zeros) = scan(&finite);
            self.add_finite(&finite, max_bits, zeros);
        }
        Ok(())
    }

    /// Bin finite values whose largest |x| bit pattern is `max_bits`.
    fn add_finite(&mut self, xs: &[f32], max_bits: u32, zeros: u64) {
        self.grow_to(max_bits);
        self.max_bits = self.max_bits.max(max_bits);
        self.zeros += zeros;
        self.count += xs.len() as u64;
        let scale = pow2(LOG2_FINE - self.k);
        let (lo, hi) = (&mut self.lo[..], &mut self.hi);
        for &x in xs {
            let v = f32::from_bits(x.to_bits() & ABS_MASK) * scale;
            // SAFETY: x is finite (scanned) and |x| < 2^k after grow_to; v = |x| * 2^(LOG2_FINE-k)
            // is exact (or rounds towards 0 when subnormal), so 0 <= v < FINE_BINS fits a u32.
            let i = unsafe { v.to_int_unchecked::<u32>() } as usize;
            let i = i & (FINE_BINS - 1);
            let (v, carry) = lo[i].overflowing_add(1);
            lo[i] = v;
            if carry {
                *hi.entry(i as u32).or_insert(0) += 1;
            }
        }
    }

    /// Take back finite values added at the current range (for a refused chunk). Exact: a value
    /// binned at an older, smaller range was merged into the bin it has at the current one.
    fn unbin(&mut self, xs: &[f32]) {
        let scale = pow2(LOG2_FINE - self.k);
        let mut c = self.counts();
        for &x in xs {
            let v = f32::from_bits(x.to_bits() & ABS_MASK) * scale;
            c[(v as usize).min(FINE_BINS - 1)] -= 1;
        }
        self.store(&c);
    }

    /// [`add`](Self::add) with the error a calibration run reports: names the tensor and the image.
    pub fn add_named(&mut self, xs: &[f32], tensor: &str, image: &Path) -> Result<()> {
        self.add(xs).map_err(|n| nonfinite_error(n, tensor, image))
    }

    /// Widen the range so that 2^k > the |x| whose bit pattern is `max_bits`, merging bins.
    fn grow_to(&mut self, max_bits: u32) {
        let k = exponent_above(max_bits);
        if k <= self.k {
            return;
        }
        let d = (k - self.k) as u32;
        self.k = k;
        let mut c = self.counts();
        if d >= LOG2_FINE as u32 {
            let total: u64 = c.iter().sum();
            c.fill(0);
            c[0] = total;
            self.store(&c);
            return;
        }
        // New bin j gathers old bins [j << d, (j + 1) << d): exact, see the module docs.
        let group = 1usize << d;
        for j in 0..FINE_BINS >> d {
            c[j] = c[j * group..(j + 1) * group].iter().sum();
        }
        c[FINE_BINS >> d..].fill(0);
        self.store(&c);
    }

    /// Merge another histogram (same policy) into this one; exact and commutative.
    pub fn merge(&mut self, other: &TensorHistogram) {
        let mut o = std::borrow::Cow::Borrowed(other);
        if o.k < self.k {
            let mut c = other.clone();
            c.grow_k(self.k);
            o = std::borrow::Cow::Owned(c);
        } else if o.k > self.k {
            self.grow_k(o.k);
        }
        let mut c = self.counts();
        for (a, b) in c.iter_mut().zip(o.counts()) {
            *a += b;
        }
        self.store(&c);
        self.max_bits = self.max_bits.max(o.max_bits);
        self.count += o.count;
        self.zeros += o.zeros;
        self.nan += o.nan;
        self.inf += o.inf;
    }

    fn grow_k(&mut self, k: i32) {
        // 2^(k-1) has exponent_above == k.
        if k > self.k {
            self.grow_to(((127 + k - 1) as u32) << 23);
        }
    }

    /// Finite values counted (zeros included, dropped non-finite values excluded).
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Exact zeros among them (they are also in bin 0).
    pub fn zeros(&self) -> u64 {
        self.zeros
    }
    /// NaN values dropped (only under [`NonFinitePolicy::Drop`]).
    pub fn nan(&self) -> u64 {
        self.nan
    }
    /// ±Inf values dropped (only under [`NonFinitePolicy::Drop`]).
    pub fn inf(&self) -> u64 {
        self.inf
    }
    /// Exact largest finite |x| (0 when empty).
    pub fn max_abs(&self) -> f32 {
        f32::from_bits(self.max_bits)
    }
    /// Upper end of the bins' range, 2^k (as f64: k may exceed f32's exponent range).
    pub fn range(&self) -> f64 {
        2f64.powi(self.k)
    }
    /// Width of one fine bin.
    pub fn bin_width(&self) -> f64 {
        2f64.powi(self.k - LOG2_FINE)
    }
    /// The fine bins' counts: bin i counts |x| in [i, i+1) * bin_width().
    pub fn counts(&self) -> Vec<u64> {
        let mut c: Vec<u64> = self.lo.iter().map(|&v| v as u64).collect();
        for (&i, &h) in &self.hi {
            c[i as usize] += h << 32;
        }
        c
    }

    /// Set all counts (canonical split: `hi` only holds non-zero high parts).
    fn store(&mut self, c: &[u64]) {
        self.hi.clear();
        for (i, (&v, l)) in c.iter().zip(self.lo.iter_mut()).enumerate() {
            *l = v as u32;
            if v >> 32 != 0 {
                self.hi.insert(i as u32, v >> 32);
            }
        }
    }
    pub fn policy(&self) -> NonFinitePolicy {
        self.policy
    }

    /// Rebin onto `n` equal bins over [0, max_abs] (the layout of the reference entropy
    /// calibrator), spreading each fine bin's count over the coarse bins it overlaps in
    /// proportion to the overlap. The values at exactly max_abs lie in the last coarse bin.
    pub fn coarse(&self, n: usize) -> Vec<f64> {
        let mut out = vec![0f64; n];
        let max = self.max_abs() as f64;
        if self.count == 0 {
            return out;
        }
        if max == 0.0 {
            out[0] = self.count as f64;
            return out;
        }
        let w = self.bin_width();
        let cw = max / n as f64;
        // The fine bin holding max_abs ends at or beyond max: its values lie in [lo, max].
        let last_fine = ((max / w) as usize).min(FINE_BINS - 1);
        let bins = self.counts();
        for (i, &c) in bins[..=last_fine].iter().enumerate() {
            if c == 0 {
                continue;
            }
            let lo = i as f64 * w;
            let hi = if i == last_fine {
                max
            } else {
                (lo + w).min(max)
            };
            let c = c as f64;
            let a = ((lo / cw) as usize).min(n - 1);
            let b = ((hi / cw) as usize).min(n - 1);
            if a == b || hi <= lo {
                out[a] += c;
                continue;
            }
            let span = hi - lo;
            for (j, o) in out.iter_mut().enumerate().take(b + 1).skip(a) {
                let s = (j as f64 * cw).max(lo);
                let e = if j == n - 1 {
                    hi
                } else {
                    ((j + 1) as f64 * cw).min(hi)
                };
                if e > s {
                    *o += c * (e - s) / span;
                }
            }
        }
        out
    }

    /// Share of the counted values with |x| > t (fine bins straddling t count in proportion).
    pub fn share_above(&self, t: f64) -> f64 {
        if self.count == 0 || t >= self.max_abs() as f64 {
            return 0.0;
        }
        let w = self.bin_width();
        let i = (t / w) as usize;
        if i >= FINE_BINS {
            return 0.0;
        }
        let frac_in = (t - i as f64 * w) / w;
        let bins = self.counts();
        let mut above: f64 = bins[i] as f64 * (1.0 - frac_in);
        above += bins[i + 1..].iter().map(|&c| c as f64).sum::<f64>();
        above / self.count as f64
    }
}

/// The error for NaN/Inf in an activation, naming tensor, image and the recipe switch.
pub fn nonfinite_error(n: NonFinite, tensor: &str, image: &Path) -> Error {
    Error::Invalid(format!(
        "tensor '{tensor}' has {} NaN and {} Inf values on image {}; fix the model or input, \
         or set calibration.drop_nonfinite: true in the recipe to drop and count them",
        n.nan,
        n.inf,
        image.display()
    ))
}

/// One histogram per tensor, in graph order.
#[derive(Debug, Clone)]
pub struct HistogramSet {
    pub names: Vec<String>,
    pub hists: Vec<TensorHistogram>,
}

impl HistogramSet {
    pub fn new(names: Vec<String>, policy: NonFinitePolicy) -> Self {
        let hists = names.iter().map(|_| TensorHistogram::new(policy)).collect();
        HistogramSet { names, hists }
    }

    /// Add one image's (or batch's) values: `values[i]` belongs to tensor `names[i]`.
    /// Tensors are processed in parallel (rayon), each by one thread.
    pub fn add_all(&mut self, values: &[&[f32]], image: &Path) -> Result<()> {
        if values.len() != self.hists.len() {
            return Err(Error::Invalid(format!(
                "{} tensors given for {} histograms (image {})",
                values.len(),
                self.hists.len(),
                image.display()
            )));
        }
        self.hists
            .par_iter_mut()
            .zip(values.par_iter())
            .zip(self.names.par_iter())
            .try_for_each(|((h, v), name)| h.add_named(v, name, image))
    }

    /// Merge a set over the same tensors (for per-thread accumulation over images).
    pub fn merge(&mut self, other: &HistogramSet) -> Result<()> {
        if self.names != other.names {
            return Err(Error::Invalid(
                "cannot merge histogram sets over different tensors".into(),
            ));
        }
        self.hists
            .par_iter_mut()
            .zip(other.hists.par_iter())
            .for_each(|(a, b)| a.merge(b));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&TensorHistogram> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.hists[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_equals_direct() {
        let xs: Vec<f32> = (0..10_000)
            .map(|i| (i as f32 * 0.37).sin() * (i as f32) / 100.0)
            .collect();
        let mut direct = TensorHistogram::new(NonFinitePolicy::Error);
        direct.add(&xs).unwrap();
        let mut inc = TensorHistogram::new(NonFinitePolicy::Error);
        for c in xs.chunks(7) {
            inc.add(c).unwrap();
        }
        assert_eq!(direct, inc);
        let mut rev = TensorHistogram::new(NonFinitePolicy::Error);
        let mut r = xs.clone();
        r.reverse();
        for c in r.chunks(1000) {
            rev.add(c).unwrap();
        }
        assert_eq!(direct, rev);
        let (a, b) = xs.split_at(3333);
        let mut ha = TensorHistogram::new(NonFinitePolicy::Error);
        ha.add(b).unwrap();
        let mut hb = TensorHistogram::new(NonFinitePolicy::Error);
        hb.add(a).unwrap();
        hb.merge(&ha);
        assert_eq!(direct, hb);
    }

    #[test]
    fn range_is_strictly_above_max() {
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        h.add(&[4.0, -1.0, 0.0]).unwrap();
        assert_eq!(h.range(), 8.0);
        assert_eq!(h.max_abs(), 4.0);
        assert_eq!(h.zeros(), 1);
        assert_eq!(h.counts()[FINE_BINS / 2], 1);
        assert_eq!(h.coarse(4), vec![1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn counts_carry_past_u32() {
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        h.add(&[1.0]).unwrap();
        let i = h.counts().iter().position(|&c| c == 1).unwrap();
        let mut c = h.counts();
        c[i] = u32::MAX as u64;
        h.store(&c);
        h.add(&[1.0, 1.0]).unwrap();
        assert_eq!(h.counts()[i], u32::MAX as u64 + 2);
        h.add(&[3.0]).unwrap(); // range doubles: the big bin moves, high word included
        assert_eq!(h.counts()[i / 2], u32::MAX as u64 + 2);
    }

    #[test]
    fn nonfinite_policies() {
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        assert_eq!(
            h.add(&[1.0, f32::NAN, f32::INFINITY, -f32::INFINITY]),
            Err(NonFinite { nan: 1, inf: 2 })
        );
        assert_eq!(h.count(), 0);
        let e = h
            .add_named(&[f32::NAN], "conv1", Path::new("a.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conv1") && e.contains("a.jpg") && e.contains("drop_nonfinite"),
            "{e}"
        );
        let mut d = TensorHistogram::new(NonFinitePolicy::Drop);
        d.add(&[1.0, f32::NAN, f32::INFINITY, 2.0]).unwrap();
        assert_eq!((d.count(), d.nan(), d.inf(), d.max_abs()), (2, 1, 1, 2.0));
    }

    #[test]
    fn all_zero_and_empty() {
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        assert_eq!(h.coarse(8), vec![0.0; 8]);
        h.add(&[0.0, -0.0]).unwrap();
        assert_eq!(h.max_abs(), 0.0);
        assert_eq!(h.coarse(2), vec![2.0, 0.0]);
        assert_eq!(h.share_above(0.0), 0.0);
    }
}
