//! ONNX Runtime CPU bench of YOLOX-nano through the CLI, producing the full report. Power is
//! read from an Orin NX sysfs fixture (constant values), so the power section, the energy
//! figures and the power plot are exercised end to end on this GPU-less machine.

mod common;
mod measure_support;

use std::process::Command;

#[test]
fn yolox_nano_ort_cpu_full_report() {
    let Some(model) = common::shared("models/yolox_nano/yolox_nano.onnx") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let sys = t.path().join("sys");
    measure_support::orin_nx(&sys, 3);
    let out_dir = t.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .arg("bench")
        .arg(&model)
        .args([
            "--iterations",
            "6",
            "--warmup",
            "1",
            "--idle",
            "300ms",
            "--period",
            "10ms",
        ])
        .args(["--power", "ina3221", "--json", "--sysfs-root"])
        .arg(&sys)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let v = common::json_output(&out);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("bench.json")).unwrap())
            .unwrap();
    assert_eq!(v, file);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["executor"]["backend"], "ort-cpu");
    assert_eq!(v["executor"]["input_name"], "images");
    assert_eq!(
        v["executor"]["input_shape"],
        serde_json::json!([1, 3, 416, 416])
    );
    assert_eq!(v["executor"]["artifact_sha256"].as_str().unwrap().len(), 64);
    let lat = &v["latency"];
    assert_eq!(lat["count"], 6);
    assert_eq!(v["iterations"].as_array().unwrap().len(), 6);
    let (min, mean, max) = (
        lat["min_ms"].as_f64().unwrap(),
        lat["mean_ms"].as_f64().unwrap(),
        lat["max_ms"].as_f64().unwrap(),
    );
    assert!(min > 0.0 && min <= mean && mean <= max);
    assert_eq!(lat["percentiles"].as_array().unwrap().len(), 4);
    assert!(v["throughput_ips"].as_f64().unwrap() > 0.0);
    assert!(v["first_run_ms"].as_f64().unwrap() > 0.0);
    let e = &v["power"]["energy"];
    assert_eq!(e["source"], "ina3221");
    assert_eq!(e["rails_summed"], serde_json::json!(["VDD_IN"]));
    assert!((e["avg_w"].as_f64().unwrap() - 5.2116).abs() < 1e-9);
    assert!((e["idle_w"].as_f64().unwrap() - 5.2116).abs() < 1e-9);
    let window = v["window_end_s"].as_f64().unwrap() - v["window_start_s"].as_f64().unwrap();
    let gross = e["j_per_inference_gross"].as_f64().unwrap();
    assert!((gross - 5.2116 * window / 6.0).abs() / gross < 1e-9);

    let md = std::fs::read_to_string(out_dir.join("bench.md")).unwrap();
    for needle in [
        "## Latency (ms)",
        "p99",
        "## Power and energy",
        "VDD_IN",
        "latency_histogram.svg",
    ] {
        assert!(md.contains(needle), "bench.md lacks {needle}");
    }
    let svg = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();
    let texts = |s: &str| -> Vec<String> {
        let d = roxmltree::Document::parse(s).unwrap();
        assert_eq!(d.root_element().tag_name().name(), "svg");
        d.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    };
    let count = |s: &str, tag: &str| {
        roxmltree::Document::parse(s)
            .unwrap()
            .descendants()
            .filter(|n| n.has_tag_name(tag))
            .count()
    };
    let h = svg("latency_histogram.svg");
    let ht = texts(&h);
    assert!(ht.iter().any(|t| t.starts_with("p99 = ")), "{ht:?}");
    assert!(ht.iter().any(|t| t.starts_with("median = ")));
    assert!(count(&h, "rect") > 3);
    let tl = svg("latency_timeline.svg");
    assert!(texts(&tl).iter().any(|t| t == "Latency per iteration"));
    assert!(count(&tl, "polyline") > 0);
    let pw = svg("power_trace.svg");
    let pt = texts(&pw);
    assert!(pt.iter().any(|t| t == "measured window"), "{pt:?}");
    assert!(pt.iter().any(|t| t == "idle baseline"));
    assert!(pt.iter().any(|t| t == "VDD_IN"));
}
