//! The calibration loop: decode, run ONNX Runtime, histogram. Sequential on purpose: running
//! the next image while histogramming this one was measured no faster on two cores (both
//! halves are CPU-bound) and kept two images' outputs alive.

use super::capture::{Plan, Source};
use super::histogram::HistogramSet;
use crate::data::{dump, ImageStream};
use crate::error::{Error, Result};
use crate::exec::OrtSession;
use ndarray::Axis;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What the loop gathered.
pub struct Collected {
    pub images: usize,
    /// Per tensor (graph order): whether it held float values (non-float shape arithmetic
    /// is left out of every file).
    pub is_float: Vec<bool>,
}

/// Run `session` over every image of `stream`, histogramming per `plan` into `hists`.
pub fn collect(
    session: &mut OrtSession,
    stream: &mut ImageStream,
    input_name: &str,
    plan: &Plan,
    hists: &mut HistogramSet,
    dump_inputs: Option<&Path>,
) -> Result<Collected> {
    let index: HashMap<&str, usize> = plan
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let input_index = *index
        .get(input_name)
        .ok_or_else(|| Error::Contract(format!("the model has no input '{input_name}'")))?;
    let bar = crate::util::progress_bar(stream.total() as u64, "calibrate");
    let mut seen_float = vec![false; plan.names.len()];
    // Where the time goes (printed with -v).
    let (mut seq, mut t_wait, mut t_run, mut t_hist) = (0usize, 0f64, 0f64, 0f64);
    let mut t0 = Instant::now();
    for batch in stream.by_ref() {
        t_wait += t0.elapsed().as_secs_f64();
        let batch = batch?;
        // The shared models have a static batch of 1: run image by image. Histograms do not
        // depend on the split, so the cache is the same whatever the batch size.
        for (k, item) in batch.items.iter().enumerate() {
            let one = batch.tensor.index_axis(Axis(0), k);
            if let Some(d) = dump_inputs {
                dump::dump_one(d, seq, &item.path, one.view())?;
            }
            // A batch slice is already contiguous: borrowed, not copied.
            let one = one.insert_axis(Axis(0));
            let x = one.as_standard_layout();
            let t = Instant::now();
            let mut h_seconds = 0f64;
            session.run_with(&[(input_name, x.view().into_dyn())], |outs| {
                let t = Instant::now();
                let mut values: Vec<Option<&[f32]>> = vec![None; plan.names.len()];
                values[input_index] = x.as_slice();
                for (name, v) in outs {
                    if let Some(&i) = index.get(name) {
                        if plan.sources[i] == Source::Exposed {
                            values[i] = Some(v.as_slice().ok_or_else(|| {
                                Error::internal(format!("output {name} is not contiguous"))
                            })?);
                        }
                    }
                }
                for (f, v) in seen_float.iter_mut().zip(&values) {
                    *f |= v.is_some();
                }
                let r = plan.add_image(hists, &values, &item.path);
                h_seconds = t.elapsed().as_secs_f64();
                r
            })?;
            t_hist += h_seconds;
            t_run += t.elapsed().as_secs_f64() - h_seconds;
            seq += 1;
            bar.inc(1);
        }
        t0 = Instant::now();
    }
    bar.finish_and_clear();
    log::info!(
        "calibration loop: {t_wait:.2} s waiting for images, {t_run:.2} s ONNX Runtime, \
         {t_hist:.2} s histograms"
    );
    Ok(Collected {
        images: seq,
        is_float: plan.float_tensors(&seen_float),
    })
}
