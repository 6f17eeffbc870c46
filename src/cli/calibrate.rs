//! `trtforge calibrate RECIPE`: INT8 ranges on CPU, written as a TensorRT calibration cache.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::calib::calibrate::{calibrate, CalibrateOptions};
use trtforge::recipe::{Algorithm, CalibrationOverrides, LoadedRecipe};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML).
    recipe: PathBuf,
    /// Calibration images (folder or list file), instead of the recipe's.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Use at most N images.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum)]
    algorithm: Option<AlgorithmArg>,
    /// Output folder (default: the recipe's `output`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write each preprocessed image as one float32 NCHW .npy (names sort in stream order).
    #[arg(long)]
    dump_inputs: Option<PathBuf>,
    /// Recalibrate even if a cache exists (a stale cache is otherwise refused).
    #[arg(long)]
    force: bool,
    /// Ask ONNX Runtime for every activation instead of deriving reshapes, concats and
    /// element-wise activations from their inputs (about 2x slower; a cross-check).
    #[arg(long)]
    expose_all: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AlgorithmArg {
    Entropy,
    Minmax,
    Percentile,
    Mse,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Entropy => Algorithm::Entropy,
            AlgorithmArg::Minmax => Algorithm::Minmax,
            AlgorithmArg::Percentile => Algorithm::Percentile,
            AlgorithmArg::Mse => Algorithm::Mse,
        }
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let recipe = LoadedRecipe::load(&a.recipe)?;
    let job = recipe.calibration_job(&CalibrationOverrides {
        images: a.images,
        limit: a.limit,
        algorithm: a.algorithm.map(Into::into),
        out: a.out,
    })?;
    let opts = CalibrateOptions {
        dump_inputs: a.dump_inputs,
        force: a.force,
        workers: 0,
        expose_all: a.expose_all,
    };
    let report = calibrate(&job, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {} ({})",
        report.status, report.cache, report.cache_header
    );
    println!(
        "{} images, {} tensors, {:?}, TensorRT {}, {:.1} s",
        report.images, report.tensors, report.algorithm, report.tensorrt, report.seconds
    );
    for s in &report.skipped {
        eprintln!("warning: skipped unreadable image {s}");
    }
    if report.nonfinite_dropped > 0 {
        eprintln!(
            "warning: dropped {} NaN/Inf activation values",
            report.nonfinite_dropped
        );
    }
    if !report.flagged.is_empty() {
        println!("tensors clipping more than the recipe's max_clip_share:");
        for f in &report.flagged {
            println!(
                "  {:<48} amax {:>10.4} max {:>10.4} clips {:.4}%",
                f.tensor,
                f.amax,
                f.max_abs,
                100.0 * f.clip_share
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
