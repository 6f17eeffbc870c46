//! The calibration image stream: an ordered image set, decoded and preprocessed in parallel,
//! yielded strictly in order as NCHW batches, with bounded memory.
//!
//! - [`ImageSet`]: the list of image paths from a folder (its `.jpg`/`.jpeg`/`.png` files,
//!   not recursive, hidden files ignored), a list file (one path per line, relative to the
//!   list file's folder, blank lines and lines starting with `#` ignored) or a single image.
//!   Order is deterministic: sorted by file name (then full path), or a seeded shuffle of
//!   that sorted list ([`shuffle`]); `limit` applies after ordering.
//! - [`ImageStream`]: an `Iterator<Item = Result<Batch>>`. Workers on a dedicated thread
//!   pool read, hash (SHA-256 of the file bytes), decode and preprocess images ahead of the
//!   consumer; at most `prefetch` images are in flight or waiting, so memory is bounded by
//!   `(batch_size + prefetch)` preprocessed images however large the set is. Results are
//!   reordered by index, so the sequence is the same for any number of workers.
//!   Every batch holds `batch_size` images except possibly the last, which holds the rest.
//! - Unreadable images: with [`OnUnreadable::Fail`] the stream yields one error naming the
//!   file and the fix, then ends; with [`OnUnreadable::Skip`] the image is skipped (the next
//!   readable one takes its place in the batch) and recorded in [`ImageStream::skipped`].

use crate::calib::image::{has_image_extension, FIX_FILE};
use crate::calib::npy::write_npy;
use crate::calib::preprocess::{preprocess_bytes, validate_contract, Letterbox};
use crate::error::{Error, Result};
use crate::recipe::{InputContract, LoadedRecipe, OnUnreadable, Order};
use ndarray::{Array3, Array4, Axis};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

const FIX_IMAGES: &str =
    "point calibration.images (or --images) at a folder of JPEG/PNG images or a list file of image paths";

/// An ordered list of image files.
#[derive(Debug, Clone)]
pub struct ImageSet {
    paths: Vec<PathBuf>,
    source: PathBuf,
}

impl ImageSet {
    /// Images from a folder, a list file or a single image file, ordered and limited.
    pub fn from_path(
        path: &Path,
        order: Order,
        seed: u64,
        limit: Option<usize>,
    ) -> Result<ImageSet> {
        check_limit(limit, path)?;
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::Invalid(format!(
                "{}: cannot open the image set ({e}); {FIX_IMAGES}",
                path.display()
            ))
        })?;
        let paths = if meta.is_dir() {
            list_folder(path)?
        } else if has_image_extension(path) {
            vec![path.to_path_buf()]
        } else {
            read_list_file(path)?
        };
        if paths.is_empty() {
            let what = if meta.is_dir() {
                "no .jpg, .jpeg or .png files in this folder"
            } else {
                "the list file names no images"
            };
            return Err(Error::Invalid(format!(
                "{}: {what}; {FIX_IMAGES}",
                path.display()
            )));
        }
        Self::from_paths(paths, path, order, seed, limit)
    }

    /// Images from explicit paths (e.g. a command line), ordered and limited like
    /// [`ImageSet::from_path`]. `source` names the set in messages.
    pub fn from_paths(
        mut paths: Vec<PathBuf>,
        source: &Path,
        order: Order,
        seed: u64,
        limit: Option<usize>,
    ) -> Result<ImageSet> {
        check_limit(limit, source)?;
        if paths.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no images; {FIX_IMAGES}",
                source.display()
            )));
        }
        sort_by_file_name(&mut paths);
        if order == Order::Shuffled {
            shuffle(&mut paths, seed);
        }
        if let Some(n) = limit {
            paths.truncate(n);
        }
        Ok(ImageSet {
            paths,
            source: source.to_path_buf(),
        })
    }

    /// The recipe's calibration set (`calibration.images`, resolved against the recipe's
    /// folder, with its order, seed and limit).
    pub fn from_recipe(loaded: &LoadedRecipe) -> Result<ImageSet> {
        let cal = loaded.recipe.calibration.as_ref().ok_or_else(|| {
            loaded.field_error(
                "calibration",
                "the recipe has no calibration section; add calibration.images",
            )
        })?;
        Self::from_path(&loaded.resolve(&cal.images), cal.order, cal.seed, cal.limit)
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
    pub fn len(&self) -> usize {
        self.paths.len()
    }
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
    /// The folder, list file or source the set came from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

fn check_limit(limit: Option<usize>, source: &Path) -> Result<()> {
    if limit == Some(0) {
        return Err(Error::Invalid(format!(
            "{}: limit 0 selects no images; set the limit to at least 1 or remove it",
            source.display()
        )));
    }
    Ok(())
}

fn list_folder(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `is_file` follows symlinks, so linked images count.
        if !hidden && has_image_extension(&p) && p.is_file() {
            out.push(p);
        }
    }
    Ok(out)
}

fn read_list_file(list: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list).map_err(|e| {
        Error::Invalid(format!(
            "{}: not a folder, an image or a readable text list of image paths ({e}); {FIX_IMAGES}",
            list.display()
        ))
    })?;
    let base = list.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect())
}

/// Sort by file name (bytes), ties broken by the full path: the same order on every OS
/// and filesystem.
fn sort_by_file_name(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| {
        let key = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.as_encoded_bytes().to_vec())
                .unwrap_or_default()
        };
        key(a).cmp(&key(b)).then_with(|| {
            a.as_os_str()
                .as_encoded_bytes()
                .cmp(b.as_os_str().as_encoded_bytes())
        })
    });
}

/// Deterministic shuffle, stable across platforms and releases: Fisher-Yates from the end
/// with SplitMix64 seeded by `seed`; at step `i` (from `n-1` down to 1) the swap partner
/// is `j = (next_u64() * (i + 1)) >> 64` (128-bit product).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        // SplitMix64 (Steele, Lea, Flood 2014).
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = ((next() as u128 * (i as u128 + 1)) >> 64) as usize;
        items.swap(i, j);
    }
}

/// Where one image of a batch came from and how it was placed in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemInfo {
    /// Position in the [`ImageSet`] (skipped images keep their positions).
    pub index: usize,
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Original image size, (height, width).
    pub orig_hw: (u32, u32),
    pub letterbox: Letterbox,
}

/// A batch of preprocessed images: `tensor` is `n x 3 x H x W` with `n == items.len()`,
/// equal to the batch size except possibly for the last batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub tensor: Array4<f32>,
    pub items: Vec<ItemInfo>,
}

impl Batch {
    /// The tensor as f16 (for `dtype: float16` inputs).
    pub fn tensor_f16(&self) -> Array4<half::f16> {
        crate::calib::preprocess::to_f16(&self.tensor)
    }
}

/// An image the stream skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

struct Prepared {
    tensor: Array3<f32>,
    info: ItemInfo,
}

type JobResult = (usize, Result<Prepared>);

/// Ordered, parallel, bounded-memory iterator of preprocessed batches (see module docs).
pub struct ImageStream {
    paths: Arc<Vec<PathBuf>>,
    contract: Arc<InputContract>,
    batch_size: usize,
    on_unreadable: OnUnreadable,
    prefetch: usize,
    pool: rayon::ThreadPool,
    tx: Sender<JobResult>,
    rx: Receiver<JobResult>,
    /// Finished jobs that arrived ahead of their turn.
    ready: HashMap<usize, Result<Prepared>>,
    next_submit: usize,
    next_take: usize,
    yielded: usize,
    skipped: Vec<Skipped>,
    finished: bool,
    /// Most images ever submitted but not yet taken (the memory bound, observed).
    peak_ahead: usize,
}

impl ImageStream {
    /// A stream over `set` preprocessed per `contract`, in batches of `batch_size`
    /// (the last may be short). `workers = 0` uses every core. The prefetch window defaults
    /// to `max(2 * batch_size, 2 * workers)` images; see [`ImageStream::with_prefetch`].
    pub fn new(
        set: ImageSet,
        contract: &InputContract,
        batch_size: usize,
        on_unreadable: OnUnreadable,
        workers: usize,
    ) -> Result<ImageStream> {
        validate_contract(contract)?;
        if batch_size == 0 {
            return Err(Error::Invalid(
                "batch size 0: set calibration.batch_size to at least 1".to_string(),
            ));
        }
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            workers
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("trtforge-decode-{i}"))
            .build()
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot start {workers} image decoding threads: {e}"
                ))
            })?;
        let (tx, rx) = channel();
        Ok(ImageStream {
            paths: Arc::new(set.paths),
            contract: Arc::new(contract.clone()),
            batch_size,
            on_unreadable,
            prefetch: (2 * batch_size).max(2 * workers),
            pool,
            tx,
            rx,
            ready: HashMap::new(),
            next_submit: 0,
            next_take: 0,
            yielded: 0,
            skipped: Vec::new(),
            finished: false,
            peak_ahead: 0,
        })
    }

    /// The recipe's calibration stream: its set, contract, batch size and unreadable-image
    /// policy. `workers = 0` uses every core.
    pub fn from_recipe(loaded: &LoadedRecipe, workers: usize) -> Result<ImageStream> {
        let set = ImageSet::from_recipe(loaded)?;
        let cal = loaded
            .recipe
            .calibration
            .as_ref()
            .expect("from_recipe checked it");
        Self::new(
            set,
            &loaded.recipe.input,
            cal.batch_size,
            cal.on_unreadable,
            workers,
        )
    }

    /// Set how many images may be decoded ahead of the consumer (at least 1).
    pub fn with_prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Number of images in the set (readable or not).
    pub fn total(&self) -> usize {
        self.paths.len()
    }
    /// Images yielded so far.
    pub fn yielded(&self) -> usize {
        self.yielded
    }
    /// Images skipped so far as unreadable (only with [`OnUnreadable::Skip`]).
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The most images that were ever decoded or queued ahead of the consumer at once;
    /// never more than the prefetch window.
    pub fn peak_ahead(&self) -> usize {
        self.peak_ahead
    }

    fn submit_ahead(&mut self) {
        while self.next_submit < self.paths.len()
            && self.next_submit - self.next_take < self.prefetch
        {
            let i = self.next_submit;
            self.next_submit += 1;
            self.peak_ahead = self.peak_ahead.max(self.next_submit - self.next_take);
            let (paths, contract, tx) =
                (self.paths.clone(), self.contract.clone(), self.tx.clone());
            self.pool.spawn(move || {
                let path = &paths[i];
                // A decoder panic on a hostile file must not take the process down: it is
                // an unreadable image like any other.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    prepare(i, path, &contract)
                }))
                .unwrap_or_else(|_| {
                    Err(Error::Image {
                        path: path.clone(),
                        msg: "the image decoder crashed on this file".to_string(),
                    })
                });
                // The receiver is gone only if the stream was dropped: nothing to do then.
                let _ = tx.send((i, r));
            });
        }
    }

    fn take(&mut self, i: usize) -> Result<Prepared> {
        loop {
            if let Some(r) = self.ready.remove(&i) {
                return r;
            }
            // The stream holds a sender itself, so `recv` cannot fail while it lives.
            let (j, r) = self.rx.recv().expect("stream keeps a sender alive");
            self.ready.insert(j, r);
        }
    }
}

fn prepare(index: usize, path: &Path, contract: &InputContract) -> Result<Prepared> {
    let bytes = crate::error::read_file(path)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let (tensor, letterbox) = preprocess_bytes(&bytes, path, contract)?;
    Ok(Prepared {
        tensor,
        info: ItemInfo {
            index,
            path: path.to_path_buf(),
            sha256,
            orig_hw: (letterbox.orig_h, letterbox.orig_w),
            letterbox,
        },
    })
}

/// Rewrite a per-image error into the one-line message the stream reports: the file, the
/// reason, and the fix.
fn unreadable_error(path: &Path, e: Error) -> Error {
    let reason = match e {
        Error::Image { msg, .. } => msg,
        Error::Io { source, .. } => format!("cannot read the file: {source}; {FIX_FILE}"),
        other => format!("{other}; {FIX_FILE}"),
    };
    Error::Image {
        path: path.to_path_buf(),
        msg: format!("unreadable image: {reason}, or set calibration.on_unreadable: skip to skip such images"),
    }
}

impl Iterator for ImageStream {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.finished {
            return None;
        }
        let mut items = Vec::with_capacity(self.batch_size);
        let mut tensors = Vec::with_capacity(self.batch_size);
        while items.len() < self.batch_size && self.next_take < self.paths.len() {
            self.submit_ahead();
            let i = self.next_take;
            let r = self.take(i);
            self.next_take += 1;
            // Keep the workers busy while this batch is assembled.
            self.submit_ahead();
            match r {
                Ok(p) => {
                    tensors.push(p.tensor);
                    items.push(p.info);
                }
                Err(e) => {
                    let path = self.paths[i].clone();
                    let e = unreadable_error(&path, e);
                    match self.on_unreadable {
                        OnUnreadable::Fail => {
                            self.finished = true;
                            return Some(Err(e));
                        }
                        OnUnreadable::Skip => {
                            log::warn!("skipping {e}");
                            let reason = match e {
                                Error::Image { msg, .. } => msg,
                                other => other.to_string(),
                            };
                            // Keep only the cause: the fix is about failing, not skipping.
                            let reason = reason
                                .trim_start_matches("unreadable image: ")
                                .split(&format!("; {FIX_FILE}"))
                                .next()
                                .unwrap_or_default()
                                .to_string();
                            self.skipped.push(Skipped { path, reason });
                        }
                    }
                }
            }
        }
        if items.is_empty() {
            self.finished = true;
            return None;
        }
        let views: Vec<_> = tensors.iter().map(|t| t.view()).collect();
        let tensor = ndarray::stack(Axis(0), &views).expect("every image has the contract's shape");
        self.yielded += items.len();
        Some(Ok(Batch { tensor, items }))
    }
}

/// What [`dump_inputs`] wrote.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    pub dir: PathBuf,
    /// File names written, in stream order.
    pub files: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// File name for the `seq`-th yielded image: `000042_<stem>.npy`, so sorting names gives
/// stream order. Characters outside `[A-Za-z0-9._-]` in the stem become `_`.
pub fn dump_file_name(seq: usize, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{seq:06}_{stem}.npy")
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

    #[test]
    fn shuffle_is_deterministic_and_a_permutation() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut c = (0..50).collect::<Vec<u32>>();
        shuffle(&mut c, 8);
        assert_ne!(a, c);
        a.sort();
        assert_eq!(a, (0..50).collect::<Vec<_>>());
        // Pinned output: the order must never change across releases.
        let mut p: Vec<u32> = (0..8).collect();
        shuffle(&mut p, 42);
        assert_eq!(p, PINNED_SEED_42);
    }

    // Cross-checked with an independent Python transcription of the algorithm; a change
    // here changes every shuffled calibration set.
    const PINNED_SEED_42: [u32; 8] = [4, 3, 2, 0, 7, 6, 1, 5];

    #[test]
    fn sorting_is_by_file_name_then_path() {
        let mut v = vec![
            PathBuf::from("z/a.jpg"),
            PathBuf::from("a/c.jpg"),
            PathBuf::from("b/b.jpg"),
            PathBuf::from("a/a.jpg"),
        ];
        sort_by_file_name(&mut v);
        let s: Vec<_> = v.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(s, ["a/a.jpg", "z/a.jpg", "b/b.jpg", "a/c.jpg"]);
    }

    #[test]
    fn dump_names_sort_in_order_and_are_safe() {
        assert_eq!(
            dump_file_name(3, Path::new("x/my img#1.jpg")),
            "000003_my_img_1.npy"
        );
        assert!(dump_file_name(9, Path::new("b.jpg")) < dump_file_name(10, Path::new("a.jpg")));
    }
}
