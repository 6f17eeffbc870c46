//! Layer-wise refinements of the Q/DQ model, each computed layer by layer on a few
//! calibration images with the layer's FP32 input (as captured from the FP32 model), never on
//! validation images:
//!
//! - [`ranges`]: per activation a weighted layer reads, the calibrated amax or another
//!   algorithm's, whichever gives the reading layers the smallest channel-normalised error;
//! - [`weights`]: per output channel, the weight scale with the smallest output error;
//! - [`bias`]: per output channel, the mean output error that weight quantization adds,
//!   subtracted from the bias;
//! - [`equalize`]: per input channel of a depthwise conv, its own activation step, realised
//!   by an exact rescaling.
//!
//! Every error is measured by running the layer itself in ONNX Runtime as a one-node model
//! ([`layer`]: the exported node with its attributes, input, weight and bias fed as inputs),
//! so grouped, strided, dilated and padded convolutions are all handled by the same code. The
//! result is [`WeightEdits`] plus amax overrides: TensorRT sees an ordinary Q/DQ model (with a
//! constant Mul before each equalized depthwise conv's input Q/DQ).

mod bias;
mod equalize;
mod layer;
mod ranges;
mod weights;

use layer::Layer;

pub use ranges::RangeChoice;
pub use weights::ALPHAS;

use super::qdq::{candidates, Equalization, WeightEdits};
use crate::calib::histogram::HistogramSet;
use crate::calib::range::RangeParams;
use crate::data::preprocess::preprocess_image;
use crate::error::Result;
use crate::exec::OrtSession;
use crate::onnx::Model;
use crate::recipe::{InputContract, QuantOp, Refinement};
use ndarray::ArrayD;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What [`refine`] found.
#[derive(Debug, Clone, Default)]
pub struct Refined {
    /// amax per activation tensor where the choice differs from the calibrated one.
    pub ranges: HashMap<String, f32>,
    pub range_choices: Vec<RangeChoice>,
    /// Per-channel weight scales different from the max scale.
    pub scales: HashMap<String, Vec<f32>>,
    /// Per-channel bias corrections, by node key, for the weights quantized with the chosen
    /// scales (`bias`) and with the plain max scales (`bias_max_scales`): a correction only
    /// holds for the weights it was measured with.
    pub bias: HashMap<String, Vec<f32>>,
    pub bias_max_scales: HashMap<String, Vec<f32>>,
    /// Output error with the chosen weight scales over that with max scales, over all layers.
    pub weight_error_ratio: f64,
    /// Depthwise convs whose input channels get their own steps, by node key.
    pub equalize: HashMap<String, Equalization>,
    /// Their output error with per-channel steps over that with the calibrated per-tensor
    /// range.
    pub equalize_error_ratio: f64,
    pub layers: usize,
    pub images: usize,
}

impl Refined {
    /// The weight edits of the refinements in `with` (range choice is not one: it changes
    /// ranges).
    pub fn edits(&self, with: &[Refinement]) -> WeightEdits {
        let weight_scales = with.contains(&Refinement::WeightScales);
        let bias = with.contains(&Refinement::BiasCorrection);
        WeightEdits {
            scales: if weight_scales {
                self.scales.clone()
            } else {
                Default::default()
            },
            bias: match (bias, weight_scales) {
                (false, _) => Default::default(),
                (true, true) => self.bias.clone(),
                (true, false) => self.bias_max_scales.clone(),
            },
            // Exact in float and free for the weights (see `equalize`), so the scales and the
            // bias correction measured without it hold with it.
            equalize: if with.contains(&Refinement::DepthwiseEqualization) {
                self.equalize.clone()
            } else {
                Default::default()
            },
        }
    }
}

/// Everything [`refine`] needs.
pub struct RefineInput<'a> {
    pub model: &'a Model,
    pub ranges: &'a HashMap<String, f32>,
    pub ops: &'a BTreeSet<QuantOp>,
    /// Histograms of the calibration pass (for the range candidates).
    pub hists: &'a HistogramSet,
    pub params: &'a RangeParams,
    pub images: &'a [PathBuf],
    /// Images whose per-channel max |x| bounds the depthwise inputs' channel ranges (the
    /// calibration images; those in `images` are left out, see `equalize::range_images`).
    pub range_images: &'a [PathBuf],
    pub contract: &'a InputContract,
}

/// Capture the FP32 inputs the layers read on one image.
fn capture(
    session: &mut OrtSession,
    contract: &InputContract,
    image: &Path,
    wanted: &BTreeSet<String>,
) -> Result<HashMap<String, ArrayD<f32>>> {
    let (x, _) = preprocess_image(image, contract)?;
    let x = x.insert_axis(ndarray::Axis(0)).into_dyn();
    let outs = session.run(&[(contract.tensor.as_str(), x.view())])?;
    let mut m: HashMap<String, ArrayD<f32>> = outs
        .into_iter()
        .filter(|(n, _)| wanted.contains(n))
        .collect();
    if wanted.contains(&contract.tensor) {
        m.insert(contract.tensor.clone(), x);
    }
    Ok(m)
}

/// What a pass hands each layer: (index, layer, FP32 input, FP32 output).
type LayerVisit<'a> = dyn FnMut(usize, &mut Layer, &ArrayD<f32>, &ArrayD<f32>) -> Result<()> + 'a;

/// One pass over the images: capture each layer's FP32 input, run the layer in FP32, and hand
/// (layer index, layer, input, FP32 output) to `f`.
fn each_layer_output(
    fp32: &mut OrtSession,
    inp: &RefineInput,
    wanted: &BTreeSet<String>,
    layers: &mut [Layer],
    bar: &indicatif::ProgressBar,
    f: &mut LayerVisit,
) -> Result<()> {
    for image in inp.images {
        let xs = capture(fp32, inp.contract, image, wanted)?;
        for (li, l) in layers.iter_mut().enumerate() {
            let Some(x) = xs.get(&l.input) else { continue };
            let w = l.w.clone();
            let y0 = l.run(inp.model, x, &w)?;
            f(li, l, x, &y0)?;
        }
        bar.inc(1);
    }
    Ok(())
}

/// Compute every refinement (the caller decides which to keep). Two passes over the images:
/// the range and scale searches, then the bias sums for the scales the first pass chose and the
/// per-channel step search (after a pass over `range_images` for the depthwise inputs' max).
pub fn refine(inp: &RefineInput) -> Result<Refined> {
    let model = inp.model;
    let quantized = candidates(model, inp.ranges, inp.ops)?;
    let mut layers = layer::layers(model, &quantized)?;
    let wanted: BTreeSet<String> = layers.iter().map(|l| l.input.clone()).collect();
    let exposed: Vec<String> = wanted.iter().cloned().collect();
    let mut fp32 = OrtSession::for_calibration(model, &exposed)?;
    let mut range_search = ranges::RangeSearch::new(&layers, inp.ranges, inp.hists, inp.params);
    let mut scale_search = weights::ScaleSearch::new(&layers);
    let mut eq_search = equalize::EqualizeSearch::new(&layers, inp.ranges);
    let dw_inputs: BTreeSet<String> = eq_search.inputs(&layers);
    let range_images = equalize::range_images(inp.range_images, inp.images, dw_inputs.is_empty());
    let bar =
        crate::util::progress_bar((inp.images.len() * 2 + range_images.len()) as u64, "refine");
    for image in &range_images {
        let xs = capture(&mut fp32, inp.contract, image, &dw_inputs)?;
        for (li, l) in layers.iter().enumerate() {
            if let Some(x) = xs.get(&l.input) {
                eq_search.observe_max(li, x);
            }
        }
        bar.inc(1);
    }
    each_layer_output(
        &mut fp32,
        inp,
        &wanted,
        &mut layers,
        &bar,
        &mut |li, l, x, y0| {
            range_search.observe(model, li, l, x, y0)?;
            scale_search.observe(model, li, l, x, y0)
        },
    )?;
    let scales = scale_search.choose();
    let mut sums = bias::BiasSums::new(&layers);
    each_layer_output(
        &mut fp32,
        inp,
        &wanted,
        &mut layers,
        &bar,
        &mut |li, l, x, y0| {
            eq_search.observe(model, li, l, x, y0)?;
            sums.observe(
                model,
                li,
                l,
                x,
                y0,
                &scales.chosen[li],
                &scale_search.max[li],
            )
        },
    )?;
    bar.finish_and_clear();

    let (range_overrides, range_choices) = range_search.choose(&layers);
    let (bias, bias_max_scales) = sums.finish(&layers);
    let equalized = eq_search.choose(&layers);
    let changed = layers
        .iter()
        .zip(&scales.chosen)
        .zip(&scale_search.max)
        .filter(|((_, c), m)| c != m)
        .map(|((l, c), _)| (l.weight.clone(), c.clone()))
        .collect();
    Ok(Refined {
        ranges: range_overrides,
        range_choices,
        scales: changed,
        bias,
        bias_max_scales,
        weight_error_ratio: scales.error_ratio,
        equalize: equalized.layers,
        equalize_error_ratio: equalized.error_ratio,
        layers: layers.len(),
        images: inp.images.len(),
    })
}
