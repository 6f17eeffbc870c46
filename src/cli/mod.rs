//! Subcommands, one file each. Exit codes: 0 ok, 1 failure, 2 usage error (clap),
//! 3 a step needs something this machine lacks (TensorRT, CUDA) after doing every step it could.

mod build;

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

#[derive(Subcommand)]
enum Command {
    /// Build a TensorRT engine and its manifest from a recipe.
    Build(build::BuildArgs),
}

pub const EXIT_FAILURE: u8 = 1;
/// Everything possible was done, but a step needs software this machine lacks.
pub const EXIT_UNAVAILABLE: u8 = 3;

pub fn main() -> ExitCode {
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
        Command::Build(a) => build::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
