//! YOLO-format ground truth: one `labels/<stem>.txt` per image, one `class cx cy w h` line per
//! object, coordinates normalised to 0..1. An image without a label file has no objects.

pub use crate::data::set::default_labels_dir;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Ground-truth objects of one image, boxes `[x1, y1, x2, y2]` in image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTruth {
    pub image: PathBuf,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<([f32; 4], u32)>,
}

/// Ground truth of an evaluation set, in image order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroundTruth {
    pub images: Vec<ImageTruth>,
}

const IMAGE_EXTS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// Image files in `dir` (not recursive), sorted by name: the evaluation order.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if p.is_file() && ext.is_some_and(|e| IMAGE_EXTS.contains(&e.as_str())) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no images (.jpg, .jpeg, .png, .bmp, .webp) in this folder; point --images at a folder of images",
            dir.display()
        )));
    }
    out.sort();
    Ok(out)
}

/// The label file of `image`: `labels_dir/<stem>.txt`.
pub fn label_path(labels_dir: &Path, image: &Path) -> PathBuf {
    let stem = image.file_stem().unwrap_or_default();
    labels_dir.join(Path::new(stem).with_extension("txt"))
}

/// Parse YOLO label text for a `width x height` image; `path` is for messages.
pub fn parse_yolo_labels(
    path: &Path,
    text: &str,
    width: u32,
    height: u32,
) -> Result<Vec<([f32; 4], u32)>> {
    let (w, h) = (width as f32, height as f32);
    let mut boxes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            Error::Invalid(format!(
                "{}:{}: {why}; expected `class cx cy w h` with a class index and coordinates normalised to 0..1",
                path.display(),
                i + 1
            ))
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Segment labels (class x1 y1 x2 y2 ...) are not boxes; refuse rather than misread.
        if fields.len() != 5 {
            return Err(bad(&format!("{} fields", fields.len())));
        }
        let class: u32 = fields[0]
            .parse()
            .map_err(|_| bad(&format!("class `{}` is not an integer", fields[0])))?;
        let mut v = [0f32; 4];
        for (k, f) in fields[1..].iter().enumerate() {
            v[k] = f
                .parse()
                .map_err(|_| bad(&format!("`{f}` is not a number")))?;
            if !v[k].is_finite() {
                return Err(bad(&format!("`{f}` is not finite")));
            }
        }
        let [cx, cy, bw, bh] = v;
        boxes.push((
            [
                (cx - bw / 2.0) * w,
                (cy - bh / 2.0) * h,
                (cx + bw / 2.0) * w,
                (cy + bh / 2.0) * h,
            ],
            class,
        ));
    }
    Ok(boxes)
}

impl GroundTruth {
    /// Read the labels of `images` from `labels_dir` (image sizes from the file headers).
    pub fn load(images: &[PathBuf], labels_dir: &Path) -> Result<Self> {
        if !labels_dir.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: labels folder not found; pass --labels DIR (YOLO-format .txt files named like the images)",
                labels_dir.display()
            )));
        }
        let mut out = Vec::with_capacity(images.len());
        for img in images {
            let (width, height) = image::image_dimensions(img).map_err(|e| Error::Image {
                path: img.clone(),
                msg: format!("cannot read the image size: {e}"),
            })?;
            let lp = label_path(labels_dir, img);
            let boxes = match crate::util::input::read_text(&lp, crate::util::input::TEXT) {
                Ok(text) => parse_yolo_labels(&lp, &text, width, height)?,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            out.push(ImageTruth {
                image: img.clone(),
                width,
                height,
                boxes,
            });
        }
        Ok(GroundTruth { images: out })
    }
}

/// Class names, one per line (`classes.txt`, `coco.names`); blank lines are skipped.
pub fn read_class_names(path: &std::path::Path) -> Result<Vec<String>> {
    let text = crate::util::input::read_text(path, crate::util::input::TEXT)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalised_boxes() {
        let b = parse_yolo_labels(Path::new("x.txt"), "3 0.5 0.5 0.5 0.25\n\n", 200, 100).unwrap();
        assert_eq!(b, vec![([50.0, 37.5, 150.0, 62.5], 3)]);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let e = parse_yolo_labels(
            Path::new("a/b.txt"),
            "0 0.5 0.5 0.1 0.1\n1 0.5 x 0.1 0.1\n",
            10,
            10,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("a/b.txt:2"), "{msg}");
    }
}
