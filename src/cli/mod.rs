//! Subcommands, one file each. Exit codes: 0 ok, 1 failure, 2 usage error (clap),
//! 3 a step needs something this machine lacks (TensorRT, CUDA) after doing every step it could.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "trtforge",
    version,
    about = "ONNX detection models to TensorRT engines for Jetson Orin"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

mod args;
mod bench;
mod build;
mod bundle;
mod cache;
mod calibrate;
mod check;
mod compare;
mod doctor;
mod engine;
mod eval;
mod inspect;
mod matrix;
mod power;
mod prune;
mod quantize;
mod run;
mod synth;

#[derive(Subcommand)]
enum Command {
    /// Graph summary, MACs, channel-alignment lint and TensorRT/DLA support warnings.
    Inspect(inspect::Args),
    /// Validate a recipe against its model and data.
    Check(check::Args),
    /// What is available here (ONNX Runtime, CUDA, TensorRT, Jetson) and how to fix what is not.
    Doctor(doctor::Args),
    /// Write a small generated model (the bundled demo).
    Synth(synth::Args),
    /// Latency statistics and energy per inference (TensorRT engine or ONNX Runtime CPU).
    Bench(bench::BenchArgs),
    /// Power sensors alone: sample them, or parse a tegrastats log.
    #[command(subcommand)]
    Power(power::PowerCmd),
    /// Compare two bench reports; exit 1 on a regression.
    Compare(compare::CompareArgs),
    /// Execute the model with ONNX Runtime on CPU over images; save outputs as .npy.
    Run(run::Args),
    /// Detection mAP@0.5 and mAP@0.5:0.95 with ONNX Runtime against YOLO-format labels.
    Eval(eval::Args),
    /// INT8 calibration on CPU: TensorRT cache, range files, provenance.
    Calibrate(calibrate::Args),
    /// Decode or compare TensorRT calibration caches.
    Cache(cache::CacheArgs),
    /// Build a TensorRT engine and its manifest from a recipe.
    Build(build::BuildArgs),
    /// Q/DQ ONNX (explicit INT8) and the accuracy-aware precision plan.
    Quantize(quantize::Args),
    /// Structural channel pruning of the ONNX model, with least-squares recovery.
    Prune(prune::Args),
    /// Write a deployment bundle (folder + OCI image layout) from a recipe or a matrix cell.
    Bundle(bundle::BundleArgs),
    /// Check a bundle's files and this device against it before deploying.
    Verify(bundle::VerifyArgs),
    /// Nightly build matrix: plan cells for the CI engine, run one, collect the night.
    #[command(subcommand)]
    Matrix(matrix::MatrixCmd),
}

pub const EXIT_FAILURE: u8 = 1;
/// Everything possible was done, but a step needs software this machine lacks.
pub const EXIT_UNAVAILABLE: u8 = 3;

pub fn main() -> ExitCode {
    trtforge::exec::install_panic_filter();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Check(a) => check::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Power(c) => power::run(c),
        Command::Compare(a) => compare::run(a),
        Command::Run(a) => run::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Cache(a) => cache::run(a),
        Command::Build(a) => build::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Matrix(c) => matrix::run(c),
        Command::Bundle(a) => bundle::bundle(a),
        Command::Verify(a) => bundle::verify_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            // A missing library (ONNX Runtime, TensorRT, CUDA) is not a failure of the input.
            let unavailable = matches!(
                e.downcast_ref::<trtforge::Error>(),
                Some(trtforge::Error::Unavailable { .. })
            );
            ExitCode::from(if unavailable {
                EXIT_UNAVAILABLE
            } else {
                EXIT_FAILURE
            })
        }
    }
}

/// The error and its causes on one line, each cause once: trtforge's messages already say
/// their cause (an ONNX Runtime or callback error keeps it as its source too).
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}
