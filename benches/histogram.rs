//! Prints ns/element of `TensorHistogram::add` on 10M values (run: `cargo bench --bench histogram`).
//! Also times the range algorithms on the resulting histogram. Figures only; nothing asserted.

use std::time::Instant;
use trtforge::calib::histogram::{NonFinitePolicy, TensorHistogram};
use trtforge::calib::range;

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), to see through a shared,
/// oversubscribed machine where wall time includes waiting for a core.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    const N: usize = 10_000_000;
    // Deterministic activation-like values: a SiLU-ish mix with a tail, no RNG crate needed.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let xs: Vec<f32> = (0..N)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let x = (u - 0.3) * 8.0;
            x / (1.0 + (-x).exp())
        })
        .collect();
    // Letterbox padding makes long runs of one value (the same bin over and over).
    let padded: Vec<f32> = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| if (i / 40_000) % 4 == 0 { 0.4375 } else { x })
        .collect();
    for (label, data, chunk, signed) in [
        ("SiLU-like, one 10M chunk", &xs, N, false),
        ("SiLU-like, chunks of 100k", &xs, 100_000, false),
        ("SiLU-like, chunks of 4k", &xs, 4096, false),
        ("25% constant runs, one chunk", &padded, N, false),
        ("signed, chunks of 100k", &xs, 100_000, true),
        ("signed, 25% constant runs", &padded, 100_000, true),
    ] {
        let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            let mut h = if signed {
                TensorHistogram::new_signed(NonFinitePolicy::Error)
            } else {
                TensorHistogram::new(NonFinitePolicy::Error)
            };
            let c0 = cpu_ns();
            let t = Instant::now();
            for c in data.chunks(chunk) {
                h.add(c).unwrap();
            }
            std::hint::black_box(&h);
            best = best.min(t.elapsed().as_secs_f64());
            if let (Some(a), Some(b)) = (c0, cpu_ns()) {
                best_cpu = best_cpu.min((b - a) as f64 * 1e-9);
            }
        }
        println!(
            "add ({label:>28}): {:.3} ns/element wall, {:.3} ns/element on-CPU (best of 5, {N} values, one thread)",
            best * 1e9 / N as f64,
            best_cpu * 1e9 / N as f64
        );
    }
    let mut h = TensorHistogram::new(NonFinitePolicy::Error);
    h.add(&xs).unwrap();
    let t = Instant::now();
    let e = range::entropy(&h, 2048);
    println!(
        "entropy: {:.1} ms per tensor (amax {})",
        t.elapsed().as_secs_f64() * 1e3,
        e.amax
    );
    let t = Instant::now();
    let m = range::mse(&h, 2048);
    println!(
        "mse: {:.3} ms per tensor (amax {m})",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let p = range::percentile(&h, 99.99);
    println!(
        "percentile: {:.3} ms per tensor (amax {p})",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "memory per tensor histogram: {} KiB",
        TensorHistogram::HEAP_BYTES / 1024
    );
}
