//! The validation images of `trtforge quantize`, preprocessed once, and what is measured on
//! them: model outputs, mAP, and the per-image matches the bootstrap resamples. The slice is
//! split into a selection part (the plan is chosen on it) and a confirmation part (the plan is
//! judged on it), so the figure a user reads was not fitted to the images it is measured on.

use crate::data::preprocess::preprocess_image;
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::eval::{match_images, DecodeParams, Evaluator, GroundTruth, Letterbox, Matched};
use crate::exec::OrtSession;
use crate::onnx::Model;
use crate::recipe::{Decoder, InputContract};
use ndarray::ArrayD;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Named outputs of a model, image by image.
pub type Outputs = Vec<Vec<(String, ArrayD<f32>)>>;

/// Preprocessed validation images and their ground truth.
pub struct Validation {
    pub paths: Vec<PathBuf>,
    pub inputs: Vec<ArrayD<f32>>,
    pub placements: Vec<Letterbox>,
    pub gt: GroundTruth,
    pub contract: InputContract,
}

impl Validation {
    pub fn load(set: &ImageSet, labels: &Path, contract: &InputContract) -> Result<Self> {
        let paths = set.paths().to_vec();
        let gt = GroundTruth::load(&paths, labels)?;
        let pre: Vec<(ArrayD<f32>, Letterbox)> = paths
            .par_iter()
            .map(|p| {
                // The preprocessing's own placement maps boxes back exactly.
                let (x, lb) = preprocess_image(p, contract)?;
                Ok((x.insert_axis(ndarray::Axis(0)).into_dyn(), lb))
            })
            .collect::<Result<_>>()?;
        let (inputs, placements) = pre.into_iter().unzip();
        Ok(Validation {
            paths,
            inputs,
            placements,
            gt,
            contract: contract.clone(),
        })
    }
    pub fn len(&self) -> usize {
        self.inputs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// (selection, confirmation): image i goes to confirmation when `floor((i + 1) * share)`
    /// steps past `floor(i * share)`, so the held-out images are spread evenly over the sorted
    /// folder (0.5: every other image) rather than being its tail. `share` 0 gives an empty
    /// confirmation part.
    pub fn split(self, share: f64) -> (Validation, Validation) {
        let held = |i: usize| held_out(i, share);
        let mut parts = [self.empty_like(), self.empty_like()];
        let images = self.gt.images.into_iter();
        for (i, (((p, x), lb), gt)) in self
            .paths
            .into_iter()
            .zip(self.inputs)
            .zip(self.placements)
            .zip(images)
            .enumerate()
        {
            let part = &mut parts[held(i) as usize];
            part.paths.push(p);
            part.inputs.push(x);
            part.placements.push(lb);
            part.gt.images.push(gt);
        }
        let [selection, confirmation] = parts;
        (selection, confirmation)
    }

    /// The first `n` images as their own slice.
    pub fn first(&self, n: usize) -> Validation {
        let n = n.min(self.len());
        Validation {
            paths: self.paths[..n].to_vec(),
            inputs: self.inputs[..n].to_vec(),
            placements: self.placements[..n].to_vec(),
            gt: GroundTruth {
                images: self.gt.images[..n].to_vec(),
            },
            contract: self.contract.clone(),
        }
    }

    fn empty_like(&self) -> Validation {
        Validation {
            paths: vec![],
            inputs: vec![],
            placements: vec![],
            gt: GroundTruth { images: vec![] },
            contract: self.contract.clone(),
        }
    }
}

/// Whether image i of the sorted validation set confirms (see [`Validation::split`]).
pub fn held_out(i: usize, share: f64) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

/// (selection, confirmation) sizes of a split of `n` images, before any is loaded.
pub fn split_sizes(n: usize, share: f64) -> (usize, usize) {
    let conf = (0..n).filter(|&i| held_out(i, share)).count();
    (n - conf, conf)
}

/// Refuse a validation set that shares an image (by content) with the calibration set.
pub fn check_disjoint(calibration: &ImageSet, validation: &ImageSet) -> Result<()> {
    let hash = |p: &PathBuf| -> Result<(String, PathBuf)> {
        Ok((
            crate::util::sha256_hex(&crate::util::input::read(p, crate::util::input::IMAGE)?),
            p.clone(),
        ))
    };
    let cal: HashMap<String, PathBuf> = calibration
        .paths()
        .par_iter()
        .map(hash)
        .collect::<Result<_>>()?;
    for (h, p) in validation
        .paths()
        .par_iter()
        .map(hash)
        .collect::<Result<Vec<_>>>()?
    {
        if let Some(c) = cal.get(&h) {
            return Err(Error::Invalid(format!(
                "{}: validation image has the same content as calibration image {}; \
                 make quantize.validation disjoint from calibration.images (e.g. skip/limit)",
                p.display(),
                c.display()
            )));
        }
    }
    Ok(())
}

/// Outputs of `model` on the first `n` validation images.
pub fn run_outputs(model: &Model, val: &Validation, n: usize) -> Result<Outputs> {
    let n = n.min(val.len());
    run_inputs(model, &val.contract.tensor, &val.inputs[..n])
}

/// Outputs of `model` on preprocessed inputs fed to its input `name`.
pub fn run_inputs(model: &Model, name: &str, inputs: &[ArrayD<f32>]) -> Result<Outputs> {
    let mut s = OrtSession::from_model(model, &[])?;
    inputs.iter().map(|x| s.run(&[(name, x.view())])).collect()
}

/// The first `n` images of `set`, preprocessed as the contract says (batch axis added).
pub fn preprocess_images(
    set: &ImageSet,
    n: usize,
    contract: &InputContract,
) -> Result<Vec<ArrayD<f32>>> {
    set.paths()
        .par_iter()
        .take(n)
        .map(|p| {
            Ok(preprocess_image(p, contract)?
                .0
                .insert_axis(ndarray::Axis(0))
                .into_dyn())
        })
        .collect()
}

/// mAP@0.5 and mAP@0.5:0.95 of `model` on the validation slice.
pub fn evaluate_map(
    model: &Model,
    val: &Validation,
    decoder: Decoder,
    params: &DecodeParams,
) -> Result<(f64, f64)> {
    map_of_outputs(&run_outputs(model, val, val.len())?, val, decoder, params)
}

/// mAP of outputs already computed on the whole slice.
pub fn map_of_outputs(
    outs: &Outputs,
    val: &Validation,
    decoder: Decoder,
    params: &DecodeParams,
) -> Result<(f64, f64)> {
    let r = matched_of_outputs(outs, val, decoder, params)?.score_all();
    Ok((r.map50, r.map50_95))
}

/// Per-image matches of outputs already computed on the whole slice (for the bootstrap).
pub fn matched_of_outputs(
    outs: &Outputs,
    val: &Validation,
    decoder: Decoder,
    params: &DecodeParams,
) -> Result<Matched> {
    let mut ev = Evaluator::new(
        decoder,
        *params,
        (val.contract.shape[2], val.contract.shape[3]),
    );
    for (o, lb) in outs.iter().zip(&val.placements) {
        ev.push_batch(o, std::slice::from_ref(lb))?;
    }
    match_images(&val.gt, ev.detections())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(n: usize) -> Validation {
        let contract: InputContract = serde_yaml_ng::from_str(
            "{tensor: x, shape: [1, 3, 2, 2], channel_order: rgb, resize: stretch}",
        )
        .unwrap();
        Validation {
            paths: (0..n).map(|i| PathBuf::from(format!("{i}.jpg"))).collect(),
            inputs: (0..n)
                .map(|i| ArrayD::from_elem(vec![1], i as f32))
                .collect(),
            placements: vec![
                Letterbox {
                    scale_x: 1.0,
                    scale_y: 1.0,
                    pad_left: 0,
                    pad_top: 0,
                    content_w: 2,
                    content_h: 2,
                    orig_w: 2,
                    orig_h: 2,
                };
                n
            ],
            gt: GroundTruth {
                images: (0..n)
                    .map(|i| crate::eval::ImageTruth {
                        image: format!("{i}.jpg").into(),
                        width: 1,
                        height: 1,
                        boxes: vec![],
                    })
                    .collect(),
            },
            contract,
        }
    }

    #[test]
    fn the_split_spreads_the_held_out_images_and_keeps_them_paired() {
        let (sel, conf) = slice(10).split(0.5);
        let names = |v: &Validation| -> Vec<String> {
            v.paths.iter().map(|p| p.display().to_string()).collect()
        };
        assert_eq!(names(&sel), ["0.jpg", "2.jpg", "4.jpg", "6.jpg", "8.jpg"]);
        assert_eq!(names(&conf), ["1.jpg", "3.jpg", "5.jpg", "7.jpg", "9.jpg"]);
        for v in [&sel, &conf] {
            for ((p, x), gt) in v.paths.iter().zip(&v.inputs).zip(&v.gt.images) {
                assert_eq!(p, &gt.image);
                assert_eq!(format!("{}.jpg", x[0]), p.display().to_string());
            }
        }
        let (sel, conf) = slice(12).split(0.25);
        assert_eq!((sel.len(), conf.len()), (9, 3));
        let (sel, conf) = slice(7).split(0.0);
        assert_eq!((sel.len(), conf.len()), (7, 0));
        for (n, share) in [(10, 0.5), (12, 0.25), (7, 0.0), (3, 0.5), (64, 0.9)] {
            let (sel, conf) = slice(n).split(share);
            assert_eq!(
                split_sizes(n, share),
                (sel.len(), conf.len()),
                "{n} {share}"
            );
        }
    }
}
