//! An evaluation run: collect detections image by image, then score them and report
//! (the JSON that `trtforge eval --json` prints, and a human table).

use super::decode::DecodeParams;
use super::detection::Detection;
use super::labels::GroundTruth;
use super::map::{evaluate, ClassAp};
use crate::data::preprocess::Letterbox;
use crate::error::{Error, Result};
use crate::recipe::Decoder;
use ndarray::{ArrayD, Axis};
use serde::Serialize;
use std::time::Instant;

impl DecodeParams {
    /// Defaults (score 0.001, IoU 0.65, 100 per image) with the given thresholds.
    pub fn with_thresholds(score: Option<f32>, iou: Option<f32>) -> Self {
        let d = DecodeParams::default();
        DecodeParams {
            score_threshold: score.unwrap_or(d.score_threshold),
            iou_threshold: iou.unwrap_or(d.iou_threshold),
            ..d
        }
    }
}

/// Seconds spent per stage, summed over the run.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Timing {
    /// Image decoding and preprocessing (measured by the caller).
    pub preprocess_s: f64,
    /// Model execution (measured by the caller).
    pub inference_s: f64,
    /// Decoding, NMS (measured here).
    pub decode_s: f64,
    /// Scoring against the ground truth (measured here).
    pub map_s: f64,
}

/// Per-class AP with the class name when known.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassReport {
    #[serde(flatten)]
    pub ap: ClassAp,
    pub name: Option<String>,
}

/// What `trtforge eval --json` prints (field names are stable).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    pub model: String,
    pub decoder: Decoder,
    pub images: usize,
    pub detections: usize,
    pub map50: f64,
    pub map50_95: f64,
    pub score_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: usize,
    pub per_class: Vec<ClassReport>,
    pub timing: Timing,
}

impl EvalReport {
    /// The human table: summary line, then one line per class with ground truth.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{}: {} images, {} detections: mAP@0.5 {:.4}  mAP@0.5:0.95 {:.4}\n{:>5}  {:<16} {:>6} {:>6} {:>8} {:>8}\n",
            self.model, self.images, self.detections, self.map50, self.map50_95, "class", "name", "gt", "dets", "AP50", "AP50:95"
        );
        for c in &self.per_class {
            s += &format!(
                "{:>5}  {:<16} {:>6} {:>6} {:>8.4} {:>8.4}\n",
                c.ap.class,
                c.name.as_deref().unwrap_or("-"),
                c.ap.ground_truth,
                c.ap.detections,
                c.ap.ap50,
                c.ap.ap50_95
            );
        }
        let t = &self.timing;
        s += &format!(
            "seconds: preprocess {:.2}, inference {:.2}, decode+NMS {:.2}, mAP {:.2}\n",
            t.preprocess_s, t.inference_s, t.decode_s, t.map_s
        );
        s
    }
}

/// Collects detections image by image, in the ground truth's image order.
pub struct Evaluator {
    decoder: Decoder,
    params: DecodeParams,
    input_hw: (usize, usize),
    detections: Vec<Vec<Detection>>,
    decode_s: f64,
}

impl Evaluator {
    pub fn new(decoder: Decoder, params: DecodeParams, input_hw: (usize, usize)) -> Self {
        Evaluator {
            decoder,
            params,
            input_hw,
            detections: Vec::new(),
            decode_s: 0.0,
        }
    }

    /// Decode the outputs of one batch; `placements[k]` is how image k of the batch was placed.
    /// With several images, every output must carry the batch on axis 0.
    pub fn push_batch(
        &mut self,
        outputs: &[(String, ArrayD<f32>)],
        placements: &[Letterbox],
    ) -> Result<()> {
        let t = Instant::now();
        if placements.len() == 1 {
            let d = self
                .decoder
                .decode(outputs, self.input_hw, &placements[0], &self.params)?;
            self.detections.push(d);
        } else {
            let n = placements.len();
            for (k, lb) in placements.iter().enumerate() {
                let one: Vec<(String, ArrayD<f32>)> = outputs
                    .iter()
                    .map(|(name, a)| {
                        if a.ndim() == 0 || a.shape()[0] != n {
                            return Err(Error::Contract(format!(
                                "output {name} {:?} has no batch axis of {n}; evaluate this model with input.shape N = 1",
                                a.shape()
                            )));
                        }
                        Ok((name.clone(), a.index_axis(Axis(0), k).insert_axis(Axis(0)).to_owned()))
                    })
                    .collect::<Result<_>>()?;
                let d = self.decoder.decode(&one, self.input_hw, lb, &self.params)?;
                self.detections.push(d);
            }
        }
        self.decode_s += t.elapsed().as_secs_f64();
        Ok(())
    }

    pub fn detections(&self) -> &[Vec<Detection>] {
        &self.detections
    }

    /// Score against `gt` (same image order). `names[c]` labels class c in the report;
    /// `timing` carries the caller's preprocessing and inference seconds.
    pub fn finish(
        self,
        model: &str,
        gt: &GroundTruth,
        names: Option<&[String]>,
        mut timing: Timing,
    ) -> Result<EvalReport> {
        let t = Instant::now();
        let r = evaluate(gt, &self.detections)?;
        timing.decode_s = self.decode_s;
        timing.map_s = t.elapsed().as_secs_f64();
        let per_class = r
            .per_class
            .into_iter()
            .map(|ap| ClassReport {
                name: names.and_then(|n| n.get(ap.class as usize).cloned()),
                ap,
            })
            .collect();
        Ok(EvalReport {
            model: model.to_string(),
            decoder: self.decoder,
            images: r.images,
            detections: self.detections.iter().map(Vec::len).sum(),
            map50: r.map50,
            map50_95: r.map50_95,
            score_threshold: self.params.score_threshold,
            iou_threshold: self.params.iou_threshold,
            max_detections: self.params.max_detections,
            per_class,
            timing,
        })
    }
}
