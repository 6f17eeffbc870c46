"""Independent numpy transcription of the reference entropy (KL) calibration method, as
published in NVIDIA's pytorch-quantization (`_compute_amax_entropy`), written from its
description for trtforge's tests.

Usage: entropy_ref.py FILE.f32 [FILE.f32 ...]
Each file holds raw little-endian float32 samples. Prints one JSON object per file:
{"file", "amax", "max", "bin_width", "index", "kl"}, kl[j] being the
divergence of candidate 128 + j (null when not finite).

Method: 2048-bin histogram of |x| over [0, max|x|]; bin 0 takes bin 1's count; for every
candidate i in 128..=2048: P = the first i bins with all counts beyond folded into bin i-1;
Q = the first i bins (unfolded) merged into 128 levels, each level's count spread evenly over
its non-empty bins (empty bins stay 0); KL(P || Q) with P and Q normalised, 0*log(0/q) = 0,
p*log(p/0) = inf, and an all-empty Q giving NaN (0/0), exactly as scipy.stats.entropy would;
the last candidate reaching the minimum wins, where, as numpy's argmin does, a NaN counts as
the minimum. amax = the right edge of bin i-1, i.e. i * max / 2048.
"""
import json
import sys

import numpy as np

NUM_BINS = 2048
START = 128
LEVELS = 128


def kl(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / p.sum()
        q = q / q.sum()
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
        # p > 0 with q == 0 gives inf; q NaN (all-empty Q) gives NaN.
    return terms.sum()


def entropy_amax(x):
    a = np.abs(x.astype(np.float64))
    mx = a.max()
    hist, edges = np.histogram(a, bins=NUM_BINS, range=(0.0, mx))
    bins = hist.astype(np.float64)
    bins[0] = bins[1]
    divs = []
    for i in range(START, NUM_BINS + 1):
        level = (np.arange(i) * LEVELS) // i
        nz = bins[:i] != 0
        sums = np.bincount(level[nz], weights=bins[:i][nz], minlength=LEVELS)
        cnt = np.bincount(level[nz], minlength=LEVELS)
        with np.errstate(divide="ignore", invalid="ignore"):
            avg = np.where(cnt > 0, sums / np.maximum(cnt, 1), 0.0)
        q = np.where(nz, avg[level], 0.0)
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        divs.append(kl(p, q))
    divs = np.array(divs)
    last = len(divs) - 1 - int(np.argmin(divs[::-1]))
    i = last + START
    return float(edges[i]), float(mx), i, divs


def main():
    for f in sys.argv[1:]:
        x = np.fromfile(f, dtype="<f4")
        amax, mx, i, divs = entropy_amax(x)
        kl = [None if not np.isfinite(d) else float(d) for d in divs]
        print(json.dumps({"file": f, "amax": amax, "max": mx, "bin_width": mx / NUM_BINS,
                          "index": i, "kl": kl}))


if __name__ == "__main__":
    main()
