//! Which activations ONNX Runtime must hand back during calibration, and how every other
//! tensor's histogram is obtained without it.
//!
//! Asking ONNX Runtime for every node output blocks its graph fusions and copies every
//! tensor out: YOLOX-nano runs about 2x slower that way. Most of that is avoidable, exactly
//! or nearly so:
//! - a permutation of one tensor (Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Identity)
//!   holds the same values, so it has the same |x| histogram; a Concat holds the union of its
//!   inputs, so its histogram is their sum. Histograms merge exactly (see `histogram`), so these
//!   are bit-identical to histogramming the tensor itself.
//! - Sigmoid and SiLU (`Mul(x, Sigmoid(x))`) of a tensor ONNX Runtime returns: that tensor
//!   gets a signed histogram, and theirs are derived from it once, at the end (`unary::derive`:
//!   bins within a fraction of a coarse bin, range exact when it comes from x's largest value). Relu and LeakyRelu outputs are
//!   returned instead: deriving them would save one pass, but ONNX Runtime cannot fuse them
//!   into their conv either way (the conv output is returned), and returned they stay exact.
//!
//! `Plan::expose_all` asks ONNX Runtime for everything instead (`trtforge calibrate --expose-all`),
//! the slow cross-check.

use super::histogram::NonFinitePolicy;
use super::histogram::{HistogramSet, TensorHistogram};
use super::unary::{self, Unary};
use crate::error::Result;
use crate::onnx::Graph;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// Where one tensor's histogram comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A graph input: the caller feeds its values.
    Input,
    /// ONNX Runtime returns it as an output.
    Exposed,
    /// Derived at the end from the signed histogram of tensor `of` (an `Input` or `Exposed` one).
    Unary { of: usize, op: Unary },
    /// The sum of these tensors' histograms, formed once at the end (all earlier in graph order).
    Merge(Vec<usize>),
}

/// The capture plan for one model: a source per tensor, in graph order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub names: Vec<String>,
    pub sources: Vec<Source>,
    /// Per tensor: whether activations are derived from it (it is then histogrammed signed).
    signed: Vec<bool>,
}

const PERMUTATIONS: &[&str] = &[
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
];

impl Plan {
    /// The plan for every activation of `graph` (real inputs first, then node outputs, as
    /// [`Graph::activation_names`] lists them).
    pub fn new(graph: &Graph) -> Self {
        Self::build(graph, true)
    }

    /// Every tensor exposed by ONNX Runtime: slower, for cross-checking the recomputation.
    pub fn expose_all(graph: &Graph) -> Self {
        Self::build(graph, false)
    }

    /// Real graph inputs: the caller feeds them.
    pub fn graph_inputs(&self) -> Vec<String> {
        self.names
            .iter()
            .zip(&self.sources)
            .filter(|(_, s)| **s == Source::Input)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn build(graph: &Graph, derive: bool) -> Self {
        let names = graph.activation_names();
        // Position of each activation in `names` (histograms are kept in that order).
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut sources: Vec<Source> = names
            .iter()
            .map(|n| match graph.producer(n) {
                None => Source::Input,
                Some(_) => Source::Exposed,
            })
            .collect();
        // Which tensor each sigmoid output was recomputed from, for the SiLU pattern.
        let mut sigmoid_of: HashMap<usize, usize> = HashMap::new();
        for (o, name) in names.iter().enumerate() {
            // `expose_all`: every tensor stays Input or Exposed.
            let Some(id) = graph.producer(name).filter(|_| derive) else {
                continue;
            };
            let node = graph.node(id);
            if node.output.len() != 1 {
                continue;
            }
            let ins: Vec<Option<usize>> = node
                .input
                .iter()
                .map(|i| index.get(i.as_str()).copied())
                .collect();
            // The tensor values come from, if it is one the caller sees.
            let direct = |i: Option<usize>| {
                i.filter(|&i| matches!(sources[i], Source::Input | Source::Exposed))
            };
            let op = node.op_type.as_str();
            let source = match op {
                _ if PERMUTATIONS.contains(&op) => ins
                    .first()
                    .copied()
                    .flatten()
                    .map(|i| Source::Merge(vec![i])),
                "Concat" if !ins.is_empty() && ins.iter().all(Option::is_some) => {
                    Some(Source::Merge(ins.iter().flatten().copied().collect()))
                }
                "Sigmoid" if ins.len() == 1 => direct(ins[0]).map(|of| Source::Unary {
                    of,
                    op: Unary::Sigmoid,
                }),
                "Mul" if ins.len() == 2 => {
                    // Mul(x, Sigmoid(x)) in either order, x seen directly.
                    let silu = |x: Option<usize>, s: Option<usize>| {
                        let (x, s) = (direct(x)?, s?);
                        (sigmoid_of.get(&s) == Some(&x)).then_some(Source::Unary {
                            of: x,
                            op: Unary::Silu,
                        })
                    };
                    silu(ins[0], ins[1]).or_else(|| silu(ins[1], ins[0]))
                }
                _ => None,
            };
            if let Some(s) = source {
                if let Source::Unary {
                    of,
                    op: Unary::Sigmoid,
                } = s
                {
                    sigmoid_of.insert(o, of);
                }
                sources[o] = s;
            }
        }
        let mut signed = vec![false; names.len()];
        for s in &sources {
            if let Source::Unary { of, .. } = s {
                signed[*of] = true;
            }
        }
        Plan {
            names,
            sources,
            signed,
        }
    }

    /// Empty histograms for this plan: signed where activations are derived from the tensor.
    pub fn histograms(&self, policy: NonFinitePolicy) -> HistogramSet {
        let hists = self
            .signed
            .iter()
            .map(|&s| {
                if s {
                    TensorHistogram::new_signed(policy)
                } else {
                    TensorHistogram::new(policy)
                }
            })
            .collect();
        HistogramSet {
            names: self.names.clone(),
            hists,
        }
    }

    /// Bytes [`Plan::histograms`] allocates (see `histogram`'s memory note).
    pub fn histogram_bytes(&self) -> u64 {
        let per = (super::histogram::FINE_BINS * 4) as u64;
        self.signed
            .iter()
            .map(|&s| if s { 2 * per } else { per })
            .sum()
    }

    /// The node outputs ONNX Runtime must return (graph inputs are fed, not returned).
    pub fn exposed(&self) -> Vec<String> {
        self.names
            .iter()
            .zip(&self.sources)
            .filter(|(_, s)| **s == Source::Exposed)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Tensors ONNX Runtime would have returned that are derived instead.
    pub fn derived_count(&self) -> usize {
        self.sources
            .iter()
            .filter(|s| !matches!(s, Source::Input | Source::Exposed))
            .count()
    }

    /// Add one image: `values[i]` holds the values of every `Input`/`Exposed` float tensor
    /// (`None` for non-float ones). Tensors are histogrammed in parallel, each by one thread.
    pub fn add_image(
        &self,
        set: &mut HistogramSet,
        values: &[Option<&[f32]>],
        image: &Path,
    ) -> Result<()> {
        set.hists
            .par_iter_mut()
            .zip(values.par_iter())
            .zip(self.names.par_iter())
            .try_for_each(|((h, v), name)| match v {
                Some(xs) => h.add_named(xs, name, image),
                None => Ok(()),
            })
    }

    /// Whether each tensor holds float values, given which seen tensors were float.
    pub fn float_tensors(&self, seen_float: &[bool]) -> Vec<bool> {
        let mut f = seen_float.to_vec();
        for (i, s) in self.sources.iter().enumerate() {
            match s {
                Source::Unary { of, .. } => f[i] = f[*of],
                Source::Merge(from) => f[i] = from.iter().all(|&j| f[j]),
                Source::Input | Source::Exposed => {}
            }
        }
        f
    }

    /// Derive the `Unary` histograms, then form the `Merge` ones (in graph order, so chains
    /// resolve). Call once, at the end.
    pub fn finish(&self, set: &mut HistogramSet) {
        let derived: Vec<(usize, TensorHistogram)> = self
            .sources
            .par_iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Source::Unary { of, op } => Some((i, unary::derive(*op, &set.hists[*of]))),
                _ => None,
            })
            .collect();
        for (i, h) in derived {
            set.hists[i] = h;
        }
        for (i, s) in self.sources.iter().enumerate() {
            if let Source::Merge(from) = s {
                let mut h = TensorHistogram::new(set.hists[i].policy());
                for &j in from {
                    h.merge(&set.hists[j]);
                }
                set.hists[i] = h;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::synth::GraphBuilder;
    use crate::onnx::{float_tensor, node, value_info, Model};

    /// x -> Conv -> c; Sigmoid(c) -> s; Mul(c, s) -> m; Relu(m) -> r; Reshape(r) -> p;
    /// Concat(p, c) -> k; Sigmoid(k) -> q (input derived: must be exposed).
    fn model() -> Model {
        let mut g = GraphBuilder::new("capture");
        g.graph.input.push(value_info("x", &[1, 2, 4, 4]));
        let mut add = |op: &str, ins: &[&str], out: &str| {
            g.graph.node.push(node(op, out, ins, &[out], vec![]));
        };
        add("Conv", &["x", "w"], "c");
        add("Sigmoid", &["c"], "s");
        add("Mul", &["s", "c"], "m");
        add("Relu", &["m"], "r");
        add("Reshape", &["r", "shape"], "p");
        add("Concat", &["p", "c"], "k");
        add("Sigmoid", &["k"], "q");
        g.graph
            .initializer
            .push(float_tensor("w", &[2, 2, 1, 1], vec![1.0, 0.0, 0.0, 1.0]));
        g.graph.output.push(value_info("q", &[1, 4, 4, 4]));
        g.finish(13, "capture.onnx")
    }

    #[test]
    fn permutations_and_concats_merge_and_activations_are_recomputed() {
        let m = model();
        let plan = Plan::new(&Graph::new(&m));
        let names = plan.names.clone();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        let src = |n: &str| plan.sources[at(n)].clone();
        assert_eq!(src("x"), Source::Input);
        assert_eq!(src("c"), Source::Exposed);
        assert_eq!(
            src("s"),
            Source::Unary {
                of: at("c"),
                op: Unary::Sigmoid
            }
        );
        assert_eq!(
            src("m"),
            Source::Unary {
                of: at("c"),
                op: Unary::Silu
            }
        );
        // Relu (and LeakyRelu) outputs are returned by ONNX Runtime, exact.
        assert_eq!(src("r"), Source::Exposed);
        assert_eq!(src("p"), Source::Merge(vec![at("r")]));
        assert_eq!(src("k"), Source::Merge(vec![at("p"), at("c")]));
        assert_eq!(src("q"), Source::Exposed);
        assert_eq!(plan.exposed(), ["c", "r", "q"]);
        assert_eq!(plan.graph_inputs(), ["x"]);
        let all = Plan::expose_all(&Graph::new(&m));
        assert_eq!(all.exposed(), ["c", "s", "m", "r", "p", "k", "q"]);
        assert_eq!(all.derived_count(), 0);
    }

    #[test]
    fn merges_are_exact_and_activations_are_derived_from_a_signed_histogram() {
        let m = model();
        let plan = Plan::new(&Graph::new(&m));
        let names = plan.names.clone();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 13.0) * 0.37).collect();
        let c = x.clone(); // identity weights
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        let s_: Vec<f32> = c.iter().map(|&v| sig(v)).collect();
        let m_: Vec<f32> = c.iter().map(|&v| v * sig(v)).collect();
        let r: Vec<f32> = m_.iter().map(|v| v.max(0.0)).collect();
        let k: Vec<f32> = r.iter().chain(&c).copied().collect();
        let q: Vec<f32> = k.iter().map(|&v| sig(v)).collect();
        let mut set = plan.histograms(NonFinitePolicy::Error);
        assert!(set.hists[at("c")].signed_counts().is_some());
        assert!(set.hists[at("r")].signed_counts().is_none());
        let mut values = vec![None; names.len()];
        values[at("x")] = Some(&x[..]);
        values[at("c")] = Some(&c[..]);
        values[at("r")] = Some(&r[..]);
        values[at("q")] = Some(&q[..]);
        plan.add_image(&mut set, &values, Path::new("img.png"))
            .unwrap();
        plan.finish(&mut set);
        let direct = |v: &[f32]| {
            let mut h = TensorHistogram::new(NonFinitePolicy::Error);
            h.add(v).unwrap();
            h
        };
        for (n, v) in [("p", &r), ("k", &k), ("c", &c)] {
            assert_eq!(set.hists[at(n)].counts(), direct(v).counts(), "{n}");
            assert_eq!(set.hists[at(n)].max_abs(), direct(v).max_abs(), "{n}");
        }
        for (n, v, op) in [("s", &s_, Unary::Sigmoid), ("m", &m_, Unary::Silu)] {
            let h = &set.hists[at(n)];
            assert_eq!(*h, unary::derive(op, &set.hists[at("c")]), "{n}");
            assert_eq!(h.count(), 32, "{n}");
            assert!((h.max_abs() - direct(v).max_abs()).abs() < 1e-6, "{n}");
        }
        let seen: Vec<bool> = values.iter().map(Option::is_some).collect();
        assert!(plan.float_tensors(&seen).iter().all(|&f| f));
    }
}
