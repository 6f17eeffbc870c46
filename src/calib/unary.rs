//! Cheap element-wise activations recomputed while histogramming their input, so ONNX Runtime
//! need not hand them back (asking for them as outputs blocks its fusions, such as
//! x * sigmoid(x) into one kernel, and roughly doubles YOLOX-nano's inference time).
//!
//! The kernels are written to auto-vectorise (no branches, no libm calls) on baseline x86-64.

/// An activation computed from its input tensor's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Sigmoid,
    /// `Mul(x, Sigmoid(x))`: SiLU / Swish.
    Silu,
    Relu,
    LeakyRelu(f32),
}

impl Unary {
    fn needs_sigmoid(self) -> bool {
        matches!(self, Unary::Sigmoid | Unary::Silu)
    }
}

/// Values per kernel call; the buffers live on the stack and in L1.
pub const BLOCK: usize = 4096;

/// `out[i] = 1 / (1 + exp(-x[i]))`, relative error below 1e-6 for x >= -87 (below, where the
/// result is under 2e-38, the input is clamped).
pub fn sigmoid(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = 1.0 / (1.0 + exp_clamped(-x));
    }
}

/// e^t for t clamped to [-87, 87] (so 2^n stays a normal float): range reduction to
/// t = n ln2 + r, |r| <= ln2 / 2, then a degree-6 polynomial (Cephes' expf coefficients).
#[inline(always)]
fn exp_clamped(t: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| <= 127.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let t = t.clamp(-87.0, 87.0);
    let n = (t * LOG2E + ROUND) - ROUND;
    let r = t - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the bits: n + 127 + 2^23 holds the integer n + 127 in its low mantissa bits
    // (integer-only and vectorisable, unlike a saturating float-to-int cast).
    let biased = (n + (127.0 + 8_388_608.0)).to_bits();
    f32::from_bits(biased << 23) * e
}

/// Compute `op` of `xs` into `out`; `sig` must hold the sigmoid of `xs` when `op` needs it.
pub fn apply(op: Unary, xs: &[f32], sig: &[f32], out: &mut [f32]) {
    match op {
        Unary::Sigmoid => out.copy_from_slice(sig),
        Unary::Silu => {
            for ((o, &x), &s) in out.iter_mut().zip(xs).zip(sig) {
                *o = x * s;
            }
        }
        Unary::Relu => {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = x.max(0.0);
            }
        }
        Unary::LeakyRelu(alpha) => {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = if x >= 0.0 { x } else { alpha * x };
            }
        }
    }
}

/// Whether any of `ops` needs the sigmoid of the input.
pub fn any_needs_sigmoid(ops: impl IntoIterator<Item = Unary>) -> bool {
    ops.into_iter().any(Unary::needs_sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_accurate_over_the_whole_range() {
        let xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-4).collect();
        let mut out = vec![0f32; xs.len()];
        sigmoid(&xs, &mut out);
        for (&x, &s) in xs.iter().zip(&out) {
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            // Below -87 the input is clamped: the result stays a tiny non-negative number.
            if x < -87.0 {
                assert!((0.0..2e-38).contains(&s), "sigmoid({x}) = {s}");
                continue;
            }
            let rel = ((s as f64 - exact) / exact).abs();
            assert!(rel < 1e-6, "sigmoid({x}) = {s}, exact {exact}, rel {rel}");
        }
        let mut far = [0f32; 4];
        sigmoid(&[-1e30, -100.0, 100.0, 1e30], &mut far);
        assert!(far[0] >= 0.0 && far[0] < 1e-37 && far[1] < 1e-37);
        assert_eq!(&far[2..], &[1.0, 1.0]);
    }

    #[test]
    fn relu_family_and_silu_match_their_definitions() {
        let xs = [-2.0f32, -0.5, 0.0, 0.25, 3.0];
        let mut sig = [0f32; 5];
        sigmoid(&xs, &mut sig);
        let mut out = [0f32; 5];
        apply(Unary::Relu, &xs, &sig, &mut out);
        assert_eq!(out, [0.0, 0.0, 0.0, 0.25, 3.0]);
        apply(Unary::LeakyRelu(0.1), &xs, &sig, &mut out);
        assert_eq!(out, [-0.2, -0.05, 0.0, 0.25, 3.0]);
        apply(Unary::Silu, &xs, &sig, &mut out);
        for (&x, &o) in xs.iter().zip(&out) {
            let exact = x as f64 / (1.0 + (-(x as f64)).exp());
            assert!((o as f64 - exact).abs() < 1e-6, "silu({x}) = {o}");
        }
    }
}
