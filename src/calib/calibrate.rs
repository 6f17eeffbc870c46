//! `trtforge calibrate`: run the FP32 model with ONNX Runtime over the calibration stream,
//! histogram every activation TensorRT will see, pick INT8 ranges, and write the TensorRT
//! cache, the range files and the provenance that guards them against staleness.

use super::artifacts::{check_existing, CACHE_FILE};
use super::cache::CalibrationCache;
use super::capture::Plan;
use super::collect::collect;
use super::histogram::{HistogramSet, NonFinitePolicy};
use super::provenance::{CalibrationRecord, FileRecord, Provenance};
use super::range::{compute_all, RangeParams};
use crate::data::Skipped;
use crate::data::{ImageSet, ImageStream};
use crate::error::{Error, Result};
use crate::exec::OrtSession;
use crate::onnx::Graph;
use crate::recipe::{Algorithm, CalibrationJob};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How `calibrate` runs (the settings themselves are the [`CalibrationJob`]).
#[derive(Debug, Clone, Default)]
pub struct CalibrateOptions {
    /// Also write each preprocessed image as one `.npy` here.
    pub dump_inputs: Option<PathBuf>,
    /// Recalibrate even when a cache exists (fresh or stale).
    pub force: bool,
    /// Decoding threads (0: every core).
    pub workers: usize,
    /// Ask ONNX Runtime for every activation instead of deriving permutations, concats and
    /// cheap activations (slower; a cross-check of the derivation).
    pub expose_all: bool,
}

/// What a `calibrate` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationStatus {
    /// Histograms were gathered and the artifact set written.
    Calibrated,
    /// A fresh cache (provenance matches) was reused.
    UpToDate,
}

impl std::fmt::Display for CalibrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CalibrationStatus::Calibrated => "calibrated",
            CalibrationStatus::UpToDate => "up-to-date",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FlaggedTensor {
    pub tensor: String,
    pub amax: f32,
    pub max_abs: f32,
    pub clip_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub status: CalibrationStatus,
    pub out: String,
    pub cache: String,
    pub cache_header: String,
    pub tensorrt: String,
    pub algorithm: Algorithm,
    pub images: usize,
    pub skipped: Vec<String>,
    pub tensors: usize,
    /// Tensors whose threshold clips more than `max_clip_share` of their values.
    pub flagged: Vec<FlaggedTensor>,
    pub nonfinite_dropped: u64,
    pub seconds: f64,
}

/// An image's provenance record ([`crate::util::image_content_id`]: oversize files unread).
fn image_record(path: &std::path::Path) -> Result<FileRecord> {
    Ok(FileRecord {
        path: path.display().to_string(),
        sha256: crate::util::image_content_id(path)?,
    })
}

/// Provenance of a calibration with these inputs (hashes every file; cheap next to inference).
pub fn current_provenance(job: &CalibrationJob, set: &ImageSet) -> Result<Provenance> {
    let cal = &job.calibration;
    let params = RangeParams::from_recipe(Some(cal));
    let images = set
        .paths()
        .par_iter()
        .map(|p| image_record(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(Provenance {
        tool_version: crate::TOOL_VERSION.to_string(),
        tensorrt: job.tensorrt.to_string(),
        model: FileRecord::of(&job.model.path)?,
        input: job.input.clone(),
        calibration: CalibrationRecord::new(&params, cal.drop_nonfinite),
        images,
        outputs: Default::default(),
    })
}

pub fn calibrate(job: &CalibrationJob, opts: &CalibrateOptions) -> Result<CalibrationReport> {
    let started = std::time::Instant::now();
    let cal = &job.calibration;
    let trt = job.tensorrt;
    let set = job.image_set()?;
    let out = &job.out;
    let now = current_provenance(job, &set)?;
    let params = RangeParams::from_recipe(Some(cal));
    if !opts.force {
        if let Some(cache) = check_existing(out, &now)? {
            log::info!("{}: up to date, reusing it", out.join(CACHE_FILE).display());
            return Ok(CalibrationReport {
                status: CalibrationStatus::UpToDate,
                out: out.display().to_string(),
                cache: out.join(CACHE_FILE).display().to_string(),
                cache_header: format!("TRT-{}-{}", cache.version, cache.algorithm),
                tensorrt: trt.to_string(),
                algorithm: cal.algorithm,
                images: set.len(),
                skipped: vec![],
                tensors: cache.entries.len(),
                flagged: vec![],
                nonfinite_dropped: 0,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }

    let Gathered {
        hists,
        is_float,
        images: seq,
        skipped,
        graph_inputs,
    } = gather(job, set, opts)?;
    let t = std::time::Instant::now();
    let ranges = compute_all(&hists, &params, &graph_inputs);
    log::info!("ranges: {:.2} s", t.elapsed().as_secs_f64());
    let mut cache = CalibrationCache::new(trt, cal.algorithm);
    let mut plain = Vec::with_capacity(ranges.len());
    let mut flagged = Vec::new();
    for ((name, r), _) in ranges.iter().zip(&is_float).filter(|(_, f)| **f) {
        cache.push_amax(name.clone(), r.amax);
        plain.push((name.clone(), r.amax));
        if r.flagged {
            flagged.push(FlaggedTensor {
                tensor: name.clone(),
                amax: r.amax,
                max_abs: r.max_abs,
                clip_share: r.clip_share,
            });
        }
    }
    let dropped: u64 = hists.hists.iter().map(|h| h.nan() + h.inf()).sum();
    super::artifacts::write(out, &plain, cache.to_text()?.as_bytes(), &now)?;
    Ok(CalibrationReport {
        status: CalibrationStatus::Calibrated,
        out: out.display().to_string(),
        cache: out.join(CACHE_FILE).display().to_string(),
        cache_header: format!("TRT-{}-{}", cache.version, cache.algorithm),
        tensorrt: trt.to_string(),
        algorithm: cal.algorithm,
        images: seq,
        skipped: skipped
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect(),
        tensors: plain.len(),
        flagged,
        nonfinite_dropped: dropped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuse, before the histograms are allocated, a calibration that cannot fit: every
/// activation's histogram, what one image's run returns, and a batch of decoded inputs.
fn check_memory(
    job: &CalibrationJob,
    plan: &Plan,
    session: &OrtSession,
    exposed: &[String],
    in_flight: usize,
) -> Result<()> {
    let input = &job.input;
    let [_, c, h, w] = input.shape;
    let probe = BTreeMap::from([(input.tensor.clone(), vec![1, c, h, w])]);
    let (mut sizes, exact) = session.output_estimates(&probe)?;
    if !exact {
        // Dynamic dims the session could not resolve: ask again of a copy whose input is
        // declared at the contract's shape (one more session, only for such models).
        let fixed = crate::onnx::with_fixed_inputs(&job.model, &probe);
        sizes = OrtSession::from_model(&fixed, exposed)?
            .output_estimates(&probe)?
            .0;
    }
    let returned = sizes.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let hists = plan.histogram_bytes();
    // Decoded images in flight: the batch being run and the ones decoding ahead of it,
    // each as f32 plus its RGB8 decode (at most a full-size source image: counted at the
    // decoder's 1 GiB limit would refuse everything, so at 4x the contract's size).
    let per_image = (c * h * w * 4 + 4 * h * w * 3) as u64;
    let inputs = (in_flight as u64).saturating_mul(per_image);
    let need = hists.saturating_add(returned).saturating_add(inputs);
    use crate::util::memory::{check, gib};
    check(
        &job.model.path,
        &format!(
            "calibrating {} activations ({} of histograms, {} returned per image, {} of images decoding)",
            plan.names.len(),
            gib(hists),
            gib(returned),
            gib(inputs)
        ),
        need,
        "lower calibration.batch_size or calibrate on a machine with more memory",
    )
}

/// What one pass of the FP32 model over the calibration images gathered.
pub struct Gathered {
    /// Every activation's histogram, derived ones included (graph order).
    pub hists: HistogramSet,
    pub is_float: Vec<bool>,
    /// Images histogrammed, and the ones skipped as unreadable.
    pub images: usize,
    pub skipped: Vec<Skipped>,
    pub graph_inputs: Vec<String>,
}

/// Run the model over `set` and histogram every activation (the part of `calibrate` before
/// ranges are picked; public so checks can compare histograms, e.g. with `expose_all`).
pub fn gather(job: &CalibrationJob, set: ImageSet, opts: &CalibrateOptions) -> Result<Gathered> {
    let (model, cal, input) = (&*job.model, &job.calibration, &job.input);
    let graph = Graph::new(model);
    let plan = if opts.expose_all {
        Plan::expose_all(&graph)
    } else {
        Plan::new(&graph)
    };
    let graph_inputs = plan.graph_inputs();
    let exposed = plan.exposed();
    log::info!(
        "{} activations: {} returned by ONNX Runtime, {} derived from histograms",
        plan.names.len(),
        exposed.len(),
        plan.derived_count()
    );
    let t = std::time::Instant::now();
    let mut session = OrtSession::for_calibration(model, &exposed)?;
    log::info!("ONNX Runtime session: {:.2} s", t.elapsed().as_secs_f64());
    let in_flight = ImageStream::in_flight(cal.batch_size, opts.workers);
    check_memory(job, &plan, &session, &exposed, in_flight)?;
    let policy = if cal.drop_nonfinite {
        NonFinitePolicy::Drop
    } else {
        NonFinitePolicy::Error
    };
    let mut hists = plan.histograms(policy);
    let mut images = ImageStream::new(set, input, cal.batch_size, cal.on_unreadable, opts.workers)?;
    if let Some(d) = &opts.dump_inputs {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let collected = collect(
        &mut session,
        &mut images,
        &input.tensor,
        &plan,
        &mut hists,
        opts.dump_inputs.as_deref(),
    )?;
    let (seq, is_float) = (collected.images, collected.is_float);
    if seq == 0 {
        return Err(Error::Invalid(format!(
            "{}: no readable calibration image (skipped {}); point calibration.images at real images",
            cal.images.display(),
            images.skipped().len()
        )));
    }

    let t = std::time::Instant::now();
    plan.finish(&mut hists);
    log::info!(
        "derived and merged histograms: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let skipped = images.skipped().to_vec();
    Ok(Gathered {
        hists,
        is_float,
        images: seq,
        skipped,
        graph_inputs,
    })
}
