//! A read-only view of a model's graph that every rewrite and analysis shares: stable node
//! ids, producer and consumer maps, constants (initializers and Constant nodes), typed
//! attribute reads and checked input access, with errors that name the node and the file.
//!
//! A [`NodeId`] is the node's index in the model's node list when the view was made; edits go
//! through a [`super::Patch`] against the view, so ids stay valid until the patch is applied.
//! Node identity is [`node_key`] everywhere (inspection, Q/DQ, plans, the TensorRT build): it
//! is the name TensorRT's ONNX parser gives the layer it makes from the node.

use super::{attr, Model};
use crate::error::{Error, Result};
use onnx_protobuf::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use std::collections::{HashMap, HashSet};

/// A node's position in the model the [`Graph`] view was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A node's identity: its name, or `node_of_<first output>` when it has none. This is exactly
/// what onnx-tensorrt's `getNodeName` calls the layer (onnx2trt_utils.cpp), so plans and
/// per-layer precisions written with it match the parsed network's layer names.
pub fn node_key(n: &NodeProto) -> String {
    match (n.name.is_empty(), n.output.first()) {
        (true, Some(out)) => format!("node_of_{out}"),
        _ => n.name.clone(),
    }
}

/// Inputs and outputs an op accepts (the widest range over opsets 11 to 21), for the ops
/// trtforge reads positionally or writes. `None`: not checked.
pub fn arity(op: &str) -> Option<((usize, usize), (usize, usize))> {
    const ANY: usize = usize::MAX;
    let one = (1, 1);
    Some(match op {
        "Conv" | "ConvTranspose" | "Gemm" => ((2, 3), one),
        "MatMul" | "Add" | "Sub" | "Mul" | "Div" | "Reshape" => ((2, 2), one),
        "QuantizeLinear" | "DequantizeLinear" => ((2, 3), one),
        "MaxPool" => (one, (1, 2)),
        "GlobalAveragePool" | "Relu" | "Sigmoid" | "LeakyRelu" | "Identity" | "Transpose"
        | "Flatten" | "Cast" | "Softmax" | "LogSoftmax" | "Hardmax" | "Tanh" => (one, one),
        "Concat" => ((1, ANY), one),
        "Split" => ((1, 2), (1, ANY)),
        "Squeeze" | "Unsqueeze" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" => {
            ((1, 2), one)
        }
        "Resize" => ((1, 4), one),
        "Upsample" => ((1, 2), one),
        "Clip" => ((1, 3), one),
        "Pad" => ((1, 4), one),
        "Slice" => ((1, 5), one),
        "TopK" => ((1, 2), (2, 2)),
        "BatchNormalization" => ((5, 5), (1, 5)),
        "Constant" => ((0, 0), one),
        _ => return None,
    })
}

/// Names of the tensors a subgraph (If/Loop/Scan body) reads from the scopes around it.
fn outer_reads(g: &GraphProto, out: &mut HashSet<String>) {
    let mut local: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    local.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for n in &g.node {
        local.extend(n.output.iter().map(String::as_str));
    }
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !local.contains(i.as_str()) {
                out.insert(i.clone());
            }
        }
        let mut inner = HashSet::new();
        node_subgraph_reads(n, &mut inner);
        out.extend(inner.into_iter().filter(|i| !local.contains(i.as_str())));
    }
    for o in &g.output {
        if !local.contains(o.name.as_str()) {
            out.insert(o.name.clone());
        }
    }
}

/// Tensors of the enclosing graph that `n`'s subgraph attributes read.
pub fn node_subgraph_reads(n: &NodeProto, out: &mut HashSet<String>) {
    for a in &n.attribute {
        if let Some(g) = a.g.as_ref() {
            outer_reads(g, out);
        }
        for g in &a.graphs {
            outer_reads(g, out);
        }
    }
}

/// Every tensor `n` reads: its inputs and what its subgraphs read from outside.
pub fn node_reads(n: &NodeProto) -> Vec<String> {
    let mut v: Vec<String> = n.input.iter().filter(|i| !i.is_empty()).cloned().collect();
    let mut sub = HashSet::new();
    node_subgraph_reads(n, &mut sub);
    let mut sub: Vec<String> = sub.into_iter().collect();
    sub.sort();
    v.extend(sub);
    v
}

/// The view. Borrows the model; make a new one after a patch is applied.
pub struct Graph<'m> {
    model: &'m Model,
    producer: HashMap<&'m str, NodeId>,
    consumers: HashMap<String, Vec<NodeId>>,
    initializers: HashMap<&'m str, &'m TensorProto>,
    /// Output of a Constant node -> its `value` tensor.
    constant_nodes: HashMap<&'m str, &'m TensorProto>,
    outputs: HashSet<&'m str>,
}

impl<'m> Graph<'m> {
    pub fn new(model: &'m Model) -> Self {
        let g = &model.proto.graph;
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<NodeId>> = HashMap::new();
        let mut constant_nodes = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(o.as_str(), NodeId(i));
            }
            for t in node_reads(n) {
                let list = consumers.entry(t).or_default();
                if list.last() != Some(&NodeId(i)) {
                    list.push(NodeId(i));
                }
            }
            if n.op_type == "Constant" {
                if let (Some(out), Ok(Some(t))) = (n.output.first(), attr::tensor(n, "value")) {
                    constant_nodes.insert(out.as_str(), t);
                }
            }
        }
        Graph {
            model,
            producer,
            consumers,
            initializers: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            constant_nodes,
            outputs: g.output.iter().map(|o| o.name.as_str()).collect(),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    pub fn proto(&self) -> &'m GraphProto {
        &self.model.proto.graph
    }

    pub fn len(&self) -> usize {
        self.proto().node.len()
    }

    pub fn is_empty(&self) -> bool {
        self.proto().node.is_empty()
    }

    /// Every node with its id, in graph order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &'m NodeProto)> + 'm {
        self.proto()
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| (NodeId(i), n))
    }

    pub fn node(&self, id: NodeId) -> &'m NodeProto {
        &self.proto().node[id.0]
    }

    /// The node's identity ([`node_key`]).
    pub fn key(&self, id: NodeId) -> String {
        node_key(self.node(id))
    }

    /// The rank the model declares for `tensor` (graph input, output or value_info with a
    /// shape), if it declares one. Declared, not inferred: callers that need the truth run
    /// ONNX Runtime.
    pub fn declared_rank(&self, tensor: &str) -> Option<usize> {
        let g = self.proto();
        g.input
            .iter()
            .chain(&g.output)
            .chain(&g.value_info)
            .filter(|v| v.name == tensor)
            .find_map(|v| {
                let t = v.type_.as_ref()?.tensor_type();
                t.shape.as_ref().map(|s| s.dim.len())
            })
    }

    /// Whether the node is in the default (ONNX) domain.
    pub fn is_standard(&self, id: NodeId) -> bool {
        let d = &self.node(id).domain;
        d.is_empty() || d == "ai.onnx"
    }

    /// The node producing `tensor`, if a node does.
    pub fn producer(&self, tensor: &str) -> Option<NodeId> {
        self.producer.get(tensor).copied()
    }

    /// The nodes reading `tensor` (inputs or subgraphs), in graph order, each once.
    pub fn consumers(&self, tensor: &str) -> &[NodeId] {
        self.consumers.get(tensor).map_or(&[], Vec::as_slice)
    }

    pub fn is_initializer(&self, name: &str) -> bool {
        self.initializers.contains_key(name)
    }

    pub fn initializer(&self, name: &str) -> Option<&'m TensorProto> {
        self.initializers.get(name).copied()
    }

    /// A constant tensor: an initializer, or the `value` of a Constant node.
    pub fn constant(&self, name: &str) -> Option<&'m TensorProto> {
        self.initializer(name)
            .or_else(|| self.constant_nodes.get(name).copied())
    }

    pub fn is_constant(&self, name: &str) -> bool {
        self.constant(name).is_some()
    }

    /// Every constant tensor by name (initializers, then Constant nodes).
    pub fn constants(&self) -> impl Iterator<Item = (&'m str, &'m TensorProto)> + '_ {
        self.initializers
            .iter()
            .map(|(k, v)| (*k, *v))
            .chain(self.constant_nodes.iter().map(|(k, v)| (*k, *v)))
    }

    pub fn is_graph_output(&self, name: &str) -> bool {
        self.outputs.contains(name)
    }

    /// Graph inputs that are real inputs (not initializers listed as inputs, as IR < 4 required).
    pub fn real_inputs(&self) -> Vec<&'m ValueInfoProto> {
        self.proto()
            .input
            .iter()
            .filter(|i| !self.is_initializer(&i.name))
            .collect()
    }

    /// Tensors TensorRT sees as activations, in graph order: real graph inputs, then every
    /// node output except those of Constant nodes.
    pub fn activation_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.real_inputs().iter().map(|i| i.name.clone()).collect();
        for n in self.proto().node.iter().filter(|n| n.op_type != "Constant") {
            out.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
        out
    }

    /// Every name in use: tensors, nodes, initializers, inputs, outputs and value infos, in
    /// the graph and in every subgraph (a new name must not shadow a subgraph's own).
    pub fn names(&self) -> HashSet<String> {
        fn collect(g: &GraphProto, s: &mut HashSet<String>) {
            for n in &g.node {
                s.insert(n.name.clone());
                s.extend(n.input.iter().cloned());
                s.extend(n.output.iter().cloned());
                for a in &n.attribute {
                    for sub in a.g.as_ref().into_iter().chain(&a.graphs) {
                        collect(sub, s);
                    }
                }
            }
            s.extend(g.initializer.iter().map(|t| t.name.clone()));
            s.extend(
                g.input
                    .iter()
                    .chain(&g.output)
                    .chain(&g.value_info)
                    .map(|v| v.name.clone()),
            );
        }
        let mut s = HashSet::new();
        collect(self.proto(), &mut s);
        s.remove("");
        s
    }

    /// An ONNX error about node `id`, naming it and the model file.
    pub fn error(&self, id: NodeId, msg: impl std::fmt::Display) -> Error {
        let n = self.node(id);
        Error::Onnx {
            path: self.model.path.clone(),
            msg: format!("node '{}' ({}): {msg}", node_key(n), n.op_type),
        }
    }

    /// Check the node's input and output counts against [`arity`]; a malformed node is an
    /// ONNX error naming it (the fix is to re-export the model).
    pub fn check_arity(&self, id: NodeId) -> Result<()> {
        check_node_arity(self.node(id)).map_err(|m| self.error(id, m))
    }

    /// Input `slot` of node `id`, which the op requires: present and non-empty.
    pub fn input(&self, id: NodeId, slot: usize) -> Result<&'m str> {
        let n = self.node(id);
        match n.input.get(slot) {
            Some(t) if !t.is_empty() => Ok(t.as_str()),
            _ => Err(self.error(
                id,
                format!(
                    "has {} input(s) but input {slot} is required; the model is malformed: re-export it",
                    n.input.len()
                ),
            )),
        }
    }

    /// Input `slot` when present and non-empty (optional inputs).
    pub fn optional_input(&self, id: NodeId, slot: usize) -> Option<&'m str> {
        self.node(id)
            .input
            .get(slot)
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    }

    fn attr_err(&self, id: NodeId) -> impl Fn(String) -> Error + '_ {
        move |m| self.error(id, m)
    }

    pub fn attr_int(&self, id: NodeId, name: &str) -> Result<Option<i64>> {
        attr::int(self.node(id), name).map_err(self.attr_err(id))
    }

    pub fn attr_ints(&self, id: NodeId, name: &str) -> Result<Option<&'m [i64]>> {
        attr::ints(self.node(id), name).map_err(self.attr_err(id))
    }

    pub fn attr_float(&self, id: NodeId, name: &str) -> Result<Option<f32>> {
        attr::float(self.node(id), name).map_err(self.attr_err(id))
    }

    pub fn attr_string(&self, id: NodeId, name: &str) -> Result<Option<&'m [u8]>> {
        attr::string(self.node(id), name).map_err(self.attr_err(id))
    }

    /// A float constant's dims and values (FLOAT or FLOAT16), `None` when `name` is not a
    /// constant; a constant of another type or with a wrong value count is an error naming it.
    pub fn constant_f32(&self, name: &str) -> Result<Option<(Vec<i64>, Vec<f32>)>> {
        let Some(t) = self.constant(name) else {
            return Ok(None);
        };
        let v = super::tensor::read_f32(t).map_err(|m| Error::Onnx {
            path: self.model.path.clone(),
            msg: m,
        })?;
        Ok(Some((t.dims.clone(), v)))
    }
}

/// [`arity`] applied to one node; `Err` says what is wrong.
pub fn check_node_arity(n: &NodeProto) -> std::result::Result<(), String> {
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return Ok(());
    }
    let Some(((imin, imax), (omin, omax))) = arity(&n.op_type) else {
        return Ok(());
    };
    // Trailing empty names are omitted optional inputs.
    let inputs = n.input.len() - n.input.iter().rev().take_while(|i| i.is_empty()).count();
    let range = |lo: usize, hi: usize| {
        if hi == usize::MAX {
            format!("at least {lo}")
        } else if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo} to {hi}")
        }
    };
    if inputs < imin || inputs > imax {
        return Err(format!(
            "has {inputs} input(s), {} takes {}; the model is malformed: re-export it",
            n.op_type,
            range(imin, imax)
        ));
    }
    let outputs = n.output.len();
    if outputs < omin || outputs > omax {
        return Err(format!(
            "has {outputs} output(s), {} gives {}; the model is malformed: re-export it",
            n.op_type,
            range(omin, omax)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{node, synth::tiny_detector};

    #[test]
    fn producers_consumers_and_keys() {
        let mut m = tiny_detector(16);
        // An unnamed node is keyed as TensorRT's parser names its layer.
        m.proto.graph.mut_or_insert_default().node[1].name.clear();
        let g = Graph::new(&m);
        let stem = g.producer("stem.out").unwrap();
        assert_eq!(g.key(stem), "stem");
        assert_eq!(g.key(NodeId(1)), "node_of_stem_act.out");
        assert_eq!(g.consumers("stem.out"), &[NodeId(1)]);
        assert!(g.is_initializer("stem.weight") && g.is_constant("stem.weight"));
        assert_eq!(g.activation_names()[0], "images");
        assert_eq!(g.real_inputs().len(), 1);
        assert_eq!(g.input(stem, 1).unwrap(), "stem.weight");
        let e = g.input(stem, 5).unwrap_err().to_string();
        assert!(
            e.contains("node 'stem' (Conv)") && e.contains("input 5"),
            "{e}"
        );
    }

    #[test]
    fn arity_is_checked_for_known_ops_only() {
        let ok = node("Conv", "c", &["x", "w", ""], &["y"], vec![]);
        assert!(check_node_arity(&ok).is_ok());
        let bad = node("Conv", "c", &["x"], &["y"], vec![]);
        let e = check_node_arity(&bad).unwrap_err();
        assert!(e.contains("1 input(s)") && e.contains("2 to 3"), "{e}");
        let custom = node("MyOp", "m", &[], &[], vec![]);
        assert!(check_node_arity(&custom).is_ok());
    }
}
