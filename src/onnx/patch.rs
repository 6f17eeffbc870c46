//! Edits to a model, collected against a [`Graph`] view and applied in one step (in the
//! spirit of tract's model patches): fresh names, new or replaced constants, inserted,
//! replaced and removed nodes, rewired inputs, opset changes.
//!
//! [`Patch::apply`] writes a new model and guarantees, or refuses with an error naming the
//! node:
//! - untouched protobuf content is kept as it was (nodes, fields unknown to this ONNX
//!   version, metadata, value infos), because the model is cloned and only edited;
//! - node order is topological, and it is the original order wherever the edits allow
//!   (a stable sort: a graph that was already in order keeps its order);
//! - constants nobody reads any more (initializers, Constant nodes, and initializers listed
//!   as graph inputs, as IR < 4 required) are dropped;
//! - every input is produced by something, every tensor by one node only, and nodes the
//!   patch wrote have the input and output counts their op takes.

use super::graph::{check_node_arity, node_reads, Graph, NodeId};
use super::Model;
use crate::error::{Error, Result};
use onnx_protobuf::{NodeProto, TensorProto, ValueInfoProto};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

pub struct Patch<'g, 'm> {
    graph: &'g Graph<'m>,
    used: HashSet<String>,
    /// Names handed out by `fresh`: the only ones new tensors, nodes and initializers may use.
    fresh: HashSet<String>,
    /// Edits that cannot be applied, reported by `apply`.
    refused: Vec<String>,
    before: BTreeMap<usize, Vec<NodeProto>>,
    replaced: HashMap<usize, NodeProto>,
    removed: HashSet<usize>,
    new_initializers: Vec<TensorProto>,
    new_inputs: Vec<ValueInfoProto>,
    replaced_constants: HashMap<String, TensorProto>,
    opset: Option<i64>,
    min_ir_version: Option<i64>,
}

impl<'g, 'm> Patch<'g, 'm> {
    pub fn new(graph: &'g Graph<'m>) -> Self {
        Patch {
            graph,
            used: graph.names(),
            fresh: HashSet::new(),
            refused: Vec::new(),
            before: BTreeMap::new(),
            replaced: HashMap::new(),
            removed: HashSet::new(),
            new_initializers: Vec::new(),
            new_inputs: Vec::new(),
            replaced_constants: HashMap::new(),
            opset: None,
            min_ir_version: None,
        }
    }

    pub fn graph(&self) -> &'g Graph<'m> {
        self.graph
    }

    /// A name no tensor, node or initializer of the model or of this patch has: `base`, else
    /// `base_1`, `base_2`, ...
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.used.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.fresh.insert(name.clone());
        name
    }

    /// Add an initializer; its name must come from [`Patch::fresh`] (else `apply` refuses).
    pub fn add_initializer(&mut self, t: TensorProto) {
        if !self.fresh.remove(&t.name) {
            self.refused.push(format!(
                "new initializer '{}' was not named by Patch::fresh (it may clash)",
                t.name
            ));
        }
        self.new_initializers.push(t);
    }

    /// Add a graph input (a value fed at run time, such as a mask a search varies without
    /// rebuilding the session); its name must come from [`Patch::fresh`].
    pub fn add_input(&mut self, v: ValueInfoProto) {
        if !self.fresh.remove(&v.name) {
            self.refused.push(format!(
                "new graph input '{}' was not named by Patch::fresh (it may clash)",
                v.name
            ));
        }
        self.new_inputs.push(v);
    }

    /// Replace the values of a constant (initializer or Constant node) of the model.
    pub fn replace_constant(&mut self, t: TensorProto) -> Result<()> {
        if !self.graph.is_constant(&t.name) {
            return Err(Error::Onnx {
                path: self.graph.model().path.clone(),
                msg: format!("'{}' is not a constant of the model", t.name),
            });
        }
        self.replaced_constants.insert(t.name.clone(), t);
        Ok(())
    }

    /// Insert `n` just before node `id` (after earlier insertions before it). Its outputs must
    /// be fresh names.
    pub fn insert_before(&mut self, id: NodeId, n: NodeProto) {
        if id.0 >= self.graph.len() {
            self.refused.push(format!(
                "node '{}' inserted before node #{} of a graph of {} nodes",
                super::node_key(&n),
                id.0,
                self.graph.len()
            ));
        }
        self.before.entry(id.0).or_default().push(n);
    }

    pub fn remove_node(&mut self, id: NodeId) {
        self.removed.insert(id.0);
    }

    pub fn replace_node(&mut self, id: NodeId, n: NodeProto) {
        self.replaced.insert(id.0, n);
    }

    /// The node as this patch will write it (a copy made on first use).
    pub fn node_mut(&mut self, id: NodeId) -> &mut NodeProto {
        let g = self.graph;
        self.replaced
            .entry(id.0)
            .or_insert_with(|| g.node(id).clone())
    }

    /// Make input `slot` of node `id` read `tensor`.
    pub fn set_input(&mut self, id: NodeId, slot: usize, tensor: &str) {
        let n = self.node_mut(id);
        if n.input.len() <= slot {
            n.input.resize(slot + 1, String::new());
        }
        n.input[slot] = tensor.to_string();
    }

    /// Every node that reads `from` as an input reads `to` instead. A node that reads `from`
    /// inside a subgraph cannot be rewired here: `apply` refuses it.
    pub fn replace_uses(&mut self, from: &str, to: &str) {
        for &id in self.graph.consumers(from) {
            let direct = self.graph.node(id).input.iter().any(|i| i == from);
            if !direct {
                self.refused.push(format!(
                    "node '{}' reads '{from}' inside a subgraph; rewiring subgraphs is not supported",
                    self.graph.key(id)
                ));
                continue;
            }
            let n = self.node_mut(id);
            for i in n.input.iter_mut().filter(|i| *i == from) {
                *i = to.to_string();
            }
        }
    }

    /// Set the default-domain opset (and raise the IR version to at least `min_ir`).
    pub fn set_opset(&mut self, version: i64, min_ir: i64) {
        self.opset = Some(version);
        self.min_ir_version = Some(min_ir);
    }

    /// Write the patched model (see the module documentation for what is guaranteed).
    pub fn apply(self) -> Result<Model> {
        let model = self.graph.model();
        let mut out = model.clone();
        let err = |msg: String| Error::Onnx {
            path: model.path.clone(),
            msg,
        };
        if let Some(r) = self.refused.first() {
            return Err(err(format!("cannot apply the rewrite: {r}")));
        }
        if let Some(&i) = self.removed.iter().find(|i| self.replaced.contains_key(i)) {
            return Err(err(format!(
                "cannot apply the rewrite: node '{}' is both removed and rewritten",
                self.graph.key(NodeId(i))
            )));
        }
        let g = out.proto.graph.mut_or_insert_default();
        let old = std::mem::take(&mut g.node);
        let mut touched: Vec<bool> = Vec::with_capacity(old.len());
        let mut nodes = Vec::with_capacity(old.len());
        let mut before = self.before;
        let mut replaced = self.replaced;
        for (i, n) in old.into_iter().enumerate() {
            for b in before.remove(&i).unwrap_or_default() {
                nodes.push(b);
                touched.push(true);
            }
            if self.removed.contains(&i) {
                continue;
            }
            match replaced.remove(&i) {
                Some(r) => {
                    nodes.push(r);
                    touched.push(true);
                }
                None => {
                    nodes.push(n);
                    touched.push(false);
                }
            }
        }
        for (n, &t) in nodes.iter_mut().zip(&touched) {
            if n.op_type == "Constant" {
                if let Some(c) = n
                    .output
                    .first()
                    .and_then(|o| self.replaced_constants.get(o))
                {
                    let mut c = c.clone();
                    c.name = String::new(); // a Constant's value is named by its output
                    let key = super::node_key(n);
                    let Some(a) = n.attribute.iter_mut().find(|a| a.name == "value") else {
                        return Err(err(format!(
                            "node '{key}' (Constant) has no `value` tensor to replace \
                             (is its output name also an initializer's?)"
                        )));
                    };
                    a.t = Some(c).into();
                }
            }
            if t {
                check_node_arity(n).map_err(|m| {
                    err(format!(
                        "node '{}' ({}) written by trtforge {m}",
                        super::node_key(n),
                        n.op_type
                    ))
                })?;
            }
        }
        for t in g.initializer.iter_mut() {
            if let Some(r) = self.replaced_constants.get(&t.name) {
                *t = r.clone();
            }
        }
        g.initializer.extend(self.new_initializers);
        g.input.extend(self.new_inputs);

        // Dead constants: nothing reads them any more.
        let mut read: HashSet<String> = nodes.iter().flat_map(node_reads).collect();
        read.extend(g.output.iter().map(|o| o.name.clone()));
        nodes.retain(|n| n.op_type != "Constant" || n.output.iter().any(|o| read.contains(o)));
        let had_initializer: HashSet<String> =
            g.initializer.iter().map(|t| t.name.clone()).collect();
        g.initializer.retain(|t| read.contains(&t.name));
        let kept: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        g.input
            .retain(|i| !had_initializer.contains(&i.name) || kept.contains(i.name.as_str()));

        g.node = stable_topological_order(nodes, g).map_err(err)?;
        if let Some(v) = self.opset {
            for o in out.proto.opset_import.iter_mut() {
                if o.domain.is_empty() || o.domain == "ai.onnx" {
                    o.version = v;
                }
            }
        }
        if let Some(ir) = self.min_ir_version {
            out.proto.ir_version = out.proto.ir_version.max(ir);
        }
        super::model::check_connected(&out.proto).map_err(err)?;
        Ok(out)
    }
}

/// Sort nodes so every producer comes before its readers, keeping the given order wherever
/// it already is one (Kahn's algorithm, always taking the earliest ready node).
fn stable_topological_order(
    nodes: Vec<NodeProto>,
    g: &onnx_protobuf::GraphProto,
) -> std::result::Result<Vec<NodeProto>, String> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(first) = producer.insert(o.as_str(), i) {
                return Err(format!(
                    "tensor '{o}' is produced by both node '{}' and node '{}'",
                    super::node_key(&nodes[first]),
                    super::node_key(n)
                ));
            }
        }
    }
    let external: HashSet<&str> = g
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(g.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    let mut indegree = vec![0usize; nodes.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut deps: Vec<usize> = node_reads(n)
            .iter()
            .filter(|t| !external.contains(t.as_str()))
            .filter_map(|t| producer.get(t.as_str()).copied())
            .collect();
        deps.sort_unstable();
        deps.dedup();
        for d in deps {
            if d == i {
                return Err(format!(
                    "node '{}' ({}) reads its own output",
                    super::node_key(n),
                    n.op_type
                ));
            }
            indegree[i] += 1;
            readers[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &r in &readers[i] {
            indegree[r] -= 1;
            if indegree[r] == 0 {
                ready.push(Reverse(r));
            }
        }
    }
    if order.len() != nodes.len() {
        let stuck = (0..nodes.len()).find(|&i| indegree[i] > 0).unwrap_or(0);
        return Err(format!(
            "the graph has a cycle through node '{}' ({})",
            super::node_key(&nodes[stuck]),
            nodes[stuck].op_type
        ));
    }
    let mut slots: Vec<Option<NodeProto>> = nodes.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each index once"))
        .collect())
}

/// A copy of `model` where each of `names` is also a graph output (name only: ONNX Runtime
/// infers the type). Names already output are left alone.
pub fn with_extra_outputs(model: &Model, names: &[String]) -> Model {
    let mut m = model.clone();
    let graph = m.proto.graph.mut_or_insert_default();
    let mut present: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for n in names {
        if present.insert(n.clone()) {
            let mut vi = onnx_protobuf::ValueInfoProto::new();
            vi.name = n.clone();
            graph.output.push(vi);
        }
    }
    m
}

/// A copy of `model` whose graph inputs named in `shapes` declare exactly those dims, so
/// that ONNX Runtime's shape inference, when it loads the copy, knows every size a run on
/// such inputs will have (memory estimates before probing).
pub fn with_fixed_inputs(
    model: &Model,
    shapes: &std::collections::BTreeMap<String, Vec<usize>>,
) -> Model {
    use onnx_protobuf::tensor_shape_proto::{dimension::Value as Dim, Dimension};
    let mut m = model.clone();
    let graph = m.proto.graph.mut_or_insert_default();
    for input in graph.input.iter_mut() {
        let Some(dims) = shapes.get(&input.name) else {
            continue;
        };
        let Some(ty) = input.type_.as_mut() else {
            continue;
        };
        if let Some(onnx_protobuf::type_proto::Value::TensorType(t)) = ty.value.as_mut() {
            let shape = t.shape.mut_or_insert_default();
            shape.dim = dims
                .iter()
                .map(|&d| {
                    let mut dim = Dimension::new();
                    dim.value = Some(Dim::DimValue(d as i64));
                    dim
                })
                .collect();
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{float_tensor, node, synth::tiny_detector, value_info};

    fn node_names(m: &Model) -> Vec<&str> {
        m.proto.graph.node.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn a_new_graph_input_is_fed_at_run_time_and_must_have_a_fresh_name() {
        let m = tiny_detector(16);
        let g = Graph::new(&m);
        let mut p = Patch::new(&g);
        let head = g.producer("head.out").unwrap();
        let k = p.fresh("k");
        p.add_input(value_info(&k, &[1]));
        let scaled = p.fresh("scaled");
        p.insert_before(
            head,
            node(
                "Mul",
                "times_k",
                &["pruned_act.out", &k],
                &[&scaled],
                vec![],
            ),
        );
        p.set_input(head, 0, &scaled);
        let out = p.apply().unwrap();
        let inputs: Vec<&str> = out
            .proto
            .graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(inputs.last(), Some(&"k"));
        // A name the model already has may clash: refused, naming it.
        let mut p = Patch::new(&g);
        p.add_input(value_info("stem.out", &[1]));
        let e = p.apply().unwrap_err().to_string();
        assert!(
            e.contains("'stem.out' was not named by Patch::fresh"),
            "{e}"
        );
    }

    #[test]
    fn insertions_rewires_and_fresh_names_apply_in_order() {
        let m = tiny_detector(16);
        let g = Graph::new(&m);
        let mut p = Patch::new(&g);
        // "stem.out" exists: a fresh name gets a suffix; a new one is taken as is.
        assert_eq!(p.fresh("stem.out"), "stem.out_1");
        assert_eq!(p.fresh("scaled"), "scaled");
        let head = g.producer("head.out").unwrap();
        let scale = p.fresh("two");
        p.add_initializer(float_tensor(&scale, &[], vec![2.0]));
        p.insert_before(
            head,
            node(
                "Mul",
                "double",
                &["pruned_act.out", &scale],
                &["scaled"],
                vec![],
            ),
        );
        p.set_input(head, 0, "scaled");
        let out = p.apply().unwrap();
        let og = Graph::new(&out);
        assert_eq!(og.node(og.producer("scaled").unwrap()).name, "double");
        assert_eq!(og.consumers("pruned_act.out").len(), 1);
        let ops = node_names(&out);
        assert_eq!(
            ops,
            [
                "stem",
                "stem_act",
                "pruned",
                "pruned_act",
                "double",
                "head",
                "head_act"
            ]
        );
        assert_eq!(out.proto.graph.node[5].input[0], "scaled");
        assert!(out.proto.graph.initializer.iter().any(|t| t.name == "two"));
    }

    #[test]
    fn order_is_repaired_dead_constants_dropped_and_faults_refused() {
        let m = tiny_detector(16);
        let g = Graph::new(&m);
        // A node appended before the first node but reading a late tensor moves down.
        let mut p = Patch::new(&g);
        p.insert_before(
            NodeId(0),
            node("Identity", "late", &["head.out"], &["copy"], vec![]),
        );
        let out = p.apply().unwrap();
        let names = node_names(&out);
        // It runs as soon as its input exists: right after the head conv.
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(at("late"), at("head") + 1);
        // A weight nobody reads any more is dropped.
        let head = g.producer("head.out").unwrap();
        let mut p = Patch::new(&g);
        p.set_input(head, 1, "pruned.weight");
        let out = p.apply().unwrap();
        let inits = &out.proto.graph.initializer;
        assert!(!inits.iter().any(|t| t.name == "head.weight"));
        assert!(inits.iter().any(|t| t.name == "pruned.weight"));
        // A read of a tensor nothing produces is refused, naming the node.
        let mut p = Patch::new(&g);
        p.set_input(head, 0, "nowhere");
        let e = p.apply().unwrap_err().to_string();
        assert!(e.contains("nowhere") && e.contains("'head'"), "{e}");
        // A node written with the wrong arity is refused, naming it.
        let mut p = Patch::new(&g);
        p.replace_node(
            head,
            node("Conv", "head", &["pruned_act.out"], &["head.out"], vec![]),
        );
        let e = p.apply().unwrap_err().to_string();
        assert!(
            e.contains("'head' (Conv)") && e.contains("1 input(s)"),
            "{e}"
        );
        // Two producers of one tensor are refused.
        let mut p = Patch::new(&g);
        p.insert_before(
            head,
            node("Identity", "dup", &["images"], &["head.out"], vec![]),
        );
        assert!(p
            .apply()
            .unwrap_err()
            .to_string()
            .contains("produced by both"));
    }

    #[test]
    fn constants_are_replaced_in_place_and_nodes_removed_with_their_uses_rewired() {
        use crate::onnx::{tensor, tensor_attr};
        let mut m = tiny_detector(16);
        // A Constant node feeding a Mul after the head, as some exporters store weights.
        let g0 = m.proto.graph.mut_or_insert_default();
        g0.node.push(node(
            "Constant",
            "k",
            &[],
            &["k.out"],
            vec![tensor_attr("value", float_tensor("", &[1], vec![3.0]))],
        ));
        g0.node.push(node(
            "Mul",
            "scale",
            &["scores", "k.out"],
            &["scaled"],
            vec![],
        ));
        g0.output[0].name = "scaled".into();
        let g = Graph::new(&m);
        let mut p = Patch::new(&g);
        // Keep 4 of the head's 45 output channels; the Constant becomes 0.5.
        let w = g.initializer("head.weight").unwrap();
        p.replace_constant(tensor::slice_axis(w, 0, &[0, 1, 2, 44]).unwrap())
            .unwrap();
        p.replace_constant(float_tensor("k.out", &[1], vec![0.5]))
            .unwrap();
        assert!(p
            .replace_constant(float_tensor("scores", &[1], vec![0.0]))
            .is_err());
        // Drop the final Sigmoid: its reader takes the head's output instead.
        let act = g.producer("scores").unwrap();
        p.remove_node(act);
        p.replace_uses("scores", "head.out");
        let out = p.apply().unwrap();
        let og = Graph::new(&out);
        assert_eq!(
            og.initializer("head.weight").unwrap().dims,
            vec![4, 27, 1, 1]
        );
        // The initializer keeps its place in the list.
        let pos = |m: &Model| {
            m.proto
                .graph
                .initializer
                .iter()
                .position(|t| t.name == "head.weight")
        };
        assert_eq!(pos(&out), pos(&m));
        let k = og.constant("k.out").unwrap();
        assert_eq!(tensor::read_f32(k).unwrap(), vec![0.5]);
        assert!(
            k.name.is_empty(),
            "a Constant's value is named by its output"
        );
        assert!(og.producer("scores").is_none());
        let mul = og.node(og.producer("scaled").unwrap());
        assert_eq!(mul.input[0], "head.out");
    }

    #[test]
    fn unknown_fields_metadata_and_ir3_inputs_survive() {
        let mut m = tiny_detector(16);
        m.proto.doc_string = "keep me".into();
        let g0 = m.proto.graph.mut_or_insert_default();
        // IR < 4 style: an initializer also listed as an input.
        g0.input.push(value_info("head.bias", &[45]));
        g0.node[0]
            .special_fields
            .mut_unknown_fields()
            .add_varint(999, 7);
        let g = Graph::new(&m);
        let mut p = Patch::new(&g);
        let head = g.producer("head.out").unwrap();
        p.set_input(head, 2, ""); // drop the bias: its initializer and its input entry go
        let out = p.apply().unwrap();
        assert_eq!(out.proto.doc_string, "keep me");
        let og = &out.proto.graph;
        assert!(og.node[0]
            .special_fields
            .unknown_fields()
            .get(999)
            .is_some());
        assert!(!og.initializer.iter().any(|t| t.name == "head.bias"));
        assert!(!og.input.iter().any(|i| i.name == "head.bias"));
        assert_eq!(og.input.len(), 1);
    }

    /// An If node whose branch reads `pruned_act.out` from the outer graph.
    fn with_if_reading_pruned_act() -> Model {
        use onnx_protobuf::{AttributeProto, GraphProto};
        let mut m = tiny_detector(16);
        let mut body = GraphProto::new();
        body.name = "then".into();
        body.node.push(node(
            "Identity",
            "inner",
            &["pruned_act.out"],
            &["inner.out"],
            vec![],
        ));
        body.output.push(value_info("inner.out", &[1]));
        let mut a = AttributeProto::new();
        a.name = "then_branch".into();
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::GRAPH.into();
        a.g = protobuf::MessageField::some(body.clone());
        let mut e = a.clone();
        e.name = "else_branch".into();
        let g0 = m.proto.graph.mut_or_insert_default();
        g0.initializer.push(onnx_protobuf::TensorProto {
            name: "flag".into(),
            data_type: onnx_protobuf::tensor_proto::DataType::BOOL as i32,
            int32_data: vec![1],
            ..Default::default()
        });
        let mut branch = node("If", "branch", &["flag"], &["picked"], vec![]);
        branch.attribute = vec![a, e];
        g0.node.push(branch);
        g0.output.push(value_info("picked", &[1]));
        m
    }

    #[test]
    fn subgraph_reads_count_and_cannot_be_rewired() {
        let m = with_if_reading_pruned_act();
        let g = Graph::new(&m);
        // The branch reads it: it is a consumer, and a name used inside is not fresh.
        let branch = g.producer("picked").unwrap();
        assert!(g.consumers("pruned_act.out").contains(&branch));
        let mut p = Patch::new(&g);
        assert_eq!(p.fresh("inner.out"), "inner.out_1");
        // Rewiring the outer tensor would leave the branch reading the old name: refused.
        let mut p = Patch::new(&g);
        p.replace_uses("pruned_act.out", "stem_act.out");
        let e = p.apply().unwrap_err().to_string();
        assert!(e.contains("'branch'") && e.contains("subgraph"), "{e}");
        // Removing the producer leaves the branch's read unmet: refused, naming the reader.
        let mut p = Patch::new(&g);
        p.remove_node(g.producer("pruned_act.out").unwrap());
        p.replace_uses("pruned_act.out", "pruned.out");
        assert!(p.apply().is_err());
        let mut p = Patch::new(&g);
        let head = g.producer("head.out").unwrap();
        p.remove_node(g.producer("pruned_act.out").unwrap());
        p.set_input(head, 0, "pruned.out");
        let e = p.apply().unwrap_err().to_string();
        assert!(
            e.contains("pruned_act.out") && e.contains("'branch'"),
            "{e}"
        );
    }

    #[test]
    fn names_not_from_fresh_and_edits_out_of_range_are_refused() {
        let m = tiny_detector(16);
        let g = Graph::new(&m);
        let mut p = Patch::new(&g);
        p.add_initializer(float_tensor("head.weight", &[], vec![1.0]));
        let e = p.apply().unwrap_err().to_string();
        assert!(e.contains("'head.weight'") && e.contains("fresh"), "{e}");
        let mut p = Patch::new(&g);
        p.insert_before(
            NodeId(g.len() + 3),
            node("Identity", "lost", &["images"], &["lost.out"], vec![]),
        );
        assert!(p.apply().unwrap_err().to_string().contains("'lost'"));
        let mut p = Patch::new(&g);
        let head = g.producer("head.out").unwrap();
        p.remove_node(head);
        p.set_input(head, 0, "images");
        let e = p.apply().unwrap_err().to_string();
        assert!(e.contains("both removed and rewritten"), "{e}");
    }
}
