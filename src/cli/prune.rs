//! `trtforge prune RECIPE`: structural channel pruning of the recipe's ONNX model, with
//! least-squares recovery on its calibration images; writes the pruned model, a recipe for it
//! and the report into `--out`.

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::prune::{self, job::pruned_recipe, report::explain, Criterion, Measure, PruneJob};
use trtforge::recipe::LoadedRecipe;
use trtforge::util::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML): its model, input contract, calibration images (recovery) and eval set.
    recipe: PathBuf,
    /// Share of the measure to remove, 0 < R < 1 (the last of --steps when those are given).
    #[arg(long)]
    ratio: Option<f64>,
    /// What the ratio counts.
    #[arg(long, value_enum, default_value = "macs")]
    by: Measure,
    /// Channel importance (default: bn when the export kept BatchNormalization, else output
    /// when the recipe has calibration images and a decoder, else l1).
    #[arg(long, value_enum)]
    criterion: Option<Criterion>,
    /// Pruned widths are multiples of N (8: FP16 tensor cores, 32: INT8).
    #[arg(long, default_value_t = 8)]
    align: usize,
    /// Every channel set keeps at least this share of its width.
    #[arg(long, default_value_t = 0.25)]
    min_keep: f64,
    /// Progressive schedule of cumulative ratios, refit after each: 0.1,0.2,0.3.
    #[arg(long, value_delimiter = ',')]
    steps: Vec<f64>,
    /// Remove channels without refitting the layers that read them.
    #[arg(long)]
    no_recover: bool,
    /// Calibration images recovery uses (the first N of the recipe's calibration set).
    #[arg(long, default_value_t = 16)]
    recover_images: usize,
    /// Output positions sampled per image and layer for recovery.
    #[arg(long, default_value_t = 1024)]
    recover_positions: usize,
    /// Skip the mAP evaluation of the original and pruned models.
    #[arg(long)]
    no_eval: bool,
    /// Output folder (default: `<recipe output>/pruned`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the dependency groups and what cannot be pruned (alone: without --ratio/--steps,
    /// nothing is pruned).
    #[arg(long)]
    explain: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn check(a: &Args) -> Result<Vec<f64>> {
    let steps = match (&a.ratio, a.steps.is_empty()) {
        (Some(r), true) => vec![*r],
        (None, false) => a.steps.clone(),
        (Some(r), false) if a.steps.last() == Some(r) => a.steps.clone(),
        (Some(r), false) => {
            bail!("--ratio {r} differs from the last of --steps; give one or make them agree")
        }
        (None, true) => {
            bail!("give --ratio R (for example 0.2) or --steps 0.1,0.2,0.3 (or --explain alone)")
        }
    };
    if let Some(bad) = steps
        .iter()
        .find(|r| !(r.is_finite() && **r > 0.0 && **r < 1.0))
    {
        bail!("--ratio/--steps value {bad} is out of range: each must be above 0 and below 1");
    }
    if steps.windows(2).any(|w| w[1] <= w[0]) {
        bail!("--steps must increase, for example 0.1,0.2,0.3");
    }
    if !(1..=256).contains(&a.align) {
        bail!(
            "--align {} is out of range: 1 to 256 (8 for FP16, 32 for INT8)",
            a.align
        );
    }
    if !(a.min_keep.is_finite() && a.min_keep > 0.0 && a.min_keep <= 1.0) {
        bail!(
            "--min-keep {} is out of range: above 0, at most 1",
            a.min_keep
        );
    }
    if a.recover_images == 0 || a.recover_positions == 0 {
        bail!("--recover-images and --recover-positions must be at least 1 (or prune with --no-recover)");
    }
    Ok(steps)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let recipe = LoadedRecipe::load(&a.recipe)?;
    let job = PruneJob::from_recipe(recipe)?;
    if a.explain {
        let (analysis, _) = prune::analyse(&job)?;
        print!("{}", explain(&analysis));
        if a.ratio.is_none() && a.steps.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let steps = check(&a)?;
    let settings = prune::PruneSettings {
        by: a.by,
        steps,
        criterion: a.criterion,
        align: a.align,
        min_keep: a.min_keep,
        recover: !a.no_recover,
        recover_images: a.recover_images,
        recover_positions: a.recover_positions,
    };
    let mut job = job;
    if a.no_eval {
        job.eval = None;
    }
    let quiet = a.json;
    let pruned = prune::prune(&job, &settings, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    let out = a
        .out
        .unwrap_or_else(|| job.recipe.output_dir().join("pruned"));
    let out = trtforge::recipe::normalize(&std::env::current_dir()?.join(out));
    let model_path = out.join(&pruned.model.path);
    // `<recipe>-pruned.yaml`: a matrix cell is named after its recipe file.
    let stem = job
        .recipe
        .path
        .file_stem()
        .map_or("recipe".into(), |s| s.to_string_lossy().into_owned());
    let recipe_path = out.join(format!("{stem}-pruned.yaml"));
    let mut report = pruned.report;
    report.pruned_model = model_path.display().to_string();
    // Everything is computed before anything is written.
    let model_bytes = pruned.model.to_bytes()?;
    let recipe = pruned_recipe(&job.recipe, &model_path, &out);
    let recipe_text = format!(
        "# Written by `trtforge prune` from {}: the same settings for the pruned model.\n{}",
        job.recipe.path.display(),
        serde_yaml_ng::to_string(&recipe)?
    );
    let json = serde_json::to_string_pretty(&report)?;
    let md = report.markdown();
    write_atomic(&model_path, &model_bytes)?;
    write_atomic(&recipe_path, recipe_text.as_bytes())?;
    write_atomic(&out.join("prune_report.md"), md.as_bytes())?;
    write_atomic(&out.join("prune_report.json"), json.as_bytes())?;
    if a.json {
        println!("{json}");
    } else {
        print!("{md}");
        println!(
            "\nwrote {} and {}",
            model_path.display(),
            recipe_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
