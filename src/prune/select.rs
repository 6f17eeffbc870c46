//! Which channels go: a global ranking over every prunable set, removing the least important
//! chunk anywhere until the target share of channels or MACs is gone.
//!
//! A chunk keeps its set aligned: the first chunk of a set whose width is not a multiple of
//! `align` brings it to one, every later chunk is `align` channels. A set never drops below
//! `min_keep` of its width (rounded up to a multiple of `align`), so no layer is emptied and
//! every pruned layer's width is a multiple of `align` (tensor cores: 8 for FP16, 32 for INT8).
//! A chunk's score is the mean importance of its channels.

use super::groups::Analysis;
use crate::error::{Error, Result};
use crate::onnx::Graph;
use serde::Serialize;
use std::collections::{BinaryHeap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Output channels of every Conv.
    Channels,
    /// Multiply-accumulates of Conv, ConvTranspose and Gemm at the recipe's input shape.
    Macs,
}

/// MACs and channel counts as functions of each tensor's kept channels.
pub struct CostModel {
    layers: Vec<LayerCost>,
    fixed_macs: u64,
}

struct LayerCost {
    input: Option<usize>,
    output: Option<usize>,
    cin: u64,
    cout: u64,
    /// MACs per (output channel x input channel per group), or per channel for depthwise.
    unit: u64,
    depthwise: bool,
}

impl CostModel {
    pub fn new(
        graph: &Graph,
        analysis: &Analysis,
        shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Self> {
        let idx = |name: &str| analysis.tensors.iter().position(|t| t.name == name);
        let prod = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
        let mut layers = Vec::new();
        let mut fixed_macs = 0u64;
        for (id, n) in graph.nodes() {
            let shape = |s: usize| n.input.get(s).and_then(|i| shapes.get(i));
            let out_shape = n.output.first().and_then(|o| shapes.get(o));
            match n.op_type.as_str() {
                "Conv" | "ConvTranspose" => {
                    let (Some(x), Some(y)) = (shape(0), out_shape) else {
                        continue;
                    };
                    let w = graph
                        .constant(graph.input(id, 1)?)
                        .map(|t| t.dims.clone())
                        .unwrap_or_default();
                    let kernel: u64 = w.iter().skip(2).map(|&d| d.max(0) as u64).product();
                    let groups = graph.attr_int(id, "group")?.unwrap_or(1).max(1) as u64;
                    let transpose = n.op_type == "ConvTranspose";
                    let (cin, cout) = (x[1] as u64, y[1] as u64);
                    // Conv: every output element sums cin/groups x kernel products;
                    // ConvTranspose: every input element scatters into cout/groups x kernel.
                    let spatial = if transpose {
                        prod(&x[2..]) * x[0] as u64
                    } else {
                        prod(&y[2..]) * y[0] as u64
                    };
                    let depthwise = groups > 1 && groups == cin;
                    layers.push(LayerCost {
                        input: idx(&n.input[0]),
                        output: idx(&n.output[0]),
                        cin,
                        cout,
                        unit: spatial * kernel / if depthwise { 1 } else { groups },
                        depthwise,
                    });
                }
                "Gemm" | "MatMul" => {
                    if let (Some(a), Some(y)) = (shape(0), out_shape) {
                        let k = if n.op_type == "Gemm" && graph.attr_int(id, "transA")? == Some(1) {
                            a.first().copied().unwrap_or(0)
                        } else {
                            a.last().copied().unwrap_or(0)
                        };
                        fixed_macs += prod(y) * k as u64;
                    }
                }
                _ => {}
            }
        }
        Ok(CostModel { layers, fixed_macs })
    }

    /// Total MACs when tensor `t` keeps `kept[t]` channels.
    pub fn macs(&self, kept: &[usize]) -> u64 {
        let k = |t: Option<usize>, full: u64| t.map_or(full, |t| kept[t] as u64);
        self.fixed_macs
            + self
                .layers
                .iter()
                .map(|l| {
                    let (ci, co) = (k(l.input, l.cin), k(l.output, l.cout));
                    if l.depthwise {
                        co * l.unit
                    } else {
                        ci * co * l.unit
                    }
                })
                .sum::<u64>()
    }

    /// Output channels of every conv when tensor `t` keeps `kept[t]` channels.
    pub fn channels(&self, kept: &[usize]) -> u64 {
        self.layers
            .iter()
            .map(|l| l.output.map_or(l.cout, |t| kept[t] as u64))
            .sum()
    }

    pub fn measure(&self, by: Measure, kept: &[usize]) -> u64 {
        match by {
            Measure::Channels => self.channels(kept),
            Measure::Macs => self.macs(kept),
        }
    }
}

/// Selection settings.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    pub by: Measure,
    /// Share of the measure to remove, of what the model has now (0..1).
    pub ratio: f64,
    pub align: usize,
    pub min_keep: f64,
}

#[derive(PartialEq)]
struct Chunk {
    score: f64,
    set: usize,
}
impl Eq for Chunk {}
impl PartialOrd for Chunk {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Chunk {
    // Lowest score first (BinaryHeap is a max-heap), ties by set id.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.score
            .total_cmp(&self.score)
            .then_with(|| o.set.cmp(&self.set))
    }
}

/// The components to remove, or an error saying how much could be removed at most.
pub fn select(
    analysis: &Analysis,
    importance: &HashMap<usize, f64>,
    cost: &CostModel,
    s: Selection,
    model: &std::path::Path,
) -> Result<HashSet<usize>> {
    let align = s.align.max(1);
    let mut kept: Vec<usize> = analysis.tensors.iter().map(|t| t.channels).collect();
    let start = cost.measure(s.by, &kept) as f64;
    let goal = start * (1.0 - s.ratio);
    // Per set: components by importance (least first), how many removed, the floor.
    struct State {
        order: Vec<usize>,
        removed: usize,
        floor: usize,
        tensors: Vec<(usize, usize)>,
    }
    let index: HashMap<&str, usize> = analysis
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut states: HashMap<usize, State> = HashMap::new();
    for set in analysis.prunable_sets() {
        let n = set.channels;
        let floor = ((s.min_keep * n as f64).ceil() as usize)
            .max(1)
            .div_ceil(align)
            * align;
        let mut order = set.components.clone();
        order.sort_by(|a, b| importance[a].total_cmp(&importance[b]).then(a.cmp(b)));
        let tensors = set
            .tensors
            .iter()
            .map(|(name, m)| (index[name.as_str()], *m))
            .collect();
        states.insert(
            set.id,
            State {
                order,
                removed: 0,
                floor,
                tensors,
            },
        );
    }
    let next = |st: &State| -> Option<(usize, f64)> {
        let left = st.order.len() - st.removed;
        let size = match left % align {
            0 => align,
            r => r,
        };
        (left >= size && left - size >= st.floor).then(|| {
            let chunk = &st.order[st.removed..st.removed + size];
            let mean = chunk.iter().map(|c| importance[c]).sum::<f64>() / size as f64;
            (size, mean)
        })
    };
    let mut heap = BinaryHeap::new();
    for (&id, st) in &states {
        if let Some((_, score)) = next(st) {
            heap.push(Chunk { score, set: id });
        }
    }
    let mut removed = HashSet::new();
    let mut now = start;
    while now > goal {
        let Some(Chunk { set, .. }) = heap.pop() else {
            let reached = if start > 0.0 { 1.0 - now / start } else { 0.0 };
            return Err(Error::Contract(format!(
                "{}: cannot remove {:.1}% of {}: at most {:.1}% can go with --min-keep {} and \
                 --align {align} (the rest is excluded: see `trtforge prune --explain`); \
                 lower --ratio or --min-keep",
                model.display(),
                100.0 * s.ratio,
                match s.by {
                    Measure::Channels => "the channels",
                    Measure::Macs => "the MACs",
                },
                100.0 * reached,
                s.min_keep
            )));
        };
        let st = states.get_mut(&set).expect("queued sets have a state");
        let (size, _) = next(st).expect("queued chunks are valid");
        for &c in &st.order[st.removed..st.removed + size] {
            removed.insert(c);
        }
        st.removed += size;
        for &(t, m) in &st.tensors {
            kept[t] -= m * size;
        }
        now = cost.measure(s.by, &kept) as f64;
        if let Some((_, score)) = next(st) {
            heap.push(Chunk { score, set });
        }
    }
    Ok(removed)
}
