//! `trtforge eval`: run a model over a labelled image set with ONNX Runtime and score it.

use super::decode::DecodeParams;
use super::labels::{default_labels_dir, read_class_names, GroundTruth};
use super::report::{EvalReport, Evaluator, Timing};
use crate::data::{ImageSet, ImageStream};
use crate::error::Result;
use crate::exec::OrtSession;
use crate::recipe::{LoadedRecipe, OnUnreadable, Order};
use std::path::PathBuf;
use std::time::Instant;

/// Command-line overrides of the recipe's `model` and `eval` section.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    pub model: Option<PathBuf>,
    pub images: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub limit: Option<usize>,
}

pub fn evaluate_recipe(recipe: &LoadedRecipe, opts: &EvalOptions) -> Result<EvalReport> {
    let r = &recipe.recipe;
    let decoder = r.decoder.ok_or_else(|| {
        recipe.field_error(
            "decoder",
            "eval needs `decoder: yolox | nanodet | fastestdet | yolov8`",
        )
    })?;
    let model = match &opts.model {
        Some(m) => m.clone(),
        None => {
            crate::recipe::check_model(recipe)?;
            recipe.model_path()
        }
    };
    let eval = r.eval.as_ref();
    let images = match (&opts.images, eval) {
        (Some(i), _) => i.clone(),
        (None, Some(e)) => recipe.resolve(&e.images),
        (None, None) => {
            return Err(recipe.field_error(
                "eval",
                "no eval section: add eval.images/eval.labels or pass --images and --labels",
            ))
        }
    };
    let labels = match (&opts.labels, eval) {
        (Some(l), _) => l.clone(),
        (None, Some(e)) if opts.images.is_none() => recipe.resolve(&e.labels),
        _ => default_labels_dir(&images),
    };
    let limit = opts.limit.or(eval.and_then(|e| e.limit));
    let set = ImageSet::from_path(&images, Order::Sorted, 0, limit)?;
    let gt = GroundTruth::load(set.paths(), &labels)?;
    let names = labels
        .parent()
        .map(|p| p.join("classes.txt"))
        .filter(|p| p.is_file())
        .map(|p| read_class_names(&p))
        .transpose()?;

    let input = &r.input;
    let mut session = OrtSession::open(&model, &[])?;
    let mut ev = Evaluator::new(
        decoder,
        DecodeParams::from_eval_set(eval),
        (input.shape[2], input.shape[3]),
    );
    let mut timing = Timing::default();
    let mut stream = ImageStream::new(set, input, input.shape[0], OnUnreadable::Fail, 0)?;
    let bar = crate::util::progress_bar(stream.total() as u64, "eval");
    let mut t = Instant::now();
    for batch in stream.by_ref() {
        let batch = batch?;
        timing.preprocess_s += t.elapsed().as_secs_f64();
        let t_inf = Instant::now();
        let outs = session.run(&[(input.tensor.as_str(), batch.tensor.view().into_dyn())])?;
        timing.inference_s += t_inf.elapsed().as_secs_f64();
        let placements: Vec<_> = batch.items.iter().map(|i| i.letterbox).collect();
        ev.push_batch(&outs, &placements)?;
        bar.inc(batch.items.len() as u64);
        t = Instant::now();
    }
    bar.finish_and_clear();
    ev.finish(&model.display().to_string(), &gt, names.as_deref(), timing)
}
