//! The image stream: an [`ImageSet`] decoded and preprocessed in parallel, yielded strictly
//! in order as NCHW batches, with bounded memory.
//!
//! [`ImageStream`] is an `Iterator<Item = Result<Batch>>`. Workers on a dedicated thread pool
//! read, hash (SHA-256 of the file bytes), decode and preprocess images ahead of the
//! consumer; at most `prefetch` images are in flight or waiting, so memory is bounded by
//! `(batch_size + prefetch)` preprocessed images however large the set is. Results are
//! reordered by index, so the sequence is the same for any number of workers. Every batch
//! holds `batch_size` images except possibly the last, which holds the rest.
//!
//! Unreadable images: with [`OnUnreadable::Fail`] the stream yields one error naming the
//! file and the fix, then ends; with [`OnUnreadable::Skip`] the image is skipped (the next
//! readable one takes its place in the batch) and recorded in [`ImageStream::skipped`].

use super::contract::InputContract;
use super::image::FIX_FILE;
use super::preprocess::{preprocess_bytes, validate_contract, Letterbox};
use super::ImageSet;
use crate::error::{Error, Result};
use ndarray::{Array3, Array4, Axis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// What happens to an image that cannot be read or decoded.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreadable {
    /// Stop with an error naming the file.
    #[default]
    Fail,
    /// Skip it, count it and report the count.
    Skip,
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
        super::preprocess::to_f16(&self.tensor)
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

/// Images decoded ahead of the consumer by default.
fn prefetch(batch_size: usize, workers: usize) -> usize {
    (2 * batch_size).max(2 * workers)
}

fn resolve_workers(workers: usize) -> usize {
    if workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        workers
    }
}

impl ImageStream {
    /// The most decoded images a default stream holds at once (the batch and its prefetch),
    /// for memory estimates before it starts.
    pub fn in_flight(batch_size: usize, workers: usize) -> usize {
        batch_size + prefetch(batch_size, resolve_workers(workers))
    }

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
        let workers = resolve_workers(workers);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("trtforge-decode-{i}"))
            .build()
            .map_err(|e| {
                Error::internal(format!(
                    "cannot start {workers} image decoding threads: {e}"
                ))
            })?;
        let (tx, rx) = channel();
        Ok(ImageStream {
            paths: Arc::new(set.paths),
            contract: Arc::new(contract.clone()),
            batch_size,
            on_unreadable,
            prefetch: prefetch(batch_size, workers),
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
    let bytes = crate::util::input::read(path, crate::util::input::IMAGE)?;
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
