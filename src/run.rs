//! `trtforge run`: the outputs of a model over images (ONNX Runtime on CPU, or an engine on the
//! device through [`Infer`]), one `.npy` per image and output in the [`crate::data::dump`]
//! layout, and with `dump_inputs` every preprocessed input too.

use crate::data::{dump, ImageStream};
use crate::error::{Error, Result};
use crate::exec::{Infer, OrtSession};
use crate::recipe::RunJob;
use ndarray::Axis;
use serde::Serialize;

/// What a run wrote (`trtforge run --json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub model: String,
    pub images: usize,
    pub skipped: Vec<String>,
    /// Name and shape of each output, for one image.
    pub outputs: Vec<(String, Vec<usize>)>,
    pub out: String,
    pub dump_inputs: Option<String>,
    pub seconds: f64,
}

/// Run the recipe's ONNX model with ONNX Runtime on CPU.
pub fn run(job: &RunJob) -> Result<RunSummary> {
    let mut session = OrtSession::from_model(&job.model, &[])?;
    run_with(job, &mut session, &job.model.path.display().to_string())
}

/// Run whatever `exec` runs (an engine on the device) over the images, named `artifact`.
pub fn run_with(job: &RunJob, exec: &mut dyn Infer, artifact: &str) -> Result<RunSummary> {
    let input = &job.input;
    let mut stream =
        ImageStream::new(job.set.clone(), input, input.shape[0], job.on_unreadable, 0)?;
    let started = std::time::Instant::now();
    let (mut seq, mut shapes) = (0usize, Vec::new());
    let bar = crate::util::progress_bar(stream.total() as u64, "run");
    for batch in stream.by_ref() {
        let batch = batch?;
        let outputs = exec.infer(&[(input.tensor.as_str(), batch.tensor.view().into_dyn())])?;
        let n = batch.items.len();
        for (k, item) in batch.items.iter().enumerate() {
            let dir = dump::output_dir(&job.out, seq, &item.path);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            for (name, t) in &outputs {
                // Outputs keep the batch axis; split it when the model ran a batch.
                let one = if t.ndim() > 0 && t.shape()[0] == n && n > 1 {
                    t.index_axis(Axis(0), k).insert_axis(Axis(0)).to_owned()
                } else {
                    t.clone()
                };
                crate::data::npy::write_npy(&dump::output_file(&dir, name), &one.view())?;
                if seq == 0 {
                    shapes.push((name.clone(), one.shape().to_vec()));
                }
            }
            if let Some(d) = &job.dump_inputs {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                dump::dump_one(d, seq, &item.path, batch.tensor.index_axis(Axis(0), k))?;
            }
            seq += 1;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        model: artifact.to_string(),
        images: seq,
        skipped: stream
            .skipped()
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect(),
        outputs: shapes,
        out: job.out.display().to_string(),
        dump_inputs: job.dump_inputs.as_ref().map(|d| d.display().to_string()),
        seconds: started.elapsed().as_secs_f64(),
    })
}
