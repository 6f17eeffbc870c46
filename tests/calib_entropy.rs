//! Entropy calibration against an independent numpy transcription of the reference method
//! (tests/py/entropy_ref.py), on synthetic distributions generated here deterministically, plus
//! the two pathologies the reference has and we fix, and order/batch independence of the cache.

use std::path::{Path, PathBuf};
use trtforge::calib::cache::CalibrationCache;
use trtforge::calib::histogram::{HistogramSet, NonFinitePolicy, TensorHistogram};
use trtforge::calib::range::{self, RangeParams};
use trtforge::recipe::{Algorithm, TrtVersion};

/// SplitMix64: tiny, deterministic, good enough for test samples.
struct Rng(u64);
impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const N: usize = 1_000_000;

fn gen(name: &str) -> Vec<f32> {
    let mut r = Rng(name
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64)));
    let mut v = Vec::with_capacity(N);
    for i in 0..N {
        let x = match name {
            "gaussian" => r.normal(),
            "laplace" => {
                let u = r.uniform() - 0.5;
                -u.signum() * (1.0 - 2.0 * u.abs()).ln()
            }
            "relu_gaussian" => r.normal().max(0.0),
            // Gaussian bulk plus 0.01% outliers 30-60 sigma out.
            "heavy_tail_outliers" => {
                if i % 10_000 == 17 {
                    30.0 + 30.0 * r.uniform()
                } else {
                    r.normal()
                }
            }
            // Student-t with 3 degrees of freedom.
            "student_t3" => {
                let z = r.normal();
                let chi2: f64 = (0..3).map(|_| r.normal().powi(2)).sum();
                z / (chi2 / 3.0).sqrt()
            }
            "bimodal" => {
                if r.uniform() < 0.3 {
                    -3.0 + r.normal()
                } else {
                    4.0 + 0.5 * r.normal()
                }
            }
            "sigmoid" => 1.0 / (1.0 + (-2.0 * r.normal()).exp()),
            // 90% exact zeros (post-ReLU sparsity) and a gaussian rest.
            "sparse" => {
                if r.uniform() < 0.9 {
                    0.0
                } else {
                    r.normal()
                }
            }
            // Pathology (i): no mass near zero.
            "normal_10_1" => 10.0 + r.normal(),
            // Pathology (ii): letterbox padding, 114 on 40% of "pixels" in a smooth 0..255 rest.
            "letterbox_114" => {
                if r.uniform() < 0.4 {
                    114.0
                } else {
                    255.0 * (r.uniform() + r.uniform() + r.uniform()) / 3.0
                }
            }
            _ => unreachable!("{name}"),
        };
        v.push(x as f32);
    }
    v
}

const ORDINARY: [&str; 8] = [
    "gaussian",
    "laplace",
    "relu_gaussian",
    "heavy_tail_outliers",
    "student_t3",
    "bimodal",
    "sigmoid",
    "sparse",
];

fn python() -> Option<PathBuf> {
    let p = trtforge::env::var("TRTFORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    if p.exists() {
        Some(p)
    } else if trtforge::env::in_ci() {
        panic!(
            "Python not found at {} (CI=true): run `source scripts/env.sh`",
            p.display()
        )
    } else {
        eprintln!(
            "SKIP: no Python at {}; `source scripts/env.sh` to run the reference comparison",
            p.display()
        );
        None
    }
}

struct Ref {
    amax: f64,
    bin_width: f64,
    index: usize,
    /// The reference's KL per candidate (128 + j), None when not finite.
    kl: Vec<Option<f64>>,
}

/// Run the numpy reference on each sample set (written as raw little-endian f32).
fn reference(py: &Path, sets: &[(&str, &[f32])]) -> Vec<Ref> {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![];
    for (name, xs) in sets {
        let f = dir.path().join(format!("{name}.f32"));
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/entropy_ref.py");
    let out = std::process::Command::new(py)
        .arg(&script)
        .args(&files)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "entropy_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Ref {
                amax: v["amax"].as_f64().unwrap(),
                bin_width: v["bin_width"].as_f64().unwrap(),
                index: v["index"].as_u64().unwrap() as usize,
                kl: v["kl"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_f64())
                    .collect(),
            }
        })
        .collect()
}

fn hist(xs: &[f32]) -> TensorHistogram {
    let mut h = TensorHistogram::new(NonFinitePolicy::Error);
    for c in xs.chunks(65_536) {
        h.add(c).unwrap();
    }
    h
}

#[test]
fn entropy_within_one_bin_of_reference() {
    let Some(py) = python() else { return };
    let data: Vec<(&str, Vec<f32>)> = ORDINARY.iter().map(|n| (*n, gen(n))).collect();
    let sets: Vec<(&str, &[f32])> = data.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let refs = reference(&py, &sets);
    let mut worst = 0f64;
    for ((name, xs), r) in sets.iter().zip(&refs) {
        let e = range::entropy(&hist(xs), 2048);
        let delta = (e.amax as f64 - r.amax) / r.bin_width;
        // How much worse our pick is by the reference's own KL (0 when we pick its minimum).
        let kl_at = |i: usize| r.kl[i - 128].unwrap_or(f64::INFINITY);
        let kl_gap = kl_at(e.index) / kl_at(r.index) - 1.0;
        eprintln!(
            "{name:>20}: ours {:.6} (bin {}), reference {:.6} (bin {}), delta {delta:+.3} bins, reference KL {:+.2}% worse",
            e.amax, e.index, r.amax, r.index, kl_gap * 100.0
        );
        assert!(
            e.spikes.is_empty(),
            "{name}: unexpected spikes {:?}",
            e.spikes
        );
        worst = worst.max(delta.abs());
        // One bin, plus f32 rounding of the threshold.
        assert!(
            delta.abs() <= 1.0 + 1e-4,
            "{name}: {delta} bins from the reference"
        );
    }
    eprintln!("worst delta: {worst:.3} bins");
}

#[test]
fn pathology_empty_low_bins() {
    let xs = gen("normal_10_1");
    let min = xs.iter().fold(f32::INFINITY, |a, &b| a.min(b.abs()));
    let e = range::entropy(&hist(&xs), 2048);
    let h = hist(&xs);
    let clip = h.share_above(e.amax as f64);
    eprintln!("N(10,1): min {min}, ours {} (clips {:.2e})", e.amax, clip);
    // Never below the bulk; ordinary KL behaviour at the top.
    assert!(e.amax > 12.0, "{}", e.amax);
    assert!(clip < 1e-3, "{clip}");
    if let Some(py) = python() {
        let r = &reference(&py, &[("normal_10_1", &xs)])[0];
        eprintln!("N(10,1): reference {}", r.amax);
        // The reference's NaN pick: below every sample.
        assert!(r.amax < min as f64, "reference {} min {min}", r.amax);
    }
}

#[test]
fn pathology_letterbox_spike() {
    let xs = gen("letterbox_114");
    let h = hist(&xs);
    let e = range::entropy(&h, 2048);
    let clip = h.share_above(e.amax as f64);
    eprintln!(
        "letterbox: ours {} (clips {:.2e}), spikes {:?}",
        e.amax, clip, e.spikes
    );
    assert_eq!(e.spikes.len(), 1);
    assert!((e.spikes[0] - 114.0).abs() < 0.2, "{:?}", e.spikes);
    assert!(e.amax > 200.0, "{}", e.amax);
    assert!(clip < 1e-3, "{clip}");
    if let Some(py) = python() {
        let r = &reference(&py, &[("letterbox_114", &xs)])[0];
        let rclip = h.share_above(r.amax);
        eprintln!("letterbox: reference {} (clips {:.3})", r.amax, rclip);
        assert!(r.amax < 120.0 && rclip > 0.2, "{} {rclip}", r.amax);
    }
}

/// Deterministic permutation (Fisher-Yates with the test RNG).
fn shuffled(xs: &[f32], seed: u64) -> Vec<f32> {
    let mut v = xs.to_vec();
    let mut r = Rng(seed);
    for i in (1..v.len()).rev() {
        let j = (r.u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn cache_bytes(tensors: &[(&str, Vec<f32>)], chunk: usize, algorithm: Algorithm) -> String {
    let names: Vec<String> = tensors.iter().map(|(n, _)| n.to_string()).collect();
    let mut set = HistogramSet::new(names, NonFinitePolicy::Error);
    // Feed "images" of `chunk` values per tensor, all tensors at once, as a run would.
    let n = tensors[0].1.len();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let slices: Vec<&[f32]> = tensors.iter().map(|(_, v)| &v[start..end]).collect();
        set.add_all(&slices, Path::new("img")).unwrap();
        start = end;
    }
    let params = RangeParams {
        algorithm,
        ..RangeParams::default()
    };
    let ranges = range::compute_all(&set, &params, &["gaussian".to_string()]);
    let mut cache = CalibrationCache::new(TrtVersion::parse("10.3").unwrap(), algorithm);
    for (name, r) in &ranges {
        cache.push_amax(name.clone(), r.amax);
    }
    cache.to_text().unwrap()
}

#[test]
fn cache_is_identical_whatever_order_and_batching() {
    let tensors: Vec<(&str, Vec<f32>)> = ["gaussian", "student_t3", "sparse", "letterbox_114"]
        .iter()
        .map(|n| (*n, gen(n)[..200_000].to_vec()))
        .collect();
    for algorithm in [
        Algorithm::Entropy,
        Algorithm::Minmax,
        Algorithm::Percentile,
        Algorithm::Mse,
    ] {
        let base = cache_bytes(&tensors, 200_000, algorithm);
        for (seed, chunk) in [(1u64, 1usize << 16), (2, 777), (3, 4096), (4, 13)] {
            let t: Vec<(&str, Vec<f32>)> = tensors
                .iter()
                .map(|(n, v)| (*n, shuffled(v, seed)))
                .collect();
            assert_eq!(
                base,
                cache_bytes(&t, chunk, algorithm),
                "{algorithm:?}, seed {seed}, chunk {chunk}"
            );
        }
    }
}

#[test]
fn other_algorithms_are_ordered() {
    // percentile and MSE never exceed minmax; a heavy tail gets clipped by both.
    let xs = gen("heavy_tail_outliers");
    let h = hist(&xs);
    let p = RangeParams::default();
    let mm = range::compute(&h, Algorithm::Minmax, &p);
    let pc = range::compute(&h, Algorithm::Percentile, &p);
    let ms = range::compute(&h, Algorithm::Mse, &p);
    eprintln!(
        "outliers: minmax {}, p99.99 {}, mse {}",
        mm.amax, pc.amax, ms.amax
    );
    assert_eq!(mm.amax, xs.iter().fold(0f32, |a, &b| a.max(b.abs())));
    assert!(pc.amax < mm.amax && ms.amax < mm.amax);
    // 99.99th percentile of |N(0,1)| is about 3.89 (the 0.01% outliers sit right at it).
    assert!(pc.amax > 3.5 && pc.amax < 30.1, "{}", pc.amax);
    assert!(ms.amax > 3.0, "{}", ms.amax);
    assert!((pc.clip_share - 1e-4).abs() < 2e-5, "{}", pc.clip_share);
}
