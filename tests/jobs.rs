//! Recipes resolve into typed jobs at the edge: overrides build settings directly (no YAML
//! text is formatted and re-parsed), the TensorRT version is parsed once when the recipe
//! loads, statuses are enums serialized as the strings the JSON has always had, and errors
//! keep their kind (stale with a structured fix, ONNX Runtime with its source).

mod common;

use std::path::{Path, PathBuf};
use trtforge::build::calibration::CacheState;
use trtforge::build::CalibrationAction;
use trtforge::calib::calibrate::{calibrate, CalibrateOptions, CalibrationStatus};
use trtforge::error::{Error, StaleFix};
use trtforge::recipe::{CalibrationOverrides, LoadedRecipe, TrtVersion};

/// A tiny model and a recipe beside it with `extra` appended (no calibration section).
fn recipe(dir: &Path, extra: &str) -> LoadedRecipe {
    let mut m = trtforge::onnx::synth::tiny_detector(32);
    m.path = dir.join("tiny.onnx");
    m.save(&m.path).unwrap();
    let text = format!(
        "model: tiny.onnx\ninput:\n  tensor: images\n  shape: [1, 3, 32, 32]\n  channel_order: bgr\n  \
         scale: 0.00392156862745098\n  resize: letterbox-centre\n  pad_value: 114\noutput: out\n{extra}"
    );
    let p = dir.join("tiny.yaml");
    std::fs::write(&p, text).unwrap();
    LoadedRecipe::load(&p).unwrap()
}

/// A folder called `name` holding one of the bundled photos.
fn image_folder(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(
        common::crate_root().join("calib_data/chelsea.png"),
        d.join("chelsea.png"),
    )
    .unwrap();
    d
}

/// Paths that YAML would read as a flow sequence, a mapping, an alias, an anchor, a tag or a
/// directive: `--images` must take each as the path it is.
#[test]
fn images_override_takes_any_path_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(dir.path(), "");
    for name in ["[x]", "a: b", "*star", "&anchor", "!bang", "%pct", "# hash"] {
        let images = image_folder(dir.path(), name);
        let job = r
            .calibration_job(&CalibrationOverrides {
                images: Some(images.clone()),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(job.calibration.images, images, "{name}");
        let set = job.image_set().unwrap();
        assert_eq!(set.len(), 1, "{name}");
        // Every other field has the same default a written section would get.
        let written: trtforge::recipe::Calibration =
            serde_yaml_ng::from_str("images: somewhere").unwrap();
        assert_eq!(
            job.calibration,
            trtforge::recipe::Calibration { images, ..written },
            "{name}"
        );
    }
    // Without a section and without --images: the field is named.
    let e = r.calibration_job(&Default::default()).unwrap_err();
    assert!(
        matches!(e, Error::Recipe { ref field, .. } if field == "calibration"),
        "{e}"
    );
}

/// CPU calibrations through relative paths YAML would misread (an alias, a tag, a mapping
/// with a flow sequence), end to end through the CLI run in the recipe's folder.
#[test]
fn calibrate_cli_with_yaml_looking_images_paths() {
    let dir = tempfile::tempdir().unwrap();
    recipe(dir.path(), "");
    for name in ["*star", "!bang", "a: [b]"] {
        image_folder(dir.path(), name);
        let out = std::process::Command::new(common::bin())
            .args([
                "calibrate",
                "tiny.yaml",
                "--images",
                name,
                "--force",
                "--json",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && err.contains("ONNX Runtime is not available") {
            assert!(!trtforge::env::in_ci(), "{err}");
            eprintln!("SKIP: {err}");
            return;
        }
        assert!(out.status.success(), "{name}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "calibrated", "{name}");
        assert_eq!(v["images"], 1, "{name}");
    }
}

#[test]
fn tensorrt_version_is_parsed_once_when_the_recipe_loads() {
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(dir.path(), "target:\n  tensorrt: 8.6.2\n");
    assert_eq!(
        r.recipe.target.tensorrt,
        TrtVersion::parse("8.6.2").unwrap()
    );
    // Unquoted 10.3 is the version 10.3, not a float.
    let r = recipe(dir.path(), "target:\n  tensorrt: 10.3\n");
    assert_eq!(r.recipe.target.tensorrt.to_string(), "10.3.0");
    // Absent: JetPack 6.1/6.2's 10.3.
    let r = recipe(dir.path(), "");
    assert_eq!(r.recipe.target.tensorrt.cache_number(), 100300);
    // A bad version is a located recipe error naming the field.
    for bad in ["ten", "7.1", "10.3.0.1", "''"] {
        let p = dir.path().join("bad.yaml");
        let text = std::fs::read_to_string(dir.path().join("tiny.yaml"))
            .unwrap()
            .replace(
                "output: out\n",
                &format!("output: out\ntarget:\n  tensorrt: {bad}\n"),
            );
        std::fs::write(&p, text).unwrap();
        let e = LoadedRecipe::load(&p).unwrap_err();
        let Error::Recipe {
            location,
            field,
            msg,
        } = &e
        else {
            panic!("{bad}: expected a recipe error, got {e}");
        };
        assert_eq!(field, "target.tensorrt", "{bad}");
        assert!(location.contains("bad.yaml:11:"), "{bad}: {location}");
        assert!(msg.contains("8.5.2, 8.6 or 10.3"), "{bad}: {msg}");
    }
}

#[test]
fn statuses_serialize_as_the_strings_the_json_has() {
    assert_eq!(s(&CalibrationStatus::Calibrated), "calibrated");
    assert_eq!(s(&CalibrationStatus::UpToDate), "up-to-date");
    assert_eq!(CalibrationStatus::UpToDate.to_string(), "up-to-date");
    assert_eq!(s(&CalibrationAction::Reused), "reused");
    assert_eq!(s(&CalibrationAction::CalibratedOnCpu), "calibrated-on-cpu");
    assert_eq!(s(&CalibrationAction::Tensorrt), "tensorrt");
    assert_eq!(s(&CacheState::Fresh), "fresh");
    assert_eq!(s(&CacheState::Absent), "absent");
    assert_eq!(s(&CacheState::Forced), "forced");
    assert_eq!(s(&TrtVersion::parse("10.16").unwrap()), "10.16.0");
}

/// The JSON string a value serializes to.
fn s<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// A stale calibration keeps its cause and gets the fix of the command that found it.
#[test]
fn stale_cache_carries_a_structured_fix() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path(), "imgs");
    let r = recipe(
        dir.path(),
        &format!("calibration:\n  images: {}\n", images.display()),
    );
    let job = r.calibration_job(&Default::default()).unwrap();
    match calibrate(&job, &CalibrateOptions::default()) {
        Ok(report) => assert_eq!(report.status, CalibrationStatus::Calibrated),
        Err(e @ Error::Unavailable { .. }) => {
            assert!(!trtforge::env::in_ci(), "{e}");
            eprintln!("SKIP: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let again = calibrate(&job, &CalibrateOptions::default()).unwrap();
    assert_eq!(again.status, CalibrationStatus::UpToDate);
    // Other weights under the same path: the cache is stale.
    let mut other = trtforge::onnx::synth::tiny_detector(32);
    other.proto.graph.mut_or_insert_default().initializer[0].float_data[0] += 1.0;
    other.path = job.model.path.clone();
    other.save(&other.path).unwrap();
    let job = r.calibration_job(&Default::default()).unwrap();
    let e = calibrate(&job, &CalibrateOptions::default()).unwrap_err();
    let Error::Stale { why, fix, .. } = &e else {
        panic!("expected Stale, got {e}");
    };
    assert!(why.contains("model sha256 differs"), "{why}");
    assert_eq!(*fix, StaleFix::Recalibrate);
    assert!(
        e.to_string()
            .ends_with("; rerun with --force to recalibrate"),
        "{e}"
    );
    let e = trtforge::build::calibration::for_build(e);
    assert!(
        e.to_string()
            .ends_with("rerun `trtforge build` with --force-calibration (or `trtforge calibrate --force`) to recalibrate"),
        "{e}"
    );
}

/// ONNX Runtime's own error stays reachable as the source.
#[test]
fn onnx_runtime_errors_keep_their_source() {
    let mut m = trtforge::onnx::synth::tiny_detector(16);
    // An op no ONNX Runtime has: session creation fails.
    m.proto.graph.mut_or_insert_default().node[1].op_type = "NoSuchOp".into();
    match trtforge::exec::OrtSession::from_model(&m, &[]) {
        Err(e @ Error::Ort { .. }) => {
            let source = std::error::Error::source(&e).expect("ort's error is the source");
            assert!(e.to_string().contains(&source.to_string()), "{e}");
            assert!(e.to_string().contains("cannot create a session"), "{e}");
        }
        Err(e @ Error::Unavailable { .. }) => {
            assert!(!trtforge::env::in_ci(), "{e}");
            eprintln!("SKIP: {e}");
        }
        Err(e) => panic!("expected an ONNX Runtime error, got {e:?}"),
        Ok(_) => panic!("a model with an unknown op must not load"),
    }
}

/// `quantize.refine` is `auto` (the default: try all three, keep what helps), a list (apply
/// those) or `[]`; `quantize.validation.confirm` is a share in [0, 0.9], default 0.5; each
/// wrong value is a located error naming the field.
#[test]
fn refine_and_confirm_settings_resolve_and_bad_values_name_the_field() {
    use trtforge::recipe::{QuantizeOverrides, Refinement};
    let dir = tempfile::tempdir().unwrap();
    let (cal, val) = (
        image_folder(dir.path(), "cal"),
        image_folder(dir.path(), "val"),
    );
    let base = format!(
        "decoder: yolox\ncalibration:\n  images: {}\nquantize:\n  validation:\n    images: {}\n",
        cal.display(),
        val.display()
    );
    let job = |extra: &str| {
        recipe(dir.path(), &format!("{base}{extra}"))
            .quantize_job(&QuantizeOverrides::default())
            .unwrap()
    };
    let all = [
        Refinement::RangeChoice,
        Refinement::WeightScales,
        Refinement::BiasCorrection,
        Refinement::DepthwiseEqualization,
    ];
    let j = job("");
    assert_eq!((j.refine.as_slice(), j.refine_auto), (&all[..], true));
    assert_eq!(j.validation.confirm, 0.5);
    let j = job("  refine: auto\n");
    assert_eq!((j.refine.as_slice(), j.refine_auto), (&all[..], true));
    let j = job("  refine: [bias_correction]\n  refine_images: 3\n");
    assert_eq!(
        (j.refine.as_slice(), j.refine_auto, j.refine_images),
        (&[Refinement::BiasCorrection][..], false, 3)
    );
    assert!(job("  refine: []\n").refine.is_empty());
    let with_confirm =
        |c: &str| base.replace("    images:", &format!("    confirm: {c}\n    images:"));
    assert_eq!(
        recipe(dir.path(), &with_confirm("0.25"))
            .validation_job()
            .unwrap()
            .confirm,
        0.25
    );
    // A misspelt refinement gets the bad word and the good ones, not serde's "did not match
    // any variant".
    let p = dir.path().join("misspelt.yaml");
    let text = std::fs::read_to_string(dir.path().join("tiny.yaml")).unwrap();
    let head = &text[..text.find("output: out\n").unwrap()];
    std::fs::write(
        &p,
        format!("{head}output: out\n{base}  refine: [depthwise_equalisation]\n"),
    )
    .unwrap();
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("quantize.refine")
            && e.contains("'depthwise_equalisation'")
            && e.contains("depthwise_equalization"),
        "{e}"
    );
    for (extra, field) in [
        (with_confirm("0.95"), "quantize.validation.confirm"),
        (with_confirm("-0.1"), "quantize.validation.confirm"),
        (format!("{base}  refine: sometimes\n"), "quantize.refine"),
        (
            format!("{base}  refine: [depthwise_equalisation]\n"),
            "quantize.refine",
        ),
        (
            format!("{base}  max_map_drop: -1\n"),
            "quantize.max_map_drop",
        ),
        (
            format!("{base}  sensitivity_images: 0\n"),
            "quantize.sensitivity_images",
        ),
        (
            format!("{base}  refine_images: 0\n"),
            "quantize.refine_images",
        ),
    ] {
        let p = dir.path().join("bad.yaml");
        let text = std::fs::read_to_string(dir.path().join("tiny.yaml")).unwrap();
        // The last recipe written, cut after its fixed part.
        let head = &text[..text.find("output: out\n").unwrap()];
        std::fs::write(&p, format!("{head}output: out\n{extra}")).unwrap();
        match LoadedRecipe::load(&p) {
            Err(Error::Recipe { field: f, .. }) => assert!(f.starts_with(field), "{extra}: {f}"),
            other => panic!("{extra}: expected a recipe error on {field}, got {other:?}"),
        }
    }
}
