//! Recovery without training: refit every conv that lost input channels so that, on the
//! calibration images, its output stays what it was (the reconstruction step of He et al.,
//! "Channel Pruning for Accelerating Very Deep Neural Networks", ICCV 2017).
//!
//! For one conv with weights `W` (with the bias as one more column) and input patches `x` of
//! the unpruned model at sampled output positions (im2col, with a constant 1 for the bias),
//! the refit weights over the kept patch entries `K` minimise `sum ||W' x_K - W x||^2`:
//!
//! `W' = W G[:, K] (G[K, K] + λI)^-1`, with `G = sum x x^T`
//!
//! so one pass accumulates `G` per layer (a Gram matrix of `(cin·kh·kw + 1)^2` doubles) and a
//! Cholesky solve per layer finishes it. When a removed channel is a linear combination of
//! kept ones (or a constant, absorbed by the bias), the fit is exact. The bias column is why
//! removing a channel whose activation is a constant (a dead ReLU, SiLU of a large negative
//! bias) costs nothing after recovery. `λ` is 1e-6 of the mean diagonal: enough to keep the
//! solve stable when kept channels are collinear, far below what changes a well-posed fit.
//!
//! Bounded: `images` calibration images and at most `positions` sampled output positions per
//! image and layer; the Gram matrices are estimated before anything is allocated.

use super::apply::Masks;
use crate::data::preprocess::preprocess_image;
use crate::error::{Error, Result};
use crate::exec::OrtSession;
use crate::onnx::tensor::float_tensor;
use crate::onnx::{Graph, Model, NodeId, Patch};
use crate::recipe::InputContract;
use ndarray::{linalg::general_mat_mul, Array2, ArrayViewD, Axis};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Memory the Gram matrices may take.
pub const GRAM_BUDGET_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone)]
pub struct RecoverSettings {
    pub images: Vec<PathBuf>,
    pub positions: usize,
    pub input: InputContract,
}

/// What recovery did, for the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RecoveryStats {
    pub layers: usize,
    pub images: usize,
    pub positions_per_image: usize,
    pub gram_mb: f64,
    pub seconds: f64,
    /// Waves of the sequential refit (each waits for the refit layers above it).
    pub waves: usize,
    /// Mean over refit layers of the relative output error with the weights only sliced, and
    /// after the refit (on the images the refit used).
    pub mean_error_sliced: f64,
    pub mean_error_refit: f64,
    /// Layers left as sliced, with why (grouped, 1-D/3-D, auto_pad SAME).
    pub skipped: Vec<String>,
    /// The refit layers left furthest from their original output, worst first (at most
    /// [`WORST_SHOWN`]; in a schedule, the last step's): where a smaller ratio, or
    /// fine-tuning, would help most.
    pub worst: Vec<LayerFit>,
}

/// One refit layer's relative output error, with the weights only sliced and refit.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFit {
    pub layer: String,
    pub sliced: f64,
    pub refit: f64,
}

/// How many of the worst refit layers the report names.
pub const WORST_SHOWN: usize = 5;

/// One conv to refit.
struct Layer {
    id: NodeId,
    input: String,
    /// Full reference weights [cout, cin, kh, kw] and bias (zeros when absent).
    w: Vec<f32>,
    b: Vec<f32>,
    cout: usize,
    cin: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    in_mask: Vec<bool>,
    out_mask: Vec<bool>,
    /// Σ x x^T over the unpruned model's patches, Σ x' x'^T over the pruned model's, and
    /// Σ x x'^T.
    gram: Array2<f64>,
    gram_pruned: Array2<f64>,
    cross: Array2<f64>,
}

impl Layer {
    fn dim(&self) -> usize {
        self.cin * self.kh * self.kw + 1
    }

    /// Patch matrices (one per batch element, `positions` rows, `c·kh·kw + 1` columns with a
    /// final 1 for the bias) of an input activation [n, c, h, w] at sampled output positions.
    /// The positions depend only on the spatial size and `seed`, so the original and the
    /// pruned model's activations are sampled at the same places.
    fn patches(&self, x: &ArrayViewD<f32>, positions: usize, seed: u64) -> Vec<Array2<f64>> {
        let s = x.shape();
        let (n, cin, h, w) = (s[0], s[1], s[2], s[3]);
        let oh = (h + 2 * self.pad[0]).saturating_sub(self.dilation[0] * (self.kh - 1) + 1)
            / self.stride[0]
            + 1;
        let ow = (w + 2 * self.pad[1]).saturating_sub(self.dilation[1] * (self.kw - 1) + 1)
            / self.stride[1]
            + 1;
        let total = oh * ow;
        let p = positions.min(total);
        let d = cin * self.kh * self.kw + 1;
        let x = x.as_standard_layout();
        let data = x.as_slice().expect("standard layout");
        let mut out = Vec::with_capacity(n);
        for b in 0..n {
            let mut m = Array2::<f64>::zeros((p, d));
            // Positions spread evenly with a seeded offset: every region of the image counts.
            let step = total as f64 / p as f64;
            let offset = (seed as f64 * 0.618_033_988_75).fract() * step;
            for (row, mut r) in m.axis_iter_mut(Axis(0)).enumerate() {
                let pos = ((offset + row as f64 * step) as usize).min(total - 1);
                let (py, px) = (pos / ow, pos % ow);
                let mut k = 0;
                for c in 0..cin {
                    let plane = &data[(b * cin + c) * h * w..(b * cin + c + 1) * h * w];
                    for ky in 0..self.kh {
                        let iy = (py * self.stride[0] + ky * self.dilation[0]) as isize
                            - self.pad[0] as isize;
                        for kx in 0..self.kw {
                            let ix = (px * self.stride[1] + kx * self.dilation[1]) as isize
                                - self.pad[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                r[k] = plane[iy as usize * w + ix as usize] as f64;
                            }
                            k += 1;
                        }
                    }
                }
                r[d - 1] = 1.0;
            }
            out.push(m);
        }
        out
    }

    /// Add the patches of one input activation of the unpruned model to `gram`.
    fn accumulate(&mut self, x: &ArrayViewD<f32>, positions: usize, seed: u64) {
        for m in self.patches(x, positions, seed) {
            general_mat_mul(1.0, &m.t(), &m, 1.0, &mut self.gram);
        }
    }

    /// Add one image: `x` the unpruned model's input of this conv, `xp` the pruned model's.
    fn accumulate_pair(
        &mut self,
        x: &ArrayViewD<f32>,
        xp: &ArrayViewD<f32>,
        positions: usize,
        seed: u64,
    ) {
        let full = self.patches(x, positions, seed);
        let kept = self.patches(xp, positions, seed);
        for (m, mp) in full.iter().zip(&kept) {
            general_mat_mul(1.0, &m.t(), m, 1.0, &mut self.gram);
            general_mat_mul(1.0, &mp.t(), mp, 1.0, &mut self.gram_pruned);
            general_mat_mul(1.0, &m.t(), mp, 1.0, &mut self.cross);
        }
    }

    /// Augmented weights [W | b] of the kept output channels.
    fn w_aug(&self) -> Array2<f64> {
        let rows: Vec<usize> = (0..self.cout).filter(|&o| self.out_mask[o]).collect();
        self.w_aug_of(&rows)
    }

    /// Augmented weights [W | b] of output channels `rows`.
    fn w_aug_of(&self, rows: &[usize]) -> Array2<f64> {
        let d = self.dim();
        let mut w_aug = Array2::<f64>::zeros((rows.len(), d));
        for (r, &o) in rows.iter().enumerate() {
            for k in 0..d - 1 {
                w_aug[[r, k]] = self.w[o * (d - 1) + k] as f64;
            }
            w_aug[[r, d - 1]] = self.b[o] as f64;
        }
        w_aug
    }

    /// Columns of the full patch that survive in the pruned input, bias last.
    fn kept_columns(&self) -> Vec<usize> {
        let kk = self.kh * self.kw;
        let d = self.dim();
        self.in_mask
            .iter()
            .enumerate()
            .filter(|(_, &k)| k)
            .flat_map(|(c, _)| c * kk..(c + 1) * kk)
            .chain(std::iter::once(d - 1))
            .collect()
    }

    /// The refit weights [kout, kin, kh, kw] and bias [kout] that map the pruned model's input
    /// onto the unpruned model's output: `W' = W C (A' + λI)^-1` with `A' = Σ x' x'^T` and
    /// `C = Σ x x'^T`; and the relative output error before (weights only sliced) and after.
    fn solve(&self) -> std::result::Result<(Vec<f32>, Vec<f32>, f64, f64), String> {
        let q = self.gram_pruned.nrows();
        let mut a = self.gram_pruned.clone();
        let mean_diag = (0..q).map(|i| a[[i, i]]).sum::<f64>() / q as f64;
        let lambda = 1e-6 * mean_diag.max(f64::MIN_POSITIVE);
        for i in 0..q {
            a[[i, i]] += lambda;
        }
        let l = cholesky(&a).ok_or("the kept inputs' Gram matrix is not positive definite")?;
        let mut m = self.cross.t().to_owned();
        cholesky_solve(&l, &mut m);
        let w_aug = self.w_aug();
        let fit = w_aug.dot(&m.t());
        // Σ ||V x' - W x||^2 = tr(V A' V^T) - 2 tr(V C^T W^T) + tr(W G W^T)
        let e0 = (&w_aug.dot(&self.gram) * &w_aug)
            .sum()
            .max(f64::MIN_POSITIVE);
        let err = |v: &Array2<f64>| {
            ((&v.dot(&self.gram_pruned) * v).sum() - 2.0 * (&v.dot(&self.cross.t()) * &w_aug).sum()
                + e0)
                / e0
        };
        let mut sliced = Array2::<f64>::zeros((w_aug.nrows(), q));
        for (i, &ki) in self.kept_columns().iter().enumerate() {
            sliced.column_mut(i).assign(&w_aug.column(ki));
        }
        let (before, after) = (err(&sliced), err(&fit));
        let mut w = Vec::with_capacity(fit.nrows() * (q - 1));
        let mut b = Vec::with_capacity(fit.nrows());
        for r in 0..fit.nrows() {
            w.extend((0..q - 1).map(|k| fit[[r, k]] as f32));
            b.push(fit[[r, q - 1]] as f32);
        }
        if w.iter().chain(&b).any(|v| !v.is_finite()) {
            return Err("the refit weights are not finite".into());
        }
        Ok((w, b, before, after))
    }

    /// Per input channel, the share of the output energy lost when it alone goes and the rest
    /// is refit (see [`reconstruction_costs`]); zeros when the Gram matrix is singular.
    fn channel_costs(&self) -> Vec<f64> {
        let d = self.dim();
        let kk = self.kh * self.kw;
        let mut a = self.gram.clone();
        let mean_diag = (0..d).map(|i| a[[i, i]]).sum::<f64>() / d as f64;
        for i in 0..d {
            a[[i, i]] += 1e-6 * mean_diag.max(f64::MIN_POSITIVE);
        }
        let Some(l) = cholesky(&a) else {
            return vec![0.0; self.cin];
        };
        let mut inv = Array2::<f64>::eye(d);
        cholesky_solve(&l, &mut inv);
        let all: Vec<usize> = (0..self.cout).collect();
        let w_aug = self.w_aug_of(&all);
        // Output energy: sum over outputs of w G w^T.
        let energy = (&w_aug.dot(&self.gram) * &w_aug)
            .sum()
            .max(f64::MIN_POSITIVE);
        // Removing all kk taps J of a channel together, with the rest refit, costs
        // tr(W_J ((G^-1)_JJ)^-1 W_J^T): taps of one channel predict each other, so the
        // single-tap costs would not add up.
        (0..self.cin)
            .map(|c| {
                let j = c * kk..(c + 1) * kk;
                let s = inv.slice(ndarray::s![j.clone(), j.clone()]).to_owned();
                let Some(ls) = cholesky(&s) else {
                    return 0.0;
                };
                // (W_J S^-1 W_J^T) = sum over outputs of w_J^T S^-1 w_J.
                let mut wj = w_aug.slice(ndarray::s![.., j]).t().to_owned();
                let orig = wj.clone();
                cholesky_solve(&ls, &mut wj);
                (&wj * &orig).sum() / energy
            })
            .collect()
    }
}

/// Lower-triangular `L` with `L L^T = a`, or `None` if `a` is not positive definite.
pub(super) fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / d;
        }
    }
    Some(l)
}

/// Solve `L L^T X = B` in place (B: one column per right-hand side).
pub(super) fn cholesky_solve(l: &Array2<f64>, b: &mut Array2<f64>) {
    let n = l.nrows();
    for i in 0..n {
        for k in 0..i {
            let f = l[[i, k]];
            if f != 0.0 {
                let (head, mut tail) = b.view_mut().split_at(Axis(0), i);
                tail.row_mut(0).scaled_add(-f, &head.row(k));
            }
        }
        let d = l[[i, i]];
        b.row_mut(i).mapv_inplace(|v| v / d);
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            let f = l[[k, i]];
            if f != 0.0 {
                let (mut head, tail) = b.view_mut().split_at(Axis(0), i + 1);
                head.row_mut(i).scaled_add(-f, &tail.row(k - i - 1));
            }
        }
        let d = l[[i, i]];
        b.row_mut(i).mapv_inplace(|v| v / d);
    }
}

fn two(v: Option<&[i64]>, default: usize) -> Option<[usize; 2]> {
    match v {
        None => Some([default; 2]),
        Some([a, b]) if *a >= 0 && *b >= 0 => Some([*a as usize, *b as usize]),
        _ => None,
    }
}

/// The layers of `reference` to refit: full 2-D convs whose input loses channels.
fn layers(reference: &Model, masks: &Masks, stats: &mut RecoveryStats) -> Result<Vec<Layer>> {
    let g = Graph::new(reference);
    let mut out = Vec::new();
    for (id, n) in g.nodes() {
        if n.op_type != "Conv" {
            continue;
        }
        let x = g.input(id, 0)?;
        let Some(in_mask) = masks.get(x) else {
            continue;
        };
        let key = g.key(id);
        let groups = g.attr_int(id, "group")?.unwrap_or(1);
        let auto = g.attr_string(id, "auto_pad")?.unwrap_or(b"NOTSET");
        let (dims, w) = g
            .constant_f32(g.input(id, 1)?)?
            .ok_or_else(|| g.error(id, "weights are not a constant"))?;
        if groups != 1 || dims.len() != 4 || !(auto == b"NOTSET" || auto == b"VALID") {
            if groups == 1 {
                stats
                    .skipped
                    .push(format!("{key}: not a 2-D conv with explicit pads"));
            }
            continue;
        }
        let pads = g.attr_ints(id, "pads")?;
        let symmetric = pads.is_none_or(|p| p.len() == 4 && p[0] == p[2] && p[1] == p[3]);
        let (Some(stride), Some(dilation), Some(pad), true) = (
            two(g.attr_ints(id, "strides")?, 1),
            two(g.attr_ints(id, "dilations")?, 1),
            two(pads.map(|p| &p[..2.min(p.len())]), 0),
            symmetric,
        ) else {
            stats
                .skipped
                .push(format!("{key}: asymmetric or malformed pads/strides"));
            continue;
        };
        let (cout, cin, kh, kw) = (
            dims[0] as usize,
            dims[1] as usize,
            dims[2] as usize,
            dims[3] as usize,
        );
        let b = match g.optional_input(id, 2) {
            Some(b) => g
                .constant_f32(b)?
                .map(|(_, v)| v)
                .unwrap_or_else(|| vec![0.0; cout]),
            None => vec![0.0; cout],
        };
        let out_mask = n
            .output
            .first()
            .and_then(|o| masks.get(o))
            .cloned()
            .unwrap_or_else(|| vec![true; cout]);
        out.push(Layer {
            id,
            input: x.to_string(),
            w,
            b,
            cout,
            cin,
            kh,
            kw,
            stride,
            pad,
            dilation,
            in_mask: in_mask.clone(),
            out_mask,
            gram: Array2::zeros((0, 0)),
            gram_pruned: Array2::zeros((0, 0)),
            cross: Array2::zeros((0, 0)),
        });
    }
    Ok(out)
}

/// Fill the Gram matrices of `layers` from `reference`'s activations on the images.
fn accumulate_all(
    reference: &Model,
    layers: &mut [Layer],
    settings: &RecoverSettings,
) -> Result<()> {
    for l in layers.iter_mut() {
        let d = l.dim();
        l.gram = Array2::zeros((d, d));
    }
    let mut names: Vec<String> = layers.iter().map(|l| l.input.clone()).collect();
    names.sort();
    names.dedup();
    let mut session = OrtSession::from_model(reference, &names)?;
    for (i, path) in settings.images.iter().enumerate() {
        let (chw, _) = preprocess_image(path, &settings.input)?;
        let x = chw.insert_axis(Axis(0)).into_dyn();
        let positions = settings.positions;
        session.run_with(&[(settings.input.tensor.as_str(), x.view())], |outs| {
            layers.par_iter_mut().for_each(|l| {
                if let Some((_, v)) = outs.iter().find(|(n, _)| *n == l.input) {
                    l.accumulate(v, positions, i as u64 + 1);
                }
            });
            Ok(())
        })?;
    }
    Ok(())
}

fn check_budget(reference: &Model, layers: &[Layer]) -> Result<f64> {
    let bytes: u64 = layers.iter().map(|l| (l.dim() as u64).pow(2) * 8).sum();
    let mb = bytes as f64 / 1e6;
    if bytes > GRAM_BUDGET_BYTES {
        return Err(Error::Contract(format!(
            "{}: recovery needs {mb:.0} MB of Gram matrices (more than {} MB); prune without it \
             (--no-recover) and with another --criterion than recon",
            reference.path.display(),
            GRAM_BUDGET_BYTES / 1_000_000
        )));
    }
    Ok(mb)
}

/// The `recon` criterion: per input channel of every full conv that reads a tracked tensor
/// (`inputs`: tensor -> channel count), the share of that conv's output energy lost when the
/// channel goes and the others are refit (`||W[:, j]||^2 / [G^-1]_jj` summed over the channel's
/// patch entries: the conditional variance of the entry given all the others, times how much
/// the conv weighs it), by node key.
pub fn reconstruction_costs(
    reference: &Model,
    inputs: &std::collections::HashMap<String, usize>,
    settings: &RecoverSettings,
) -> Result<HashMap<NodeId, Vec<f64>>> {
    let masks: Masks = inputs
        .iter()
        .map(|(t, &c)| (t.clone(), vec![true; c]))
        .collect();
    let mut stats = RecoveryStats::default();
    let mut layers = layers(reference, &masks, &mut stats)?;
    check_budget(reference, &layers)?;
    accumulate_all(reference, &mut layers, settings)?;
    let costs: Vec<(NodeId, Vec<f64>)> = layers
        .par_iter()
        .map(|l| (l.id, l.channel_costs()))
        .collect();
    Ok(costs.into_iter().collect())
}

/// Per refit layer, its wave: the number of refit layers on the longest path above it. A
/// wave's inputs depend only on earlier waves, so each wave is fit on the pruned model with
/// every earlier wave already refit.
fn waves(pruned: &Model, keys: &[String]) -> Vec<usize> {
    let g = Graph::new(pruned);
    let mut level: HashMap<&str, usize> = HashMap::new();
    let mut wave_of: HashMap<String, usize> = HashMap::new();
    for (id, n) in g.nodes() {
        let lin = crate::onnx::node_reads(n)
            .iter()
            .filter_map(|t| level.get(t.as_str()).copied())
            .max()
            .unwrap_or(0);
        let key = g.key(id);
        let is_layer = keys.contains(&key);
        if is_layer {
            wave_of.insert(key, lin);
        }
        for o in &n.output {
            level.insert(o.as_str(), lin + usize::from(is_layer));
        }
    }
    keys.iter()
        .map(|k| wave_of.get(k).copied().unwrap_or(0))
        .collect()
}

/// Write refit weights into `model` (convs found by node key).
/// Convs are found by their output tensor, which is unique in a valid graph (node names need
/// not be); the weights keep their element type and encoding.
fn write_fits(model: &Model, fits: &[(String, Vec<f32>, Vec<f32>)]) -> Result<Model> {
    let g = Graph::new(model);
    let mut patch = Patch::new(&g);
    let keep_type = |name: &str, dims: &[i64], v: &[f32]| -> Result<onnx_protobuf::TensorProto> {
        let mut t = g
            .constant(name)
            .expect("sliced weights are constants")
            .clone();
        t.name = name.to_string();
        crate::onnx::tensor::set_f32(&mut t, dims, v).map_err(|m| Error::Onnx {
            path: model.path.clone(),
            msg: m,
        })?;
        Ok(t)
    };
    for (out, w, b) in fits {
        let Some(id) = g.producer(out) else {
            continue;
        };
        let key = g.key(id);
        let wname = g.input(id, 1)?;
        let dims = g
            .constant(wname)
            .expect("sliced weights are constants")
            .dims
            .clone();
        patch.replace_constant(keep_type(wname, &dims, w)?)?;
        let kout = b.len() as i64;
        match g.optional_input(id, 2) {
            Some(bname) => patch.replace_constant(keep_type(bname, &[kout], b)?)?,
            None => {
                let name = patch.fresh(&format!("{key}.bias"));
                patch.add_initializer(float_tensor(&name, &[kout], b.clone()));
                patch.set_input(id, 2, &name);
            }
        }
    }
    patch.apply()
}

/// Refit the convs of `pruned` that lost input channels so that each reproduces, from the
/// pruned model's own activations, the output it had in `reference` (the model before this
/// pruning step), wave by wave (He et al.'s sequential reconstruction: upstream error is
/// corrected too, not only the removed inputs).
pub fn recover(
    reference: &Model,
    pruned: &Model,
    masks: &Masks,
    settings: &RecoverSettings,
) -> Result<(Model, RecoveryStats)> {
    let started = Instant::now();
    let mut stats = RecoveryStats {
        positions_per_image: settings.positions,
        ..Default::default()
    };
    let mut layers = layers(reference, masks, &mut stats)?;
    if layers.is_empty() || settings.images.is_empty() {
        stats.seconds = started.elapsed().as_secs_f64();
        return Ok((pruned.clone(), stats));
    }
    let rg = Graph::new(reference);
    let keys: Vec<String> = layers.iter().map(|l| rg.key(l.id)).collect();
    let wave = waves(pruned, &keys);
    // One wave's matrices are alive at a time: G (d x d), A' (q x q) and C (d x q) per layer.
    let mut per_wave: HashMap<usize, u64> = HashMap::new();
    for (l, &w) in layers.iter().zip(&wave) {
        let (d, q) = (l.dim() as u64, l.kept_columns().len() as u64);
        *per_wave.entry(w).or_default() += (d * d + q * q + d * q) * 8;
    }
    let peak = per_wave.values().copied().max().unwrap_or(0);
    stats.gram_mb = peak as f64 / 1e6;
    if peak > GRAM_BUDGET_BYTES {
        return Err(Error::Contract(format!(
            "{}: recovery needs {:.0} MB of Gram matrices at once (more than {} MB); prune \
             without it (--no-recover)",
            reference.path.display(),
            stats.gram_mb,
            GRAM_BUDGET_BYTES / 1_000_000
        )));
    }
    let inputs: Vec<ndarray::ArrayD<f32>> = settings
        .images
        .iter()
        .map(|p| {
            Ok(preprocess_image(p, &settings.input)?
                .0
                .insert_axis(Axis(0))
                .into_dyn())
        })
        .collect::<Result<_>>()?;
    let tensor = settings.input.tensor.as_str();
    let mut current = pruned.clone();
    let mut fitted: Vec<LayerFit> = Vec::new();
    for w in 0..=wave.iter().copied().max().unwrap_or(0) {
        let idx: Vec<usize> = (0..layers.len()).filter(|&i| wave[i] == w).collect();
        if idx.is_empty() {
            continue;
        }
        let mut names: Vec<String> = idx.iter().map(|&i| layers[i].input.clone()).collect();
        names.sort();
        names.dedup();
        let mut orig = OrtSession::from_model(reference, &names)?;
        let mut now = OrtSession::from_model(&current, &names)?;
        let mut wave_layers: Vec<&mut Layer> = layers
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| wave[*i] == w)
            .map(|(_, l)| l)
            .collect();
        for l in wave_layers.iter_mut() {
            let d = l.dim();
            let q = l.kept_columns().len();
            l.gram = Array2::zeros((d, d));
            l.gram_pruned = Array2::zeros((q, q));
            l.cross = Array2::zeros((d, q));
        }
        for (i, x) in inputs.iter().enumerate() {
            let a = orig.run(&[(tensor, x.view())])?;
            let b = now.run(&[(tensor, x.view())])?;
            let positions = settings.positions;
            wave_layers.par_iter_mut().for_each(|l| {
                let find = |outs: &[(String, ndarray::ArrayD<f32>)]| {
                    outs.iter().position(|(n, _)| *n == l.input)
                };
                if let (Some(ia), Some(ib)) = (find(&a), find(&b)) {
                    l.accumulate_pair(&a[ia].1.view(), &b[ib].1.view(), positions, i as u64 + 1);
                }
            });
        }
        let solved: Vec<_> = wave_layers.par_iter().map(|l| l.solve()).collect();
        let mut fits = Vec::new();
        for (l, r) in wave_layers.iter().zip(solved) {
            let (wt, b, e0, e1) = r.map_err(|m| {
                rg.error(
                    l.id,
                    format!("recovery failed: {m}; prune with --no-recover"),
                )
            })?;
            log::debug!(
                "refit {} (wave {w}): relative output error {e0:.4} sliced, {e1:.4} refit",
                rg.key(l.id)
            );
            fitted.push(LayerFit {
                layer: rg.key(l.id),
                sliced: e0,
                refit: e1,
            });
            fits.push((rg.node(l.id).output[0].clone(), wt, b));
        }
        for l in wave_layers.iter_mut() {
            // Done with this layer: free its matrices before the next wave.
            l.gram = Array2::zeros((0, 0));
            l.gram_pruned = Array2::zeros((0, 0));
            l.cross = Array2::zeros((0, 0));
        }
        stats.layers += fits.len();
        current = write_fits(&current, &fits)?;
    }
    stats.images = settings.images.len();
    let mean =
        |f: fn(&LayerFit) -> f64| fitted.iter().map(f).sum::<f64>() / fitted.len().max(1) as f64;
    stats.mean_error_sliced = mean(|l| l.sliced);
    stats.mean_error_refit = mean(|l| l.refit);
    stats.waves = wave.iter().copied().max().map_or(0, |m| m + 1);
    fitted.sort_by(|a, b| b.refit.total_cmp(&a.refit));
    fitted.truncate(WORST_SHOWN);
    stats.worst = fitted;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((current, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = ndarray::arr2(&[[4.0, 2.0], [2.0, 3.0]]);
        let l = cholesky(&a).unwrap();
        let mut b = ndarray::arr2(&[[2.0, 1.0], [1.0, 0.0]]);
        let want = {
            // a^-1 = 1/8 [[3, -2], [-2, 4]]
            ndarray::arr2(&[
                [(6.0 - 2.0) / 8.0, 3.0 / 8.0],
                [(-4.0 + 4.0) / 8.0, -2.0 / 8.0],
            ])
        };
        cholesky_solve(&l, &mut b);
        for (x, y) in b.iter().zip(want.iter()) {
            assert!((x - y).abs() < 1e-12, "{b} vs {want}");
        }
        assert!(cholesky(&ndarray::arr2(&[[1.0, 2.0], [2.0, 1.0]])).is_none());
    }
}
