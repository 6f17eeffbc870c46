//! `trtforge cache show` / `cache diff` on caches written by the library: write -> show ->
//! identical values, and a diff naming what changed.

use std::process::Command;
use trtforge::calib::cache::CalibrationCache;
use trtforge::recipe::{Algorithm, TrtVersion};

fn trtforge(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn write_show_round_trip_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let amaxes = [
        ("images", 255.0f32),
        ("/backbone/conv1/Conv_output_0", 13.37),
        ("zero", 0.0),
        ("weird:name", 1e-6),
    ];
    let mut c = CalibrationCache::new(TrtVersion::parse("8.6.2").unwrap(), Algorithm::Entropy);
    for (n, a) in amaxes {
        c.push_amax(n, a);
    }
    let a = dir.path().join("a.cache");
    c.write(&a).unwrap();
    let a_str = a.to_str().unwrap();
    let v = trtforge(&["cache", "show", a_str, "--json"]);
    assert_eq!(v["header"], "TRT-8602-EntropyCalibration2");
    assert_eq!(v["tensorrt"], "8.6.2");
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), amaxes.len());
    for (t, e) in tensors.iter().zip(&c.entries) {
        assert_eq!(t["tensor"], e.tensor.as_str());
        assert_eq!(t["scale_hex"], format!("{:x}", e.scale.to_bits()));
        // JSON floats read back as the same f32.
        assert_eq!(t["scale"].as_f64().unwrap() as f32, e.scale);
        assert_eq!(t["amax"].as_f64().unwrap() as f32, e.amax());
    }

    // B: one tensor changed by 10%, one dropped, one added.
    let mut d = CalibrationCache::new(TrtVersion::parse("10.3").unwrap(), Algorithm::Minmax);
    d.push_amax("images", 255.0);
    d.push_amax("/backbone/conv1/Conv_output_0", 13.37 * 1.1);
    d.push_amax("zero", 0.0);
    d.push_amax("new", 2.0);
    let b = dir.path().join("b.cache");
    d.write(&b).unwrap();
    let v = trtforge(&["cache", "diff", a_str, b.to_str().unwrap(), "--json"]);
    assert_eq!(v["only_in_a"], serde_json::json!(["weird:name"]));
    assert_eq!(v["only_in_b"], serde_json::json!(["new"]));
    let rel = v["max_rel_diff"].as_f64().unwrap();
    assert!((rel - 0.1 / 1.1).abs() < 1e-5, "{rel}");
    assert_eq!(v["identical_scales"], false);
    let v = trtforge(&["cache", "diff", a_str, a_str, "--json"]);
    assert_eq!(v["identical_scales"], true);

    // A bad file: one-line error naming it, exit 1.
    let bad = dir.path().join("bad.cache");
    std::fs::write(&bad, "not a cache\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["cache", "show", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.cache:1"), "{err}");
}
