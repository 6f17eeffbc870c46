//! Removing channels: given a keep mask per tensor (from [`super::groups::Analysis::masks`]),
//! slice every weight that writes or reads those channels and fix every attribute or
//! constant that counts them, in one [`Patch`] (so the result stays topological and lossless
//! for everything untouched):
//! - Conv: filters (weight axis 0, bias) of the output, input columns (axis 1) of the input;
//!   a depthwise conv's `group` becomes its kept channel count;
//! - ConvTranspose: input rows (axis 0), output columns (axis 1, bias);
//! - BatchNormalization: scale, bias, mean, variance;
//! - elementwise ops: per-channel constant operands, on their broadcast channel axis;
//! - Split on the channel axis: the split sizes; Slice on it: starts and ends;
//! - Resize with constant `sizes`: the channel entry;
//! - value infos: the declared channel count.
//!
//! A constant read by one node is replaced in place (its name is kept); the analysis never
//! lets a shared one be sliced.

use crate::error::{Error, Result};
use crate::onnx::tensor::{int64_tensor, read_i64, slice_axis};
use crate::onnx::{attr, ints_attr, Graph, Model, NodeId, Patch};
use onnx_protobuf::TensorProto;
use std::collections::{BTreeMap, HashMap};

pub type Masks = BTreeMap<String, Vec<bool>>;

fn kept(mask: &[bool]) -> Vec<usize> {
    mask.iter()
        .enumerate()
        .filter(|(_, &k)| k)
        .map(|(i, _)| i)
        .collect()
}

struct Editor<'p, 'g, 'm> {
    patch: &'p mut Patch<'g, 'm>,
    graph: &'g Graph<'m>,
    masks: &'p Masks,
    shapes: &'p HashMap<String, Vec<usize>>,
    /// Constants already edited (by name): a second edit would slice twice.
    edited: BTreeMap<String, TensorProto>,
}

impl Editor<'_, '_, '_> {
    fn err(&self, id: NodeId, m: String) -> Error {
        self.graph.error(id, m)
    }

    fn mask(&self, tensor: &str) -> Option<&Vec<bool>> {
        self.masks.get(tensor)
    }

    /// Slice constant `name` (read by node `id`) along `axis`.
    fn slice(&mut self, id: NodeId, name: &str, axis: usize, mask: &[bool]) -> Result<()> {
        let t = match self.edited.get(name) {
            Some(t) => t.clone(),
            None => self
                .graph
                .constant(name)
                .ok_or_else(|| self.err(id, format!("'{name}' is not a constant")))?
                .clone(),
        };
        if t.dims.get(axis).copied() != Some(mask.len() as i64) {
            return Err(self.err(
                id,
                format!(
                    "constant '{name}' has dims {:?}, expected {} on axis {axis}",
                    t.dims,
                    mask.len()
                ),
            ));
        }
        let mut s = slice_axis(&t, axis, &kept(mask)).map_err(|m| self.err(id, m))?;
        s.name = name.to_string();
        self.edited.insert(name.to_string(), s);
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let out0 = n.output.first().cloned().unwrap_or_default();
        let in0 = n.input.first().cloned().unwrap_or_default();
        match n.op_type.as_str() {
            "Conv" => {
                let groups = g.attr_int(id, "group")?.unwrap_or(1);
                let w = g.input(id, 1)?.to_string();
                if let Some(m) = self.mask(&out0).cloned() {
                    self.slice(id, &w, 0, &m)?;
                    if let Some(b) = g.optional_input(id, 2) {
                        self.slice(id, b, 0, &m)?;
                    }
                    if groups > 1 {
                        let k = m.iter().filter(|&&k| k).count() as i64;
                        let node = self.patch.node_mut(id);
                        attr::take(node, "group");
                        node.attribute.push(crate::onnx::int_attr("group", k));
                    }
                }
                if groups == 1 {
                    if let Some(m) = self.mask(&in0).cloned() {
                        self.slice(id, &w, 1, &m)?;
                    }
                }
            }
            "ConvTranspose" => {
                let w = g.input(id, 1)?.to_string();
                if let Some(m) = self.mask(&in0).cloned() {
                    self.slice(id, &w, 0, &m)?;
                }
                if let Some(m) = self.mask(&out0).cloned() {
                    self.slice(id, &w, 1, &m)?;
                    if let Some(b) = g.optional_input(id, 2) {
                        self.slice(id, b, 0, &m)?;
                    }
                }
            }
            "BatchNormalization" => {
                if let Some(m) = self.mask(&out0).cloned() {
                    for s in 1..5 {
                        let p = g.input(id, s)?.to_string();
                        self.slice(id, &p, 0, &m)?;
                    }
                }
            }
            "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" | "Sum" | "Mean" | "PRelu" | "Pow" => {
                if let Some(m) = self.mask(&out0).cloned() {
                    let rank = self.rank_of(&out0);
                    for i in n.input.iter().filter(|i| g.is_constant(i)) {
                        let dims = &g.constant(i).expect("constant").dims;
                        let Some(axis) = (dims.len() + 1).checked_sub(rank) else {
                            continue;
                        };
                        if dims.get(axis).copied().unwrap_or(1) > 1 {
                            let i = i.clone();
                            self.slice(id, &i, axis, &m)?;
                        }
                    }
                }
            }
            "Split" => self.split(id)?,
            "Slice" => self.slice_node(id)?,
            "Resize" => {
                if let (Some(m), Some(sizes)) = (self.mask(&out0).cloned(), g.optional_input(id, 3))
                {
                    let t = g
                        .constant(sizes)
                        .ok_or_else(|| self.err(id, "non-constant sizes".into()))?;
                    let mut v = read_i64(t).map_err(|e| self.err(id, e))?;
                    if v.len() > 1 {
                        v[1] = m.iter().filter(|&&k| k).count() as i64;
                    }
                    let mut s = int64_tensor(sizes, &v);
                    s.dims = t.dims.clone();
                    self.edited.insert(sizes.to_string(), s);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The rank of a tensor (tracked tensors are rank 3 to 5).
    fn rank_of(&self, tensor: &str) -> usize {
        self.shapes.get(tensor).map_or(4, Vec::len)
    }

    fn split(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let x = g.input(id, 0)?;
        let Some(mx) = self.mask(x).cloned() else {
            return Ok(());
        };
        let rank = self.masks_rank(id);
        let axis = g.attr_int(id, "axis")?.unwrap_or(0);
        let axis = if axis < 0 { axis + rank } else { axis };
        if axis != 1 {
            return Ok(());
        }
        // Original sizes: the outputs' channel counts (ONNX Runtime's shapes, which the
        // analysis used), whatever form the node gave them in (input, attribute, equal split
        // with the leading chunks rounded up, num_outputs).
        let outs = n.output.len();
        let old_sizes: Vec<i64> = n
            .output
            .iter()
            .map(|o| {
                self.shapes
                    .get(o)
                    .and_then(|s| s.get(1).copied())
                    .map(|c| c as i64)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| self.err(id, "an output has no known shape".into()))?;
        let mut new_sizes = Vec::with_capacity(outs);
        let mut offset = 0usize;
        for &s in &old_sizes {
            let s = s.max(0) as usize;
            let end = (offset + s).min(mx.len());
            new_sizes.push(mx[offset..end].iter().filter(|&&k| k).count() as i64);
            offset = end;
        }
        match g.optional_input(id, 1) {
            Some(s) => {
                let t = int64_tensor(s, &new_sizes);
                self.edited.insert(s.to_string(), t);
            }
            None if g.model().opset() >= 13 => {
                let name = self.patch.fresh(&format!("{}_split", g.key(id)));
                self.patch.add_initializer(int64_tensor(&name, &new_sizes));
                self.patch.set_input(id, 1, &name);
                // Opset 18: `split` and `num_outputs` are exclusive.
                attr::take(self.patch.node_mut(id), "num_outputs");
            }
            None => {
                let node = self.patch.node_mut(id);
                attr::take(node, "split");
                node.attribute.push(ints_attr("split", &new_sizes));
            }
        }
        Ok(())
    }

    fn masks_rank(&self, id: NodeId) -> i64 {
        let n = self.graph.node(id);
        n.input.first().map_or(4, |i| self.rank_of(i)) as i64
    }

    fn slice_node(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let x = g.input(id, 0)?;
        let Some(mx) = self.mask(x).cloned() else {
            return Ok(());
        };
        let rank = self.masks_rank(id);
        let read = |s: usize| -> Option<Vec<i64>> {
            g.optional_input(id, s)
                .and_then(|n| g.constant(n))
                .and_then(|t| read_i64(t).ok())
        };
        let (Some(starts), Some(ends)) = (read(1), read(2)) else {
            return Ok(());
        };
        let axes = read(3).unwrap_or_else(|| (0..starts.len() as i64).collect());
        let Some(p) = axes
            .iter()
            .position(|&a| (if a < 0 { a + rank } else { a }) == 1)
        else {
            return Ok(());
        };
        let len = mx.len() as i64;
        let norm = |v: i64| if v < 0 { v + len } else { v }.clamp(0, len) as usize;
        let (s, e) = (norm(starts[p]), norm(ends[p]).max(norm(starts[p])));
        let before = mx[..s].iter().filter(|&&k| k).count() as i64;
        let inside = mx[s..e].iter().filter(|&&k| k).count() as i64;
        let (mut ns, mut ne) = (starts.clone(), ends.clone());
        ns[p] = before;
        ne[p] = before + inside;
        for (slot, v) in [(1, ns), (2, ne)] {
            let name = g.input(id, slot)?.to_string();
            let old = g.constant(&name).expect("read above");
            let mut t = int64_tensor(&name, &v);
            t.dims = old.dims.clone();
            self.edited.insert(name, t);
        }
        Ok(())
    }
}

/// The model with the masked channels removed.
pub fn remove_channels(
    model: &Model,
    masks: &Masks,
    shapes: &HashMap<String, Vec<usize>>,
) -> Result<Model> {
    let graph = Graph::new(model);
    let mut patch = Patch::new(&graph);
    let mut ed = Editor {
        patch: &mut patch,
        graph: &graph,
        masks,
        shapes,
        edited: BTreeMap::new(),
    };
    for (id, _) in graph.nodes() {
        ed.node(id)?;
    }
    let edited = std::mem::take(&mut ed.edited);
    for (_, t) in edited {
        patch.replace_constant(t)?;
    }
    let mut out = patch.apply()?;
    fix_value_infos(&mut out, masks);
    Ok(out)
}

/// Declared shapes of tensors that lost channels: the new count, or no shape at all where
/// the channel dimension was symbolic.
fn fix_value_infos(model: &mut Model, masks: &Masks) {
    use onnx_protobuf::tensor_shape_proto::dimension::Value as Dim;
    let g = model.proto.graph.mut_or_insert_default();
    for v in g.value_info.iter_mut() {
        let Some(m) = masks.get(&v.name) else {
            continue;
        };
        let k = m.iter().filter(|&&k| k).count() as i64;
        if let Some(ty) = v.type_.as_mut() {
            if let Some(onnx_protobuf::type_proto::Value::TensorType(t)) = ty.value.as_mut() {
                if let Some(shape) = t.shape.as_mut() {
                    if let Some(d) = shape.dim.get_mut(1) {
                        d.value = Some(Dim::DimValue(k));
                    }
                }
            }
        }
    }
}
