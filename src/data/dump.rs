//! `.npy` dumps of preprocessed inputs and model outputs, named so that sorting the names
//! gives stream order (`--dump-inputs`, `trtforge run`).

use super::npy::write_npy;
use super::stream::{ImageStream, Skipped};
use crate::error::{Error, Result};
use ndarray::Axis;
use std::path::{Path, PathBuf};

/// What [`dump_inputs`] wrote.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    pub dir: PathBuf,
    /// File names written, in stream order.
    pub files: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`, safe as a file name.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// File name for the `seq`-th yielded image: `000042_<stem>.npy`, so sorting names gives
/// stream order. Characters outside `[A-Za-z0-9._-]` in the stem become `_`.
pub fn dump_file_name(seq: usize, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    format!("{seq:06}_{}.npy", safe_name(&stem))
}

/// Where `trtforge run` writes the outputs of the `seq`-th image: `<out>/000042_<stem>/`,
/// one `<output>.npy` per model output inside ([`output_file`]).
pub fn output_dir(out: &Path, seq: usize, path: &Path) -> PathBuf {
    out.join(dump_file_name(seq, path).trim_end_matches(".npy"))
}

/// The file of model output `name` in an image's output folder.
pub fn output_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.npy", safe_name(name)))
}

/// Write one preprocessed image (`3 x H x W`) as a `1 x 3 x H x W` float32 `.npy` in `dir`
/// under [`dump_file_name`]; returns the file name.
pub fn dump_one(
    dir: &Path,
    seq: usize,
    path: &Path,
    chw: ndarray::ArrayView3<'_, f32>,
) -> Result<String> {
    let name = dump_file_name(seq, path);
    write_npy(&dir.join(&name), &chw.insert_axis(Axis(0)).into_dyn())?;
    Ok(name)
}

/// `--dump-inputs DIR`: drain `stream`, writing each preprocessed image as one `.npy`
/// (NCHW, N = 1, float32) whose names sort in stream order. Creates `dir` if needed.
pub fn dump_inputs(stream: &mut ImageStream, dir: &Path) -> Result<DumpSummary> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for batch in stream.by_ref() {
        let batch = batch?;
        for (k, item) in batch.items.iter().enumerate() {
            files.push(dump_one(
                dir,
                files.len(),
                &item.path,
                batch.tensor.index_axis(Axis(0), k),
            )?);
        }
    }
    Ok(DumpSummary {
        dir: dir.to_path_buf(),
        files,
        skipped: stream.skipped().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn dump_names_sort_in_order_and_are_safe() {
        assert_eq!(
            dump_file_name(3, Path::new("x/my img#1.jpg")),
            "000003_my_img_1.npy"
        );
        assert!(dump_file_name(9, Path::new("b.jpg")) < dump_file_name(10, Path::new("a.jpg")));
    }
}
