//! `trtforge run RECIPE`: run the model with ONNX Runtime on CPU over images, preprocessed
//! per the recipe, and save every output as .npy (and, with --dump-inputs, every input).

use anyhow::{Context, Result};
use ndarray::Axis;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::data::{dump, ImageSet, ImageStream};
use trtforge::exec::OrtSession;
use trtforge::recipe::{self, LoadedRecipe, OnUnreadable, Order};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML): model and input contract.
    recipe: PathBuf,
    /// Run this model instead of the recipe's (same input contract).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Image folder or list file (default: the recipe's eval images, else its calibration images).
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long)]
    limit: Option<usize>,
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

#[derive(serde::Serialize)]
struct Summary {
    model: String,
    images: usize,
    skipped: Vec<String>,
    outputs: Vec<(String, Vec<usize>)>,
    out: String,
    dump_inputs: Option<String>,
    seconds: f64,
}

fn sanitize(name: &str) -> String {
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

pub fn run(a: Args) -> Result<ExitCode> {
    let loaded = LoadedRecipe::load(&a.recipe)?;
    let r = &loaded.recipe;
    let model_path = match &a.model {
        Some(m) => m.clone(),
        None => {
            recipe::check_model(&loaded)?;
            loaded.model_path()
        }
    };
    let images = match (&a.images, &r.eval, &r.calibration) {
        (Some(i), _, _) => i.clone(),
        (None, Some(e), _) => loaded.resolve(&e.images),
        (None, None, Some(c)) => loaded.resolve(&c.images),
        _ => anyhow::bail!(
            "{}: no images: pass --images DIR or add an eval or calibration section",
            a.recipe.display()
        ),
    };
    let set = ImageSet::from_path(&images, Order::Sorted, 0, a.limit)?;
    let policy = if a.skip_unreadable {
        OnUnreadable::Skip
    } else {
        OnUnreadable::Fail
    };
    let mut images_stream = ImageStream::new(set, &r.input, r.input.shape[0], policy, 0)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| loaded.output_dir().join("run"));
    let mut session = OrtSession::open(&model_path, &[])?;
    let started = std::time::Instant::now();
    let (mut seq, mut shapes) = (0usize, Vec::new());
    let bar = trtforge::util::progress_bar(images_stream.total() as u64, "run");
    for batch in images_stream.by_ref() {
        let batch = batch?;
        let outputs = session.run(&[(r.input.tensor.as_str(), batch.tensor.view().into_dyn())])?;
        for (k, item) in batch.items.iter().enumerate() {
            let stem = dump::dump_file_name(seq, &item.path);
            let dir = out.join(stem.trim_end_matches(".npy"));
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            for (name, t) in &outputs {
                // Outputs keep the batch axis; split it when the model ran a batch.
                let one =
                    if t.ndim() > 0 && t.shape()[0] == batch.items.len() && batch.items.len() > 1 {
                        t.index_axis(Axis(0), k).insert_axis(Axis(0)).to_owned()
                    } else {
                        t.clone()
                    };
                trtforge::data::npy::write_npy(
                    &dir.join(format!("{}.npy", sanitize(name))),
                    &one.view(),
                )?;
                if seq == 0 {
                    shapes.push((name.clone(), one.shape().to_vec()));
                }
            }
            if let Some(d) = &a.dump_inputs {
                std::fs::create_dir_all(d).with_context(|| d.display().to_string())?;
                dump::dump_one(d, seq, &item.path, batch.tensor.index_axis(Axis(0), k))?;
            }
            seq += 1;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let summary = Summary {
        model: model_path.display().to_string(),
        images: seq,
        skipped: images_stream
            .skipped()
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect(),
        outputs: shapes,
        out: out.display().to_string(),
        dump_inputs: a.dump_inputs.as_ref().map(|d| d.display().to_string()),
        seconds: started.elapsed().as_secs_f64(),
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
