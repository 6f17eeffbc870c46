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
//! A *signed* histogram ([`TensorHistogram::new_signed`]) keeps x >= 0 and x < 0 in two halves
//! on the same grid; its |x| histogram is their sum. Calibration keeps one for each tensor
//! whose activations (sigmoid, SiLU, ...) are derived from it after the run (`unary::derive`).
//!
//! Memory: `FINE_BINS * 4` bytes = 256 KiB per tensor, twice that when signed (u32 low words;
//! the rare bins past 2^31 counts keep their high part in a small map) plus a few counters,
//! fixed whatever the number of images (a few hundred tensors: well under 100 MiB). Accumulate in parallel across
//! tensors (calibration does it through `capture::Plan::add_image`; [`HistogramSet::add_all`]
//! when every tensor's values are at hand): each tensor's histogram is touched by one thread at
//! a time, so no per-thread copies are needed.

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
#[derive(Clone)]
pub struct TensorHistogram {
    /// Each bin's count is `lo[i] + (hi[i] << 31)`. The hot array is 4 bytes a bin so it stays
    /// in the L2 cache, and the inner loop increments it without an overflow test: after every
    /// [`carry`](Self::carry) each `lo` is below 2^31, and at most 2^31 values are added before
    /// the next one (`since_carry` counts them). Signed: `FINE_BINS` more for x < 0.
    lo: Box<[u32]>,
    hi: BTreeMap<u32, u64>,
    since_carry: u64,
    /// Range exponent: bins cover [0, 2^k).
    k: i32,
    /// Bit pattern of the largest finite |x| (bit order equals numeric order for |x|).
    max_bits: u32,
    /// Signed only: bit patterns of the largest x >= 0 and of the largest |x| among x < 0.
    pos_bits: u32,
    neg_bits: u32,
    /// Signed only: values seen in runs of [`RUN_MIN`] or more equal values (bit pattern ->
    /// count; zeros excluded). Letterbox padding makes such point masses; a derived activation
    /// maps them exactly instead of spreading them over their bin. Emptied for good, with
    /// `points_overflow` set, once more than [`POINTS_MAX`] distinct values are seen: a
    /// property of the values, not of their order.
    points: BTreeMap<u32, u64>,
    points_overflow: bool,
    count: u64,
    zeros: u64,
    nan: u64,
    inf: u64,
    policy: NonFinitePolicy,
}

/// Shortest run of equal values recorded as a point mass, and most distinct values kept.
pub const RUN_MIN: usize = 16;
pub const POINTS_MAX: usize = 4096;

/// Values that may be added between carries without overflowing a `lo` bin.
const CARRY_EVERY: u64 = 1 << 31;

impl PartialEq for TensorHistogram {
    /// Equal counts (both halves when signed) and counters, however the counts are split
    /// between `lo` and `hi`.
    fn eq(&self, o: &Self) -> bool {
        (
            self.k,
            self.max_bits,
            self.count,
            self.zeros,
            self.nan,
            self.inf,
            self.policy,
        ) == (o.k, o.max_bits, o.count, o.zeros, o.nan, o.inf, o.policy)
            && (self.signed(), self.pos_bits, self.neg_bits) == (o.signed(), o.pos_bits, o.neg_bits)
            && (self.points_overflow, &self.points) == (o.points_overflow, &o.points)
            && self.raw_counts() == o.raw_counts()
    }
}
impl Eq for TensorHistogram {}

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
fn scan(xs: &[f32]) -> Extent {
    let (mut m, mut z) = (0u32, 0u32);
    for &x in xs {
        let b = x.to_bits() & ABS_MASK;
        m = m.max(b);
        z += (b == 0) as u32;
    }
    Extent {
        max: m,
        pos: 0,
        neg: 0,
        zeros: z as u64,
        repeats: 0,
    }
}

/// [`scan`] that also keeps the largest x >= 0 and the largest |x| among x < 0 apart.
fn scan_signed(xs: &[f32]) -> Extent {
    let (mut p, mut n, mut z) = (0u32, 0u32, 0u32);
    for &x in xs {
        let b = x.to_bits() & ABS_MASK;
        let neg = 0u32.wrapping_sub((x < 0.0) as u32); // all ones for x < 0
        p = p.max(b & !neg);
        n = n.max(b & neg);
        z += (b == 0) as u32;
    }
    let repeats = xs
        .iter()
        .zip(xs.iter().skip(1))
        .map(|(a, b)| (a.to_bits() == b.to_bits()) as u32)
        .sum::<u32>();
    Extent {
        max: p.max(n),
        pos: p,
        neg: n,
        zeros: z as u64,
        repeats,
    }
}

/// Runs of at least [`RUN_MIN`] equal non-zero values in `xs`, as (bit pattern, length).
/// Such a run always holds some j, a multiple of RUN_MIN / 2, with xs[j] == xs[j + RUN_MIN / 2],
/// so only those pairs are compared; a match is then grown to the whole run.
fn runs(xs: &[f32], out: &mut Vec<(u32, u64)>) {
    const STEP: usize = RUN_MIN / 2;
    let same = |i: usize, b: u32| xs[i].to_bits() == b;
    // Everything before `done` belongs to runs already looked at.
    let (mut j, mut done) = (0, 0);
    while j + STEP < xs.len() {
        let b = xs[j].to_bits();
        if !same(j + STEP, b) {
            j += STEP;
            continue;
        }
        let mut start = j;
        while start > done && same(start - 1, b) {
            start -= 1;
        }
        let mut end = j + 1;
        while end < xs.len() && same(end, b) {
            end += 1;
        }
        if end - start >= RUN_MIN && b & ABS_MASK != 0 {
            out.push((b, (end - start) as u64));
        }
        done = end;
        j = end.next_multiple_of(STEP).max(j + STEP);
    }
}

/// What a scan found in a block: largest |x| bits (NaN/Inf included), the signed maxima
/// (signed scans only) and the zeros.
struct Extent {
    max: u32,
    pos: u32,
    neg: u32,
    zeros: u64,
    /// Signed scans only: neighbours with equal bits (a cheap test for runs worth finding).
    repeats: u32,
}

/// The inner loop: bin = |x| * scale truncated, one increment per value. `scale` is a power of
/// two with |x| * scale < FINE_BINS for every x (finite, below the current 2^k).
fn bin(lo: &mut [u32; FINE_BINS], xs: &[f32], scale: f32) {
    for &x in xs {
        let v = f32::from_bits(x.to_bits() & ABS_MASK) * scale;
        // SAFETY: 0 <= v < FINE_BINS (see above), so it fits a u32; the mask keeps the index
        // in bounds whatever happens, which also lets the compiler drop the bounds check.
        let i = unsafe { v.to_int_unchecked::<u32>() } as usize & (FINE_BINS - 1);
        lo[i] = lo[i].wrapping_add(1);
    }
}

/// [`bin`] into the half for x >= 0 or, past `FINE_BINS`, the half for x < 0.
fn bin_signed(lo: &mut [u32; 2 * FINE_BINS], xs: &[f32], scale: f32) {
    for &x in xs {
        let v = f32::from_bits(x.to_bits() & ABS_MASK) * scale;
        let half = ((x < 0.0) as usize) << LOG2_FINE;
        // SAFETY: as in `bin`; the masks keep the index below 2 * FINE_BINS.
        let i = (unsafe { v.to_int_unchecked::<u32>() } as usize & (FINE_BINS - 1)) | half;
        lo[i] = lo[i].wrapping_add(1);
    }
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
        Self::with_halves(policy, false)
    }

    /// A histogram that also keeps the sign: see the module docs.
    pub fn new_signed(policy: NonFinitePolicy) -> Self {
        Self::with_halves(policy, true)
    }

    /// Signed histograms carry a second half of bins.
    fn signed(&self) -> bool {
        self.lo.len() > FINE_BINS
    }

    fn with_halves(policy: NonFinitePolicy, signed: bool) -> Self {
        TensorHistogram {
            lo: vec![0u32; FINE_BINS << signed as usize].into_boxed_slice(),
            hi: BTreeMap::new(),
            since_carry: 0,
            k: K_MIN,
            max_bits: 0,
            pos_bits: 0,
            neg_bits: 0,
            points: BTreeMap::new(),
            points_overflow: false,
            count: 0,
            zeros: 0,
            nan: 0,
            inf: 0,
            policy,
        }
    }

    /// Bytes of heap memory held by an unsigned histogram (twice that when signed).
    pub const HEAP_BYTES: usize = FINE_BINS * std::mem::size_of::<u32>();

    /// Add a chunk of values. Under [`NonFinitePolicy::Error`] a chunk holding NaN or Inf is
    /// refused and the counts are returned: the bins and counters are as before the call (only
    /// the range may have widened; a run stops on this error anyway).
    pub fn add(&mut self, xs: &[f32]) -> std::result::Result<(), NonFinite> {
        let saved = (
            self.count,
            self.zeros,
            self.max_bits,
            self.pos_bits,
            self.neg_bits,
        );
        // Point masses found in this call, kept only if the call succeeds.
        let mut found = Vec::new();
        // Blocks small enough to stay in L1/L2 between the scan and the binning pass.
        for (n, block) in xs.chunks(BLOCK).enumerate() {
            let e = self.scan(block);
            if e.max < INF_BITS {
                self.add_finite(block, &e, &mut found);
                continue;
            }
            if self.policy == NonFinitePolicy::Error {
                self.unbin(&xs[..n * BLOCK]);
                (
                    self.count,
                    self.zeros,
                    self.max_bits,
                    self.pos_bits,
                    self.neg_bits,
                ) = saved;
                let nan = xs.iter().filter(|x| x.is_nan()).count() as u64;
                let inf = xs.iter().filter(|x| x.is_infinite()).count() as u64;
                return Err(NonFinite { nan, inf });
            }
            self.nan += block.iter().filter(|x| x.is_nan()).count() as u64;
            self.inf += block.iter().filter(|x| x.is_infinite()).count() as u64;
            let finite: Vec<f32> = block.iter().copied().filter(|x| x.is_finite()).collect();
            let e = self.scan(&finite);
            self.add_finite(&finite, &e, &mut found);
        }
        self.add_points(found);
        Ok(())
    }

    fn add_points(&mut self, found: impl IntoIterator<Item = (u32, u64)>) {
        if self.points_overflow {
            return;
        }
        for (b, n) in found {
            *self.points.entry(b).or_insert(0) += n;
        }
        if self.points.len() > POINTS_MAX {
            self.points.clear();
            self.points_overflow = true;
        }
    }

    fn scan(&self, xs: &[f32]) -> Extent {
        if self.signed() {
            scan_signed(xs)
        } else {
            scan(xs)
        }
    }

    /// Bin finite values whose extent `e` a scan found.
    fn add_finite(&mut self, xs: &[f32], e: &Extent, found: &mut Vec<(u32, u64)>) {
        // A run of RUN_MIN values has RUN_MIN - 1 equal neighbours.
        if self.signed() && !self.points_overflow && e.repeats as usize + 1 >= RUN_MIN {
            runs(xs, found);
        }
        self.grow_to(e.max);
        self.max_bits = self.max_bits.max(e.max);
        self.pos_bits = self.pos_bits.max(e.pos);
        self.neg_bits = self.neg_bits.max(e.neg);
        self.zeros += e.zeros;
        self.count += xs.len() as u64;
        for part in xs.chunks(CARRY_EVERY as usize) {
            if self.since_carry + part.len() as u64 > CARRY_EVERY {
                self.carry();
            }
            self.since_carry += part.len() as u64;
            let scale = pow2(LOG2_FINE - self.k);
            match (&mut self.lo[..]).try_into() {
                Ok(lo) => bin(lo, part, scale),
                Err(_) => bin_signed(
                    (&mut self.lo[..]).try_into().expect("2 * FINE_BINS bins"),
                    part,
                    scale,
                ),
            }
        }
    }

    /// Move every `lo` count of 2^31 or more into `hi`, so the next 2^31 adds cannot overflow.
    fn carry(&mut self) {
        for (i, l) in self.lo.iter_mut().enumerate() {
            if *l >= CARRY_EVERY as u32 {
                *l -= CARRY_EVERY as u32;
                *self.hi.entry(i as u32).or_insert(0) += 1;
            }
        }
        self.since_carry = 0;
    }

    /// Take back finite values added at the current range (for a refused chunk). Exact: a value
    /// binned at an older, smaller range was merged into the bin it has at the current one.
    fn unbin(&mut self, xs: &[f32]) {
        let scale = pow2(LOG2_FINE - self.k);
        let mut c = self.raw_counts();
        for &x in xs {
            let v = f32::from_bits(x.to_bits() & ABS_MASK) * scale;
            let half = if self.signed() && x < 0.0 {
                FINE_BINS
            } else {
                0
            };
            c[(v as usize).min(FINE_BINS - 1) + half] -= 1;
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
        let mut raw = self.raw_counts();
        for c in raw.chunks_mut(FINE_BINS) {
            if d >= LOG2_FINE as u32 {
                let total: u64 = c.iter().sum();
                c.fill(0);
                c[0] = total;
                continue;
            }
            // New bin j gathers old bins [j << d, (j + 1) << d): exact, see the module docs.
            let group = 1usize << d;
            for j in 0..FINE_BINS >> d {
                c[j] = c[j * group..(j + 1) * group].iter().sum();
            }
            c[FINE_BINS >> d..].fill(0);
        }
        self.store(&raw);
    }

    /// Merge another histogram (same policy) into this one; exact and commutative. The result
    /// is signed only if both are.
    pub fn merge(&mut self, other: &TensorHistogram) {
        if self.signed() && !other.signed() {
            self.drop_sign();
        }
        let mut o = std::borrow::Cow::Borrowed(other);
        if o.k < self.k {
            let mut c = other.clone();
            c.grow_k(self.k);
            o = std::borrow::Cow::Owned(c);
        } else if o.k > self.k {
            self.grow_k(o.k);
        }
        let mut c = self.raw_counts();
        let theirs = if self.signed() {
            o.raw_counts()
        } else {
            o.counts()
        };
        for (a, b) in c.iter_mut().zip(theirs) {
            *a += b;
        }
        self.store(&c);
        self.max_bits = self.max_bits.max(o.max_bits);
        if self.signed() {
            self.pos_bits = self.pos_bits.max(o.pos_bits);
            self.neg_bits = self.neg_bits.max(o.neg_bits);
            self.points_overflow |= o.points_overflow;
            if self.points_overflow {
                self.points.clear();
            } else {
                self.add_points(o.points.iter().map(|(&b, &n)| (b, n)));
            }
        }
        self.count += o.count;
        self.zeros += o.zeros;
        self.nan += o.nan;
        self.inf += o.inf;
    }

    /// Forget the sign: keep only the |x| histogram.
    fn drop_sign(&mut self) {
        let c = self.counts();
        self.lo = vec![0u32; FINE_BINS].into_boxed_slice();
        self.store(&c);
        (self.pos_bits, self.neg_bits) = (0, 0);
        self.points.clear();
        self.points_overflow = false;
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
        let mut c = self.raw_counts();
        if self.signed() {
            let (pos, neg) = c.split_at_mut(FINE_BINS);
            for (p, n) in pos.iter_mut().zip(&*neg) {
                *p += n;
            }
            c.truncate(FINE_BINS);
        }
        c
    }

    /// A signed histogram's fine bins for x >= 0 and for x < 0 (by |x|, as in `counts`).
    pub fn signed_counts(&self) -> Option<(Vec<u64>, Vec<u64>)> {
        self.signed().then(|| {
            let mut pos = self.raw_counts();
            let neg = pos.split_off(FINE_BINS);
            (pos, neg)
        })
    }

    /// Signed histograms: values that came in runs (see the field), `None` past [`POINTS_MAX`].
    pub fn points(&self) -> Option<impl Iterator<Item = (f32, u64)> + '_> {
        (!self.points_overflow).then(|| self.points.iter().map(|(&b, &n)| (f32::from_bits(b), n)))
    }

    /// Signed histograms: the largest x >= 0 (0 if none) and the largest |x| among x < 0.
    pub fn signed_max(&self) -> (f32, f32) {
        (f32::from_bits(self.pos_bits), f32::from_bits(self.neg_bits))
    }

    /// A histogram built from fine counts on the grid [`grid_width`](Self::grid_width) gives
    /// for `max_abs`, with `zeros` of its values exactly zero.
    pub fn from_counts(policy: NonFinitePolicy, counts: &[u64], max_abs: f32, zeros: u64) -> Self {
        let mut h = Self::new(policy);
        h.max_bits = max_abs.to_bits() & ABS_MASK;
        h.k = exponent_above(h.max_bits);
        h.count = counts.iter().sum();
        h.zeros = zeros;
        h.store(counts);
        h
    }

    /// Fine bin width of a histogram whose largest |x| is `max_abs`.
    pub fn grid_width(max_abs: f32) -> f64 {
        2f64.powi(exponent_above(max_abs.to_bits() & ABS_MASK) - LOG2_FINE)
    }

    /// Every bin, the x < 0 half of a signed histogram included.
    fn raw_counts(&self) -> Vec<u64> {
        let mut c: Vec<u64> = self.lo.iter().map(|&v| v as u64).collect();
        for (&i, &h) in &self.hi {
            c[i as usize] += h << 31;
        }
        c
    }

    /// Set all counts, as `raw_counts` lays them out (each `lo` below 2^31 afterwards).
    fn store(&mut self, c: &[u64]) {
        self.hi.clear();
        for (i, (&v, l)) in c.iter().zip(self.lo.iter_mut()).enumerate() {
            *l = (v % CARRY_EVERY) as u32;
            if v >= CARRY_EVERY {
                self.hi.insert(i as u32, v / CARRY_EVERY);
            }
        }
        self.since_carry = 0;
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
            return Err(Error::Internal(format!(
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
            return Err(Error::Internal(
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
    fn counts_past_u32_are_carried_before_a_bin_can_overflow() {
        // Stand in for 2^32 adds: a bin already near the u32 limit, with the carry due.
        let mut h = TensorHistogram::new(NonFinitePolicy::Error);
        h.add(&[1.0]).unwrap(); // range [0, 2): 1.0 lands in the middle bin
        let bin = FINE_BINS / 2;
        h.lo[bin] = u32::MAX - 1;
        h.since_carry = CARRY_EVERY;
        h.add(&[1.0; 10]).unwrap();
        let expected = (u32::MAX - 1) as u64 + 10;
        assert_eq!(h.counts()[bin], expected);
        assert!(h.lo[bin] < CARRY_EVERY as u32 + 10);
        // Equality looks at counts, not at how they are split between the words.
        let mut g = h.clone();
        g.store(&g.counts());
        assert_eq!(g, h);
        // Growing the range keeps the carried counts.
        h.add(&[3.0]).unwrap();
        assert_eq!(h.counts()[bin / 2], expected);
    }

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

    #[test]
    fn signed_histograms_keep_runs_as_points_whatever_the_order() {
        let mut xs: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.01 - 4.0)
            .collect();
        xs.splice(100..100, std::iter::repeat_n(-1.25f32, RUN_MIN));
        xs.splice(2000..2000, std::iter::repeat_n(2.5f32, 3 * RUN_MIN));
        xs.splice(3000..3000, std::iter::repeat_n(7.0f32, RUN_MIN - 1)); // too short
        let one = |parts: &[&[f32]]| {
            let mut h = TensorHistogram::new_signed(NonFinitePolicy::Error);
            for p in parts {
                h.add(p).unwrap();
            }
            h
        };
        let whole = one(&[&xs]);
        let pts: Vec<(f32, u64)> = whole.points().unwrap().collect();
        assert_eq!(pts, [(2.5, 3 * RUN_MIN as u64), (-1.25, RUN_MIN as u64)]);
        // The |x| histogram is the unsigned one; the signed maxima are exact.
        let mut plain = TensorHistogram::new(NonFinitePolicy::Error);
        plain.add(&xs).unwrap();
        assert_eq!(whole.counts(), plain.counts());
        assert_eq!(whole.signed_max(), (7.0, 4.0));
        // Image order and merging do not change anything (runs do not span images).
        let (a, b) = xs.split_at(1500);
        assert_eq!(one(&[b, a]), whole);
        let mut m = one(&[b]);
        m.merge(&one(&[a]));
        assert_eq!(m, whole);
        // Merging with an unsigned histogram forgets the sign.
        m.merge(&TensorHistogram::new(NonFinitePolicy::Error));
        assert!(m.signed_counts().is_none() && m.points().is_some_and(|mut p| p.next().is_none()));
        // Past POINTS_MAX distinct run values, none are kept, in any order.
        let many: Vec<f32> =
            (0..POINTS_MAX + 2) // one run is split between p and q
                .flat_map(|i| std::iter::repeat_n(1.0 + i as f32 * 1e-3, RUN_MIN))
                .collect();
        let (p, q) = many.split_at(many.len() / 2);
        assert!(one(&[p, q]).points().is_none());
        assert_eq!(one(&[q, p]), one(&[p, q]));
    }

    #[test]
    fn runs_finds_every_long_run_and_nothing_else() {
        // Runs of 1..40 equal values, values from a small set (neighbouring runs may merge).
        let mut st = 12345u32;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 17;
            st ^= st << 5;
            st
        };
        let mut xs = Vec::new();
        while xs.len() < 20_000 {
            let (len, v) = (1 + next() as usize % 40, (next() % 5) as f32 - 1.0);
            xs.extend(std::iter::repeat_n(v, len));
        }
        for block in [&xs[..], &xs[..RUN_MIN], &xs[..RUN_MIN + 3], &xs[7..5000]] {
            let mut naive = Vec::new();
            for run in block.chunk_by(|a, b| a.to_bits() == b.to_bits()) {
                if run.len() >= RUN_MIN && run[0] != 0.0 {
                    naive.push((run[0].to_bits(), run.len() as u64));
                }
            }
            let mut fast = Vec::new();
            runs(block, &mut fast);
            assert_eq!(fast, naive);
        }
    }

    #[test]
    fn a_signed_histogram_refuses_nan_leaving_both_halves_and_points_as_they_were() {
        let mut h = TensorHistogram::new_signed(NonFinitePolicy::Error);
        let mut first: Vec<f32> = (0..3000).map(|i| (i as f32 - 1500.0) * 1e-3).collect();
        first.extend(std::iter::repeat_n(-0.75f32, 2 * RUN_MIN));
        h.add(&first).unwrap();
        let before = h.clone();
        // A bigger chunk (several blocks) with a run, a wider range and a NaN in its last block.
        let mut bad: Vec<f32> = std::iter::repeat_n(-0.5f32, 3 * RUN_MIN).collect();
        bad.extend((0..40_000).map(|i| (i as f32 - 20_000.0) * 1e-5));
        bad.push(f32::NAN);
        assert_eq!(h.add(&bad), Err(NonFinite { nan: 1, inf: 0 }));
        assert_eq!(h.signed_counts(), before.signed_counts());
        assert_eq!(h.signed_max(), before.signed_max());
        assert!(h.points().unwrap().eq(before.points().unwrap()));
        assert_eq!((h.count(), h.zeros()), (before.count(), before.zeros()));
        let e = h
            .add_named(&bad, "1177", Path::new("img/003.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1177") && e.contains("img/003.jpg") && e.contains("drop_nonfinite"),
            "{e}"
        );
    }
}
