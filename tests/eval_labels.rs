//! YOLO-format ground truth on the real coco128-train set, and clear errors for bad input.

mod eval_support;

use trtforge::eval::labels::{default_labels_dir, list_images};
use trtforge::eval::GroundTruth;

#[test]
fn coco128_ground_truth_loads() {
    let Some(shared) = eval_support::shared() else {
        return;
    };
    let dir = shared.join("datasets/coco128-train/images");
    let images = list_images(&dir).unwrap();
    assert_eq!(images.len(), 128);
    let gt = GroundTruth::load(&images, &default_labels_dir(&dir)).unwrap();
    // Two images have no label file: no objects, not an error.
    let empty: Vec<String> = gt
        .images
        .iter()
        .filter(|i| i.boxes.is_empty())
        .map(|i| i.image.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(empty, ["000000000250", "000000000508"]);
    let total: usize = gt.images.iter().map(|i| i.boxes.len()).sum();
    assert!(total > 900, "{total} boxes");
    for im in &gt.images {
        for (b, c) in &im.boxes {
            assert!(*c < 80);
            assert!(
                b[0] >= -0.5 && b[2] <= im.width as f32 + 0.5 && b[0] < b[2] && b[1] < b[3],
                "{b:?} in {}",
                im.image.display()
            );
        }
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = list_images(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains(&tmp.path().display().to_string()) && e.contains("no images"),
        "{e}"
    );
    let e = list_images(&tmp.path().join("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");

    let img = tmp.path().join("a.png");
    image::RgbImage::new(8, 4).save(&img).unwrap();
    let e = GroundTruth::load(std::slice::from_ref(&img), &tmp.path().join("nolabels"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nolabels") && e.contains("--labels"), "{e}");

    std::fs::write(tmp.path().join("a.txt"), "0 0.5 0.5 0.5\n").unwrap();
    let e = GroundTruth::load(std::slice::from_ref(&img), tmp.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.txt:1") && e.contains("4 fields"), "{e}");

    let bad = tmp.path().join("b.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let e = GroundTruth::load(&[bad], tmp.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.jpg"), "{e}");
}
