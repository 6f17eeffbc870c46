//! `trtforge run RECIPE`: run the model with ONNX Runtime on CPU over images, preprocessed
//! per the recipe, and save every output as .npy (and, with --dump-inputs, every input).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::recipe::{LoadedRecipe, RunOverrides};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::args::RecipeImages,
    /// Where to write outputs: <out>/<NNNNNN>_<image>/<output>.npy (default: <recipe output>/run).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write each preprocessed input as one float32 NCHW .npy (names sort in stream order).
    #[arg(long)]
    dump_inputs: Option<PathBuf>,
    /// Skip unreadable images (counted and reported) instead of failing.
    #[arg(long)]
    skip_unreadable: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let i = a.input;
    let job = LoadedRecipe::load(&i.recipe)?.run_job(&RunOverrides {
        model: i.model,
        images: i.images,
        limit: i.limit,
        out: a.out,
        dump_inputs: a.dump_inputs,
        skip_unreadable: a.skip_unreadable,
    })?;
    let summary = match &i.engine {
        Some(e) => super::engine::with_engine(e, job.input.shape[0], |x| {
            trtforge::run::run_with(&job, x, &e.display().to_string())
        })?,
        None => trtforge::run::run(&job)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "ran {} on {} images in {:.2} s -> {}",
            summary.model, summary.images, summary.seconds, summary.out
        );
        for (n, s) in &summary.outputs {
            println!("  output {n} {s:?}");
        }
        for s in &summary.skipped {
            eprintln!("warning: skipped {s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
