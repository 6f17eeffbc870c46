//! `trtforge eval`: run a model over a labelled image set and score it: the ONNX model with
//! ONNX Runtime, or any [`Infer`] (a TensorRT engine on the device).

use super::decode::DecodeParams;
use super::labels::{read_class_names, GroundTruth};
use super::report::{EvalReport, Evaluator, Timing};
use crate::data::{ImageStream, OnUnreadable};
use crate::error::Result;
use crate::exec::{Infer, OrtSession};
use crate::recipe::EvalJob;
use std::time::Instant;

/// Score the recipe's ONNX model with ONNX Runtime on CPU.
pub fn evaluate(job: &EvalJob) -> Result<EvalReport> {
    let mut session = OrtSession::from_model(&job.model, &[])?;
    evaluate_with(job, &mut session, &job.model.path.display().to_string())
}

/// Score whatever `exec` runs (an engine on the device), named `artifact` in the report.
pub fn evaluate_with(job: &EvalJob, exec: &mut dyn Infer, artifact: &str) -> Result<EvalReport> {
    let gt = GroundTruth::load(job.set.paths(), &job.labels)?;
    let names = job
        .class_names
        .as_deref()
        .map(read_class_names)
        .transpose()?;
    let input = &job.input;
    let mut ev = Evaluator::new(
        job.decoder,
        DecodeParams::with_thresholds(job.thresholds.score, job.thresholds.iou),
        (input.shape[2], input.shape[3]),
    );
    let mut timing = Timing::default();
    let mut stream = ImageStream::new(
        job.set.clone(),
        input,
        input.shape[0],
        OnUnreadable::Fail,
        0,
    )?;
    let bar = crate::util::progress_bar(stream.total() as u64, "eval");
    let mut t = Instant::now();
    for batch in stream.by_ref() {
        let batch = batch?;
        timing.preprocess_s += t.elapsed().as_secs_f64();
        let t_inf = Instant::now();
        let outs = exec.infer(&[(input.tensor.as_str(), batch.tensor.view().into_dyn())])?;
        timing.inference_s += t_inf.elapsed().as_secs_f64();
        let placements: Vec<_> = batch.items.iter().map(|i| i.letterbox).collect();
        ev.push_batch(&outs, &placements)?;
        bar.inc(batch.items.len() as u64);
        t = Instant::now();
    }
    bar.finish_and_clear();
    ev.finish(artifact, &gt, names.as_deref(), timing)
}
