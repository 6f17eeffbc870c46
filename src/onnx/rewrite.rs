//! Graph edits that keep everything else intact.

use super::Model;
use crate::error::Result;
use onnx_protobuf::ValueInfoProto;
use std::collections::HashSet;

/// A copy of `model` where each of `names` is also a graph output (name only: ONNX Runtime
/// infers the type). Names already output are left alone.
pub fn with_extra_outputs(model: &Model, names: &[String]) -> Result<Model> {
    let mut m = model.clone();
    let graph = m.proto.graph.mut_or_insert_default();
    let mut present: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for n in names {
        if present.insert(n.clone()) {
            let mut vi = ValueInfoProto::new();
            vi.name = n.clone();
            graph.output.push(vi);
        }
    }
    Ok(m)
}

/// Tensors TensorRT sees as activations, in graph order: graph inputs that are not
/// initializers, then every node output except those of Constant nodes.
pub fn activation_names(model: &Model) -> Vec<String> {
    let g = &model.proto.graph;
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out: Vec<String> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .map(|i| i.name.clone())
        .collect();
    for node in &g.node {
        if node.op_type == "Constant" {
            continue;
        }
        out.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
    }
    out
}
