//! The `output` criterion: how far the model's outputs move when a set loses channels,
//! measured end to end on calibration images, so that the selection spends the removal where
//! it hurts the detector least.
//!
//! Why: filter norms (and the per-layer `recon` costs) rank the channels of one layer well,
//! but not layers against each other. A channel of the stem and one of a head branch with
//! the same norm do not cost the detector the same, nor save the same MACs. Measured on
//! YOLOX-nano at 20% of MACs removed, with recovery: `l1` keeps 0.0563 of 0.3359 mAP (the
//! README has this criterion's figure beside it).
//!
//! How: one copy of the model reads every consumer's input `x` through a 1x1 Conv whose
//! weights and bias are graph inputs, so one ONNX Runtime session measures every candidate
//! without a rebuild (identity weights: the model itself). Removing channels R of a tensor
//! replaces them by their linear prediction from the kept channels K at the same position,
//! `x_R ≈ μ_R + A (x_K - μ_K)` with `A = Σ_RK Σ_KK^-1` from the channel covariance on the
//! images. That is what the refit can give back at the least: a refit consumer reproduces
//! any linear function of its kept inputs, so this measures the error recovery leaves, not
//! the error of slicing, and prefers channels the others can stand in for (He et al.'s
//! premise). Measured: ranking by the error of mean-filled channels instead chose channels
//! whose removal the refit could not undo (refit layers' output error 0.28 against `l1`'s
//! 0.14 at 20% of MACs) and scored 0.0347 mAP. For each set, the first k chunks of
//! its order (the `l1` order) are removed, every other set whole, and the error is
//! [`feature_error`], a squared error, which adds over independent perturbations; so the
//! selection treats sets as independent, and a schedule (`--steps`) measures again on the
//! pruned and refit model at every step.

use super::groups::{Analysis, Use};
use super::recover::{cholesky, cholesky_solve, RecoverSettings};
use super::select::SetOrder;
use crate::data::preprocess::preprocess_image;
use crate::error::Result;
use crate::eval::{match_images, DecodeParams, Evaluator, GroundTruth, ImageTruth, Letterbox};
use crate::exec::OrtSession;
use crate::onnx::{node, value_info, Graph, Model, NodeId, Patch};
use crate::quant::plan::Outputs;
use crate::recipe::Decoder;
use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Images the curves are measured on: few, because every chunk of every set is one pass over
/// them (the error is an average; its ranking, not its value, is what matters).
pub const IMAGES: usize = 8;

/// Ridge on the kept channels' covariance, relative to its mean diagonal: keeps the solve
/// stable when kept channels are collinear (a dead channel is constant).
const RIDGE: f64 = 1e-4;

/// How a candidate's outputs are compared with the model's.
#[derive(Debug, Clone, Copy)]
pub enum Compare {
    /// Decode both and score the candidate's detections against the model's own confident
    /// ones (score at least [`PSEUDO_LABEL_SCORE`]) as ground truth: error = 1 - mAP@0.5:0.95.
    Detections(Decoder, DecodeParams),
    /// No decoder in the recipe: [`feature_error`] on the raw outputs.
    Features,
}

/// Score from which the model's own detections count as ground truth for the agreement
/// (the confidence Ultralytics' `predict` keeps by default).
pub const PSEUDO_LABEL_SCORE: f32 = 0.25;

/// A consumer input read through the 1x1 Conv: its graph inputs and channel statistics.
struct Masked {
    tensor: String,
    weight: String,
    bias: String,
    rank: usize,
    channels: usize,
    mean: Array1<f64>,
    /// Channel covariance over every position of the images.
    cov: Array2<f64>,
}

impl Masked {
    fn weight_dims(&self) -> Vec<usize> {
        let mut d = vec![self.channels, self.channels];
        d.resize(self.rank, 1);
        d
    }

    /// Weights and bias that pass the kept channels and predict the `removed` ones.
    fn feeds(&self, removed: &[bool]) -> (ArrayD<f32>, ArrayD<f32>) {
        let c = self.channels;
        let mut w = Array2::<f64>::eye(c);
        let mut b = Array1::<f64>::zeros(c);
        let kept: Vec<usize> = (0..c).filter(|&i| !removed[i]).collect();
        let gone: Vec<usize> = (0..c).filter(|&i| removed[i]).collect();
        if !gone.is_empty() {
            for &r in &gone {
                w[[r, r]] = 0.0;
                b[r] = self.mean[r];
            }
            if !kept.is_empty() {
                let mut kk = Array2::<f64>::zeros((kept.len(), kept.len()));
                let mut kr = Array2::<f64>::zeros((kept.len(), gone.len()));
                for (i, &a) in kept.iter().enumerate() {
                    for (j, &bb) in kept.iter().enumerate() {
                        kk[[i, j]] = self.cov[[a, bb]];
                    }
                    for (j, &r) in gone.iter().enumerate() {
                        kr[[i, j]] = self.cov[[a, r]];
                    }
                }
                let ridge = RIDGE * kk.diag().mean().unwrap_or(0.0).max(1e-12);
                kk.diag_mut().iter_mut().for_each(|d| *d += ridge);
                if let Some(l) = cholesky(&kk) {
                    // kr becomes A^T = Σ_KK^-1 Σ_KR.
                    cholesky_solve(&l, &mut kr);
                    for (j, &r) in gone.iter().enumerate() {
                        for (i, &k) in kept.iter().enumerate() {
                            w[[r, k]] = kr[[i, j]];
                            b[r] -= kr[[i, j]] * self.mean[k];
                        }
                    }
                }
            }
        }
        let w = w
            .mapv(|v| v as f32)
            .into_shape_with_order(IxDyn(&self.weight_dims()))
            .expect("c x c elements");
        (w, b.mapv(|v| v as f32).into_dyn())
    }
}

/// The model with every consumer input read through a 1x1 Conv of fed weights, and the
/// tensors so read (statistics still empty).
fn masked_model(
    model: &Model,
    analysis: &Analysis,
    shapes: &HashMap<String, Vec<usize>>,
) -> Result<(Model, Vec<Masked>)> {
    let graph = Graph::new(model);
    let mut patch = Patch::new(&graph);
    let mut readers: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for &id in &analysis.consumers {
        if let Some(x) = graph.node(id).input.first() {
            let t = analysis.tensor(x);
            let prunable = t.is_some_and(|t| {
                (0..t.channels).any(|c| {
                    let set = analysis.component(x, c).and_then(|r| analysis.set_of(r));
                    set.is_some_and(|s| analysis.sets[s].excluded.is_none())
                })
            });
            if prunable && shapes.get(x).is_some_and(|s| s.len() >= 3) {
                readers.entry(x.clone()).or_default().push(id);
            }
        }
    }
    let mut masked = Vec::new();
    for (x, ids) in &readers {
        let rank = shapes[x].len();
        let channels = shapes[x][1];
        let weight = patch.fresh(&format!("{x}.prune_predict_w"));
        let bias = patch.fresh(&format!("{x}.prune_predict_b"));
        let out = patch.fresh(&format!("{x}.prune_predicted"));
        let first = *ids.iter().min().expect("a reader");
        patch.insert_before(
            first,
            node("Conv", &out, &[x, &weight, &bias], &[&out], vec![]),
        );
        for &id in ids {
            patch.set_input(id, 0, &out);
        }
        let m = Masked {
            tensor: x.clone(),
            weight,
            bias,
            rank,
            channels,
            mean: Array1::zeros(channels),
            cov: Array2::zeros((channels, channels)),
        };
        let wd: Vec<i64> = m.weight_dims().iter().map(|&d| d as i64).collect();
        patch.add_input(value_info(&m.weight, &wd));
        patch.add_input(value_info(&m.bias, &[channels as i64]));
        masked.push(m);
    }
    Ok((patch.apply()?, masked))
}

/// Channel means and covariances of the masked tensors over every position of `images`.
fn channel_statistics(
    model: &Model,
    masked: &mut [Masked],
    tensor: &str,
    images: &[ArrayD<f32>],
) -> Result<()> {
    let names: Vec<String> = masked.iter().map(|m| m.tensor.clone()).collect();
    let mut session = OrtSession::from_model(model, &names)?;
    let mut sums: Vec<(Array1<f64>, Array2<f64>, f64)> = masked
        .iter()
        .map(|m| {
            (
                Array1::zeros(m.channels),
                Array2::zeros((m.channels, m.channels)),
                0.0,
            )
        })
        .collect();
    for x in images {
        session.run_with(&[(tensor, x.view())], |outs| {
            for (m, (s1, s2, n)) in masked.iter().zip(sums.iter_mut()) {
                let Some((_, a)) = outs.iter().find(|(name, _)| *name == m.tensor) else {
                    return Err(crate::error::Error::internal(format!(
                        "{}: ONNX Runtime returned no float tensor '{}' to measure channels on",
                        model.path.display(),
                        m.tensor
                    )));
                };
                // [n, C, spatial...] -> C x positions.
                let a = a.view().permuted_axes(
                    std::iter::once(1)
                        .chain(std::iter::once(0))
                        .chain(2..a.ndim())
                        .collect::<Vec<_>>(),
                );
                let a = a.as_standard_layout();
                let p = a.len() / m.channels;
                let flat = a
                    .view()
                    .into_shape_with_order((m.channels, p))
                    .expect("C x positions")
                    .mapv(|v| v as f64);
                *s1 += &flat.sum_axis(Axis(1));
                ndarray::linalg::general_mat_mul(1.0, &flat, &flat.t(), 1.0, s2);
                *n += p as f64;
            }
            Ok(())
        })?;
    }
    for (m, (s1, s2, n)) in masked.iter_mut().zip(sums) {
        let n = n.max(1.0);
        m.mean = &s1 / n;
        let outer = m
            .mean
            .view()
            .insert_axis(Axis(1))
            .dot(&m.mean.view().insert_axis(Axis(0)));
        m.cov = &s2 / n - outer;
    }
    Ok(())
}

/// Per set of `orders`, the output error after each of its chunk boundaries, on the first
/// [`IMAGES`] of `settings.images` (the statistics too).
pub fn measure_curves(
    model: &Model,
    analysis: &Analysis,
    shapes: &HashMap<String, Vec<usize>>,
    orders: &HashMap<usize, SetOrder>,
    settings: &RecoverSettings,
    compare: Compare,
    log: &mut dyn FnMut(&str),
) -> Result<HashMap<usize, Vec<f64>>> {
    let (mmodel, mut masked) = masked_model(model, analysis, shapes)?;
    let model_graph = Graph::new(model);
    let tensor = settings.input.tensor.as_str();
    let (images, placements): (Vec<ArrayD<f32>>, Vec<Letterbox>) = settings
        .images
        .iter()
        .take(IMAGES)
        .map(|p| {
            let (x, lb) = preprocess_image(p, &settings.input)?;
            Ok((x.insert_axis(Axis(0)).into_dyn(), lb))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    channel_statistics(model, &mut masked, tensor, &images)?;
    let mut session = OrtSession::from_model(&mmodel, &[])?;
    let whole: Vec<(ArrayD<f32>, ArrayD<f32>)> = masked
        .iter()
        .map(|m| m.feeds(&vec![false; m.channels]))
        .collect();
    let mut run = |feeds: &[(ArrayD<f32>, ArrayD<f32>)]| -> Result<Outputs> {
        images
            .iter()
            .map(|x| {
                let mut ins = vec![(tensor, x.view())];
                for (m, (w, b)) in masked.iter().zip(feeds) {
                    ins.push((m.weight.as_str(), w.view()));
                    ins.push((m.bias.as_str(), b.view()));
                }
                session.run(&ins)
            })
            .collect()
    };
    let reference = run(&whole)?;
    let shape = &settings.input.shape;
    let score = Scorer::new(compare, &reference, &placements, (shape[2], shape[3]))?;
    let total: usize = orders.values().map(|o| o.bounds.len()).sum();
    log(&format!(
        "measuring {total} chunks of {} sets on {} calibration images",
        orders.len(),
        images.len()
    ));
    // Sets a ConvTranspose reads: its input is not masked, so a removal would measure as
    // free; they are ranked last instead.
    let unmeasured: HashSet<usize> =
        orders
            .keys()
            .copied()
            .filter(|&id| {
                analysis.sets[id].components.iter().any(|c| {
                    analysis.touches.get(c).into_iter().flatten().any(|t| {
                        t.kind == Use::Consumer && model_graph.node(t.node).op_type != "Conv"
                    })
                })
            })
            .collect();
    let mut curves = HashMap::new();
    let mut ids: Vec<usize> = orders.keys().copied().collect();
    ids.sort();
    for id in ids {
        let walk = &orders[&id];
        let mut curve = Vec::with_capacity(walk.bounds.len());
        for &end in &walk.bounds {
            let gone: HashSet<usize> = walk.order[..end].iter().copied().collect();
            let mut feeds = whole.clone();
            for (m, f) in masked.iter().zip(feeds.iter_mut()) {
                let removed: Vec<bool> = (0..m.channels)
                    .map(|c| {
                        analysis
                            .component(&m.tensor, c)
                            .is_some_and(|r| gone.contains(&r))
                    })
                    .collect();
                if removed.iter().any(|&r| r) {
                    *f = m.feeds(&removed);
                }
            }
            let outs = run(&feeds)?;
            let e = score.error(&reference, &outs)?;
            curve.push(if e.is_finite() && !unmeasured.contains(&id) {
                e
            } else {
                f64::INFINITY
            });
        }
        log::debug!(
            "set {id}: output error after each chunk {:?}",
            curve.iter().map(|e| format!("{e:.4}")).collect::<Vec<_>>()
        );
        curves.insert(id, curve);
    }
    Ok(curves)
}

/// Scores candidates against the model, with the model's detections decoded once.
struct Scorer {
    compare: Compare,
    input_hw: (usize, usize),
    placements: Vec<Letterbox>,
    truth: GroundTruth,
}

impl Scorer {
    fn new(
        compare: Compare,
        reference: &Outputs,
        placements: &[Letterbox],
        input_hw: (usize, usize),
    ) -> Result<Self> {
        let mut truth = GroundTruth::default();
        if let Compare::Detections(decoder, params) = compare {
            let dets = decode(decoder, params, input_hw, reference, placements)?;
            truth.images = dets
                .iter()
                .zip(placements)
                .enumerate()
                .map(|(i, (d, lb))| ImageTruth {
                    image: format!("calibration image {i}").into(),
                    width: lb.orig_w,
                    height: lb.orig_h,
                    boxes: d
                        .iter()
                        .filter(|d| d.score >= PSEUDO_LABEL_SCORE)
                        .map(|d| (d.bbox, d.class))
                        .collect(),
                })
                .collect();
        }
        // No confident detection on any image: every candidate would score mAP 0 against
        // nothing, which ranks nothing; compare the raw outputs instead.
        let compare = match compare {
            Compare::Detections(..) if truth.images.iter().all(|i| i.boxes.is_empty()) => {
                log::warn!(
                    "no detection of score {PSEUDO_LABEL_SCORE} or more on the measurement images: \
                     the output criterion compares raw outputs instead"
                );
                Compare::Features
            }
            c => c,
        };
        Ok(Scorer {
            compare,
            input_hw,
            placements: placements.to_vec(),
            truth,
        })
    }

    fn error(&self, reference: &Outputs, outs: &Outputs) -> Result<f64> {
        match self.compare {
            Compare::Features => Ok(feature_error(reference, outs)),
            Compare::Detections(decoder, params) => {
                let dets = decode(decoder, params, self.input_hw, outs, &self.placements)?;
                Ok(1.0 - match_images(&self.truth, &dets)?.score_all().map50_95)
            }
        }
    }
}

fn decode(
    decoder: Decoder,
    params: DecodeParams,
    input_hw: (usize, usize),
    outs: &Outputs,
    placements: &[Letterbox],
) -> Result<Vec<Vec<crate::eval::Detection>>> {
    let mut ev = Evaluator::new(decoder, params, input_hw);
    for (o, lb) in outs.iter().zip(placements) {
        ev.push_batch(o, std::slice::from_ref(lb))?;
    }
    Ok(ev.detections().to_vec())
}

/// The squared error of each output feature relative to that feature's energy (pooled over
/// anchors and images), averaged over the features of every output.
///
/// Why per feature: a detection head's output holds box terms, objectness and class scores
/// side by side ([1, anchors, 85] for YOLOX, [1, 84, anchors] for YOLOv8), and the box terms
/// are larger. One relative error over the whole tensor is the box error: on YOLOX-nano
/// pruned to 20% of MACs it ranked a model with class scores off by 0.84 (relative) above
/// one off by 0.45, because its boxes were closer (0.114 against 0.119 overall); the first
/// scored 0.022 mAP, the second 0.056.
pub fn feature_error(reference: &Outputs, outs: &Outputs) -> f64 {
    let Some(first) = reference.first() else {
        return 0.0;
    };
    let mut total = 0.0;
    for (k, (_, a0)) in first.iter().enumerate() {
        let shape = a0.shape();
        let r = shape.len();
        // Features along `axis`: [N, K] and NCHW maps on axis 1, [N, anchors, K] or
        // [N, K, anchors] on the shorter of the two, [N, A, H, W, K] on the last; a tensor of
        // rank < 2 is one feature.
        let axis = match r {
            0 | 1 => None,
            3 if shape[2] <= shape[1] => Some(2),
            5 => Some(4),
            _ => Some(1),
        };
        let features = axis.map_or(1, |a| shape[a]);
        let (mut err, mut energy) = (vec![0f64; features], vec![0f64; features]);
        for (ra, rb) in reference.iter().zip(outs) {
            let (a, b) = (&ra[k].1, &rb[k].1);
            for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
                let f = axis.map_or(0, |ax| {
                    let inner: usize = shape[ax + 1..].iter().product();
                    (i / inner) % features
                });
                err[f] += ((x - y) as f64).powi(2);
                energy[f] += (x as f64).powi(2);
            }
        }
        let per: f64 = err
            .iter()
            .zip(&energy)
            .map(|(e, n)| if *n > 0.0 { e / n } else { *e })
            .sum();
        total += per / features as f64;
    }
    total / first.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(v: Vec<f32>, shape: &[usize]) -> Vec<Vec<(String, ArrayD<f32>)>> {
        vec![vec![(
            "y".into(),
            ArrayD::from_shape_vec(IxDyn(shape), v).unwrap(),
        )]]
    }

    #[test]
    fn a_small_feature_counts_as_much_as_a_large_one() {
        // [1, 2 anchors, 2 features]: a box term near 100 and a score near 0.5.
        let reference = out(vec![100.0, 0.5, 120.0, 0.4], &[1, 2, 2]);
        // 10% off on the box term: 0.01 of its feature's energy, averaged over 2 features.
        let boxes = out(vec![110.0, 0.5, 132.0, 0.4], &[1, 2, 2]);
        assert!((feature_error(&reference, &boxes) - 0.005).abs() < 1e-9);
        // The same 10% on the score costs the same, though its squared error is 40,000x less.
        let scores = out(vec![100.0, 0.55, 120.0, 0.44], &[1, 2, 2]);
        assert!((feature_error(&reference, &scores) - 0.005).abs() < 1e-6);
        // Features on the shorter axis: [1, 2 features, 3 anchors] reads the same way.
        let t = out(vec![100.0, 120.0, 110.0, 0.5, 0.4, 0.45], &[1, 2, 3]);
        let u = out(vec![100.0, 120.0, 110.0, 0.55, 0.44, 0.495], &[1, 2, 3]);
        assert!((feature_error(&t, &u) - 0.005).abs() < 1e-6);
        // An NCHW map: features on axis 1 (channels), not on the width.
        let t = out(vec![100.0, 120.0, 0.5, 0.4], &[1, 2, 1, 2]);
        let u = out(vec![100.0, 120.0, 0.55, 0.44], &[1, 2, 1, 2]);
        assert!((feature_error(&t, &u) - 0.005).abs() < 1e-6);
    }

    #[test]
    fn a_removed_channel_that_is_a_combination_of_kept_ones_is_predicted_exactly() {
        // Channels x0, x1 independent, x2 = 2 x0 - x1 + 3 over four positions.
        let xs = [[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [-1.0, 3.0]];
        let rows: Vec<[f64; 3]> = xs.iter().map(|&[a, b]| [a, b, 2.0 * a - b + 3.0]).collect();
        let n = rows.len() as f64;
        let mean = Array1::from_iter((0..3).map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n));
        let mut cov = Array2::<f64>::zeros((3, 3));
        for r in &rows {
            for i in 0..3 {
                for j in 0..3 {
                    cov[[i, j]] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
                }
            }
        }
        let m = Masked {
            tensor: "x".into(),
            weight: "w".into(),
            bias: "b".into(),
            rank: 4,
            channels: 3,
            mean,
            cov,
        };
        let (w, b) = m.feeds(&[false, false, true]);
        assert_eq!(w.shape(), &[3, 3, 1, 1]);
        for r in &rows {
            let predicted: f64 =
                (0..3).map(|k| w[[2, k, 0, 0]] as f64 * r[k]).sum::<f64>() + b[[2]] as f64;
            assert!((predicted - r[2]).abs() < 1e-3, "{predicted} vs {}", r[2]);
            // Kept channels pass through.
            for c in 0..2 {
                let y: f64 = (0..3).map(|k| w[[c, k, 0, 0]] as f64 * r[k]).sum::<f64>();
                assert!((y - r[c]).abs() < 1e-6);
            }
        }
    }
}
