//! Recipes: the committed examples load and check; errors carry file:line:column, field, fix.

mod common;

use std::path::Path;
use trtforge::recipe::{self, LoadedRecipe, ResizeMode};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn committed_recipes_load_with_their_exact_preprocessing() {
    let root = common::crate_root();
    let y = LoadedRecipe::load(&root.join("engines/yolox-nano-int8.yaml")).unwrap();
    let i = &y.recipe.input;
    assert_eq!(
        (i.tensor.as_str(), i.shape, i.resize, i.pad_value),
        (
            "images",
            [1, 3, 416, 416],
            ResizeMode::LetterboxTopLeft,
            114.0
        )
    );
    let n = LoadedRecipe::load(&root.join("engines/nanodet-m-320-int8.yaml")).unwrap();
    assert_eq!(n.recipe.input.mean, [103.53, 116.28, 123.675]);
    assert_eq!(n.recipe.input.std, [57.375, 57.12, 58.395]);
    assert_eq!(n.recipe.input.resize, ResizeMode::LetterboxCentre);
    let f = LoadedRecipe::load(&root.join("engines/fastestdet-dla-fp16.yaml")).unwrap();
    assert_eq!(f.recipe.input.resize, ResizeMode::Stretch);
    assert!((f.recipe.input.scale - 1.0 / 255.0).abs() < 1e-9);
    assert_eq!(f.recipe.target.dla_core, Some(0));
    // Relative paths resolve against the recipe's folder.
    assert_eq!(
        y.model_path(),
        trtforge::recipe::normalize(
            &root.join("engines/../../shared/models/yolox_nano/yolox_nano.onnx")
        )
    );
    if common::shared_models().len() == 3 {
        for r in [&y, &n, &f] {
            let report = recipe::check(r).unwrap();
            assert_eq!(report.shape, r.recipe.input.shape);
        }
    }
}

const BASE: &str = "model: m.onnx\ninput:\n  tensor: images\n  shape: [1, 3, 16, 16]\n  channel_order: bgr\n  resize: stretch\n";

#[test]
fn unknown_keys_and_wrong_types_point_at_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.yaml", &format!("{BASE}  colour: rgb\n"));
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:7:3: input.colour: unknown field `colour`",
            p.display()
        )),
        "{e}"
    );
    assert!(e.contains("expected one of"), "{e}");

    let p = write(
        dir.path(),
        "r2.yaml",
        &BASE.replace("[1, 3, 16, 16]", "[1, 3, 16]"),
    );
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.contains(":4:") && e.contains("input.shape") && e.contains("array of length 4"),
        "{e}"
    );

    let p = write(dir.path(), "r3.yaml", &BASE.replace("stretch", "squash"));
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.contains(":6:") && e.contains("input.resize") && e.contains("letterbox-top-left"),
        "{e}"
    );

    let p = write(
        dir.path(),
        "r4.yaml",
        &format!("{BASE}target:\n  device: dla\n"),
    );
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.contains(":8:3: target.dla_core") || e.contains("target.dla_core"),
        "{e}"
    );

    let p = write(
        dir.path(),
        "r5.yaml",
        &format!("{BASE}calibration:\n  images: x\n  batch_size: 0\n"),
    );
    let e = LoadedRecipe::load(&p).unwrap_err().to_string();
    assert!(
        e.contains(":9:3: calibration.batch_size: expected 1 to 1024"),
        "{e}"
    );
}

fn recipe_for_model(dir: &Path, tensor: &str, shape: &str) -> std::path::PathBuf {
    let mut m = trtforge::onnx::synth::tiny_detector(16);
    m.path = dir.join("m.onnx");
    m.save(&m.path).unwrap();
    write(
        dir,
        "r.yaml",
        &BASE
            .replace("tensor: images", &format!("tensor: {tensor}"))
            .replace("[1, 3, 16, 16]", shape),
    )
}

#[test]
fn a_tensor_the_model_lacks_and_a_wrong_shape_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = recipe_for_model(dir.path(), "input.1", "[1, 3, 16, 16]");
    let (code, _, err) = common::trtforge(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("r.yaml:3:3: input.tensor: the model")
            && err.contains("has no input 'input.1'")
            && err.contains("images"),
        "{err}"
    );

    let p = recipe_for_model(dir.path(), "images", "[1, 3, 32, 32]");
    let (code, _, err) = common::trtforge(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("r.yaml:4:3: input.shape")
            && err.contains("[1, 3, 16, 16]")
            && err.contains("axis 2"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let p = recipe_for_model(dir.path(), "images", "[1, 3, 16, 16]");
    let (code, out, err) = common::trtforge(&["check", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["input"], "images");
}
