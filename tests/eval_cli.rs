//! `trtforge eval` end to end on the committed recipes and the shared data.

mod common;

#[test]
fn eval_yolox_nano_on_coco128_scores_about_0_33() {
    if common::yolox().is_none() {
        return;
    }
    let (code, out, err) = common::trtforge(&["eval", "engines/yolox-nano-int8.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"], 128);
    let m = v["map50_95"].as_f64().unwrap();
    let m50 = v["map50"].as_f64().unwrap();
    // pycocotools on the same detections: see tests/eval_models.rs; the published figure is ~0.33.
    assert!((0.32..0.35).contains(&m), "map50_95 {m}");
    assert!(m50 > m, "map50 {m50}");
}

#[test]
fn eval_flags_override_the_recipe_and_bad_folders_are_clear_errors() {
    if common::yolox().is_none() {
        return;
    }
    let (code, out, err) = common::trtforge(&[
        "eval",
        "engines/fastestdet-dla-fp16.yaml",
        "--limit",
        "8",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"], 8);

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (code, out, err) = common::trtforge(&[
        "eval",
        "engines/fastestdet-dla-fp16.yaml",
        "--images",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(missing.to_str().unwrap()) && err.trim().lines().count() == 1,
        "{err}"
    );

    let (code, _, err) = common::trtforge(&[
        "eval",
        "engines/fastestdet-dla-fp16.yaml",
        "--images",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(dir.path().to_str().unwrap()), "{err}");
}
