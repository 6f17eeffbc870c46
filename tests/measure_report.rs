//! Report writing and `compare`, on a report measured from a small CPU workload with power
//! read from an Orin NX sysfs fixture.

mod common;
mod measure_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use trtforge::measure::context::Roots;
use trtforge::measure::power::PowerChoice;
use trtforge::measure::session::{self, PowerPlan};
use trtforge::measure::{BenchConfig, Executor, ExecutorInfo, Stop, Timing, Warmup};
use trtforge::report::compare::{compare, Thresholds};
use trtforge::report::BenchReport;

/// A real (small) CPU workload: sums a vector.
struct SumWork(Vec<f64>);

impl Executor for SumWork {
    fn info(&self) -> ExecutorInfo {
        ExecutorInfo {
            backend: "cpu-sum".into(),
            artifact: PathBuf::from("sum-work"),
            artifact_sha256: "00".repeat(32),
            input_name: "x".into(),
            input_shape: vec![1, self.0.len()],
            notes: vec![],
        }
    }
    fn run_once(&mut self) -> trtforge::Result<Timing> {
        std::hint::black_box(self.0.iter().sum::<f64>());
        Ok(Timing::HOST_ONLY)
    }
}

fn make_report(dir: &Path) -> BenchReport {
    let sys = dir.join("sys");
    measure_support::orin_nx(&sys, 2);
    let mut ex = SumWork((0..20_000).map(|i| i as f64).collect());
    let cfg = BenchConfig {
        warmup: Warmup::Iterations(5),
        stop: Stop::Duration(Duration::from_millis(150)),
        batch: 1,
        percentiles: vec![50.0, 90.0, 99.0],
    };
    let plan = PowerPlan {
        choice: PowerChoice::Ina3221,
        sysfs_root: sys.clone(),
        period: Duration::from_millis(5),
        idle: Duration::from_millis(50),
    };
    let m = session::measure(&mut ex, &cfg, &plan, &Roots::with_sysfs(&sys)).unwrap();
    BenchReport::new(ex.info(), &cfg, &plan, m).unwrap()
}

fn trtforge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_files_and_compare() {
    let t = tempfile::tempdir().unwrap();
    let r = make_report(t.path());
    assert!(r.latency.count > 10);
    let p = r.power.as_ref().unwrap();
    // Constant fixture power: gross = 5.2116 W x window / N, net = 0.
    assert!((p.energy.avg_w - 5.2116).abs() < 1e-9);
    assert!(p.energy.j_per_inference_net.unwrap().abs() < 1e-9);
    let files = r.write_all(&t.path().join("old")).unwrap();
    assert_eq!(files.svgs.len(), 3);
    for s in &files.svgs {
        let text = std::fs::read_to_string(s).unwrap();
        roxmltree::Document::parse(&text).unwrap();
    }
    let loaded = BenchReport::load(&files.json).unwrap();
    // serde_json's default float parsing may differ in the last digit: compare exact fields.
    assert_eq!(loaded.executor, r.executor);
    assert_eq!(loaded.iterations.len(), r.iterations.len());
    assert_eq!(loaded.latency.count, r.latency.count);
    assert!((loaded.latency.mean_ms - r.latency.mean_ms).abs() <= 1e-12 * r.latency.mean_ms);

    // Same run: no regression.
    let c = compare(&loaded, &loaded, Thresholds::default(), false).unwrap();
    assert!(!c.has_regression());
    let old = files.json.to_str().unwrap().to_string();
    let out = trtforge(&["compare", &old, &old]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 20 % slower and 10 % more energy: regression, exit 1.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    for k in ["mean_ms", "median_ms"] {
        v["latency"][k] = (v["latency"][k].as_f64().unwrap() * 1.2).into();
    }
    for p in v["latency"]["percentiles"].as_array_mut().unwrap() {
        p["value_ms"] = (p["value_ms"].as_f64().unwrap() * 1.2).into();
    }
    let g = v["power"]["energy"]["j_per_inference_gross"]
        .as_f64()
        .unwrap();
    v["power"]["energy"]["j_per_inference_gross"] = (g * 1.1).into();
    let slower = t.path().join("slower.json");
    std::fs::write(&slower, serde_json::to_string(&v).unwrap()).unwrap();
    let out = trtforge(&["compare", &old, slower.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("REGRESSION") && stdout.contains("latency median"),
        "{stdout}"
    );
    assert!(stdout.contains("J/inference gross"), "{stdout}");
    // A looser threshold lets the latency pass; energy (10 %) still fails at 5 %.
    let out = trtforge(&[
        "compare",
        &old,
        slower.to_str().unwrap(),
        "--max-latency-regression",
        "25%",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["regressions"].as_array().unwrap().len(), 1);

    // Another device or power mode: refused (exit 2) unless --force.
    v["context"]["device_model"] = "NVIDIA Jetson AGX Orin Developer Kit".into();
    let other = t.path().join("other.json");
    std::fs::write(&other, serde_json::to_string(&v).unwrap()).unwrap();
    let out = trtforge(&["compare", &old, other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = trtforge(&["compare", &old, other.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("runs differ"));

    // Wrong schema version: refused with the fix.
    v["schema_version"] = 99.into();
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&v).unwrap()).unwrap();
    let e = BenchReport::load(&bad).unwrap_err().to_string();
    assert!(e.contains("schema_version 99"), "{e}");
}

#[test]
fn trt_backend_without_tensorrt_exits_3() {
    let out = trtforge(&["bench", "model.engine", "--iterations", "3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("built without TensorRT"));
}
