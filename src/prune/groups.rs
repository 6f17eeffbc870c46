//! Dependency groups: which channels of which tensors must be removed together.
//!
//! Every channel of every activation with a channel axis (axis 1, rank 3 to 5) is an *atom*.
//! An op that maps channel `c` of one tensor onto channel `c'` of another (an activation, a
//! BatchNormalization, a pool, a depthwise conv, both operands of a residual Add, a Concat
//! with its offsets, a Split or Slice on the channel axis) joins the two atoms in a
//! union-find. A connected component is one removable channel: removing it removes that
//! channel from every tensor it touches, and every weight that reads or writes it. This is
//! Torch-Pruning's dependency graph with its index mappings, written as a union of channels
//! because an ONNX graph is static: no tracing, no per-op pruning functions.
//!
//! A component is prunable only if some full Conv (groups 1) or ConvTranspose writes it
//! (a *source*: its filters can go) and nothing that cannot follow a removed channel touches
//! it. Anything the analysis cannot prove channel-wise blocks the tensors it reads, with the
//! reason: a Reshape or Transpose (ShuffleNet's channel shuffle), a graph input or output,
//! a grouped Conv, a Shape, a reduction, an op this module does not know.
//!
//! Components with the same tensors form a [`ChannelSet`] (for example the filters of one
//! conv, or one branch of a Concat); selection keeps a multiple of the alignment in each set,
//! so every tensor, the sum of its sets, stays aligned. Tensors linked by any component form a
//! [`DepGroup`], which is what `--explain` prints.

use crate::error::{Error, Result};
use crate::onnx::{Graph, NodeId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A tracked activation: its channel count and where its atoms start.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelTensor {
    pub name: String,
    pub channels: usize,
    #[serde(skip)]
    pub first_atom: usize,
}

/// How a weighted node touches a component's channels (for criteria, selection, recovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A full Conv (or ConvTranspose) writes the channel: filter `channel` of its weight.
    Source,
    /// A full Conv reads the channel: input column `channel` of its weight.
    Consumer,
    /// A depthwise Conv maps the channel onto itself: filter `channel`.
    Depthwise,
    /// A BatchNormalization scales the channel: `scale[channel]`.
    Norm,
}

/// One weighted touch of an atom.
#[derive(Debug, Clone, Copy)]
pub struct Touch {
    pub node: NodeId,
    pub channel: usize,
    pub kind: Use,
}

/// Components with the same tensors: the unit selection keeps a multiple of `--align` of.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelSet {
    pub id: usize,
    pub group: usize,
    /// Node keys of the sources (convs whose filters are these channels).
    pub sources: Vec<String>,
    /// Tracked tensors holding these channels (with how often each holds each channel).
    pub tensors: Vec<(String, usize)>,
    /// The components (root atoms), in the first tensor's channel order.
    #[serde(skip)]
    pub components: Vec<usize>,
    pub channels: usize,
    /// Why the set cannot be pruned, when it cannot.
    pub excluded: Option<String>,
}

/// Tensors linked by channels: what `--explain` prints, one block per group.
#[derive(Debug, Clone, Serialize)]
pub struct DepGroup {
    pub id: usize,
    pub name: String,
    pub tensors: Vec<String>,
    pub sets: Vec<usize>,
}

/// The analysis of one model at one input shape.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub tensors: Vec<ChannelTensor>,
    index: HashMap<String, usize>,
    /// Root atom of every atom.
    root: Vec<usize>,
    /// Component (root atom) -> its set, for prunable and excluded components alike.
    set_of: HashMap<usize, usize>,
    pub sets: Vec<ChannelSet>,
    pub groups: Vec<DepGroup>,
    /// Weighted touches per component root.
    pub touches: HashMap<usize, Vec<Touch>>,
    /// Convs (groups 1) that read a tracked tensor: recovery refits them.
    pub consumers: Vec<NodeId>,
}

/// Ops that map every channel of input 0 onto the same channel of output 0.
const CHANNELWISE_UNARY: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "Mish",
    "Gelu",
    "Identity",
    "Dropout",
    "Neg",
    "Abs",
    "Clip",
    "Cast",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
];

/// Elementwise ops over broadcast operands.
const ELEMENTWISE: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu", "Pow",
];

struct Builder<'g, 'm> {
    graph: &'g Graph<'m>,
    shapes: &'g HashMap<String, Vec<usize>>,
    tensors: Vec<ChannelTensor>,
    index: HashMap<String, usize>,
    parent: Vec<usize>,
    blocked: HashMap<usize, String>,
    touches: Vec<(usize, Touch)>,
    consumers: Vec<NodeId>,
}

impl Builder<'_, '_> {
    fn find(&mut self, a: usize) -> usize {
        let mut r = a;
        while self.parent[r] != r {
            r = self.parent[r];
        }
        let mut x = a;
        while self.parent[x] != r {
            let next = self.parent[x];
            self.parent[x] = r;
            x = next;
        }
        r
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller root wins: roots follow graph order, so names are stable.
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }

    /// Channel count of a tensor whose channel axis this module can follow (rank 3 to 5).
    fn channel_shape(&self, name: &str) -> Option<usize> {
        let s = self.shapes.get(name)?;
        (3..=5).contains(&s.len()).then(|| s[1])
    }

    fn track(&mut self, name: &str) -> Option<usize> {
        if let Some(&t) = self.index.get(name) {
            return Some(t);
        }
        let channels = self.channel_shape(name)?;
        let first_atom = self.parent.len();
        self.parent.extend(first_atom..first_atom + channels);
        let id = self.tensors.len();
        self.tensors.push(ChannelTensor {
            name: name.to_string(),
            channels,
            first_atom,
        });
        self.index.insert(name.to_string(), id);
        Some(id)
    }

    fn tracked(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn atom(&self, t: usize, c: usize) -> usize {
        self.tensors[t].first_atom + c
    }

    fn block(&mut self, t: usize, why: &str) {
        let ct = &self.tensors[t];
        for a in ct.first_atom..ct.first_atom + ct.channels {
            self.blocked.entry(a).or_insert_with(|| why.to_string());
        }
    }

    fn block_name(&mut self, name: &str, why: &str) {
        if let Some(t) = self.tracked(name) {
            self.block(t, why);
        }
    }

    fn link(&mut self, a: usize, b: usize) {
        // Same channel count: channel c of one is channel c of the other.
        let n = self.tensors[a].channels.min(self.tensors[b].channels);
        for c in 0..n {
            let (x, y) = (self.atom(a, c), self.atom(b, c));
            self.union(x, y);
        }
    }

    fn touch(&mut self, t: usize, node: NodeId, kind: Use) {
        for c in 0..self.tensors[t].channels {
            let a = self.atom(t, c);
            self.touches.push((
                a,
                Touch {
                    node,
                    channel: c,
                    kind,
                },
            ));
        }
    }

    /// A constant read by this node only (a shared one would need one slice per reader).
    fn own_constant(&self, name: &str) -> bool {
        self.graph.is_constant(name) && self.graph.consumers(name).len() == 1
    }

    /// Block every tracked input of `id`: it reads them in a way channels cannot follow.
    fn block_inputs(&mut self, id: NodeId, why: &str) {
        let n = self.graph.node(id);
        let why = format!("read by {} '{}' ({why})", n.op_type, self.graph.key(id));
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            self.block_name(i, &why);
        }
    }

    fn node(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let op = n.op_type.as_str();
        if !g.is_standard(id) {
            self.block_inputs(id, "custom domain");
            return Ok(());
        }
        let out0 = n.output.first().map(String::as_str).unwrap_or("");
        let in0 = n.input.first().map(String::as_str).unwrap_or("");
        match op {
            "Conv" | "ConvTranspose" => self.conv(id),
            "BatchNormalization" => {
                let params_ok = (1..5).all(|s| {
                    g.optional_input(id, s)
                        .is_some_and(|p| self.own_constant(p))
                });
                match (self.tracked(in0), self.track(out0)) {
                    (Some(x), Some(y)) if params_ok && n.output.len() == 1 => {
                        self.link(x, y);
                        self.touch(y, id, Use::Norm);
                    }
                    (x, y) => {
                        let why = format!(
                            "BatchNormalization '{}' has non-constant or shared parameters",
                            g.key(id)
                        );
                        for t in [x, y].into_iter().flatten() {
                            self.block(t, &why);
                        }
                    }
                }
                Ok(())
            }
            _ if CHANNELWISE_UNARY.contains(&op) => {
                let side_inputs_ok = n
                    .input
                    .iter()
                    .skip(1)
                    .filter(|i| !i.is_empty())
                    .all(|i| g.is_constant(i));
                match (self.tracked(in0), self.track(out0)) {
                    (Some(x), Some(y))
                        if side_inputs_ok
                            && self.tensors[x].channels == self.tensors[y].channels =>
                    {
                        self.link(x, y)
                    }
                    (x, y) => {
                        let why = format!("{op} '{}' is not channel-wise here", g.key(id));
                        for t in [x, y].into_iter().flatten() {
                            self.block(t, &why);
                        }
                    }
                }
                Ok(())
            }
            "Resize" | "Upsample" => {
                // Per channel when neither scales nor sizes touch the channel axis; constant
                // `sizes` are rewritten with the kept count.
                let y = self.track(out0);
                let x = self.tracked(in0);
                // roi and scales are only read (they may be shared); sizes is rewritten.
                let roi_scales_ok = n
                    .input
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, i)| !i.is_empty())
                    .all(|(slot, i)| {
                        if slot == 3 {
                            self.own_constant(i)
                        } else {
                            g.is_constant(i)
                        }
                    })
                    && self.scales_keep_channels(id)
                    // Opset 18's `axes` reorders scales/sizes: not followed.
                    && g.attr_ints(id, "axes")?.is_none();
                match (x, y) {
                    (Some(x), Some(y))
                        if roi_scales_ok
                            && self.tensors[x].channels == self.tensors[y].channels =>
                    {
                        self.link(x, y)
                    }
                    (x, y) => {
                        let why = format!(
                            "{op} '{}' has non-constant or shared scales/sizes",
                            g.key(id)
                        );
                        for t in [x, y].into_iter().flatten() {
                            self.block(t, &why);
                        }
                    }
                }
                Ok(())
            }
            _ if ELEMENTWISE.contains(&op) => self.elementwise(id),
            "Concat" => self.concat(id),
            "Split" => self.split(id),
            "Slice" => self.slice(id),
            "Constant" => Ok(()),
            _ => {
                self.block_inputs(id, "not channel-wise");
                Ok(())
            }
        }
    }

    fn conv(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let x = g.input(id, 0)?;
        let w = g.input(id, 1)?;
        let transpose = n.op_type == "ConvTranspose";
        let groups = g.attr_int(id, "group")?.unwrap_or(1);
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let y = self.track(out);
        let xt = self.tracked(x);
        let weights_ok =
            self.own_constant(w) && g.optional_input(id, 2).is_none_or(|b| self.own_constant(b));
        let cin = self
            .shapes
            .get(x)
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0) as i64;
        let why = |what: &str| format!("{} '{}' {what}", n.op_type, g.key(id));
        if !weights_ok {
            let why = why("has non-constant or shared weights");
            for t in [xt, y].into_iter().flatten() {
                self.block(t, &why);
            }
            return Ok(());
        }
        match (groups, y) {
            (1, Some(y)) => {
                self.touch(y, id, Use::Source);
                if let Some(x) = xt {
                    self.touch(x, id, Use::Consumer);
                    if !transpose {
                        self.consumers.push(id);
                    }
                }
            }
            (gr, Some(y)) if !transpose && gr == cin && self.tensors[y].channels as i64 == cin => {
                let Some(x) = xt else {
                    self.block(y, &why("reads a tensor whose channels cannot be followed"));
                    return Ok(());
                };
                self.link(x, y);
                self.touch(y, id, Use::Depthwise);
            }
            (gr, y) => {
                let why = why(&format!(
                    "has {gr} groups (only full and depthwise convs are pruned)"
                ));
                for t in [xt, y].into_iter().flatten() {
                    self.block(t, &why);
                }
            }
        }
        Ok(())
    }

    /// A Resize/Upsample whose constant scales leave the batch and channel axes alone.
    fn scales_keep_channels(&self, id: NodeId) -> bool {
        let g = self.graph;
        let n = g.node(id);
        let slot = if n.op_type == "Upsample" || g.model().opset() < 11 {
            1
        } else {
            2
        };
        match g
            .optional_input(id, slot)
            .and_then(|s| g.constant_f32(s).ok().flatten())
        {
            Some((_, v)) => v.is_empty() || v.get(1).is_some_and(|&c| c == 1.0),
            None => g.optional_input(id, slot).is_none(),
        }
    }

    fn elementwise(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let Some(y) = self.track(out) else {
            self.block_inputs(id, "output without a channel axis");
            return Ok(());
        };
        let rank = self.shapes[out].len();
        let c = self.tensors[y].channels;
        let why = format!(
            "{} '{}' broadcasts it against the channels",
            n.op_type,
            g.key(id)
        );
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if let Some(t) = g.constant(i) {
                // Right-aligned broadcasting: which axis of the constant is the channel axis.
                let r = t.dims.len();
                let axis = (r + 1).checked_sub(rank);
                let dim = axis.and_then(|a| t.dims.get(a)).copied().unwrap_or(1);
                if dim != 1 && c > 1 && (dim as usize != c || !self.own_constant(i)) {
                    self.block(y, &why);
                }
                continue;
            }
            match (self.tracked(i), self.shapes.get(i.as_str())) {
                (Some(x), Some(s)) if s.len() == rank && self.tensors[x].channels == c => {
                    self.link(x, y)
                }
                (_, Some(s)) if s.len() == rank && s[1] == 1 => {} // one channel, broadcast
                (x, _) => {
                    if let Some(x) = x {
                        self.block(x, &why);
                    }
                    self.block(y, &why);
                }
            }
        }
        Ok(())
    }

    fn axis(&self, id: NodeId, default: i64) -> Result<Option<usize>> {
        // The rank from the first output (Concat, Split and Slice keep it), which ONNX Runtime
        // always reports; an input may be a constant it does not.
        let n = self.graph.node(id);
        let rank = n
            .output
            .first()
            .and_then(|o| self.shapes.get(o))
            .map_or(0, Vec::len) as i64;
        let a = self.graph.attr_int(id, "axis")?.unwrap_or(default);
        let a = if a < 0 { a + rank } else { a };
        Ok((0..rank).contains(&a).then_some(a as usize))
    }

    fn concat(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let axis = self.axis(id, 1)?;
        let Some(y) = self.track(out) else {
            self.block_inputs(id, "output without a channel axis");
            return Ok(());
        };
        let why = format!(
            "Concat '{}' joins it with a tensor channels cannot follow",
            g.key(id)
        );
        if axis == Some(1) {
            let mut offset = 0;
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                let known = self
                    .shapes
                    .get(i.as_str())
                    .and_then(|s| s.get(1).copied())
                    .or_else(|| {
                        g.constant(i)
                            .and_then(|t| t.dims.get(1))
                            .map(|&d| d.max(0) as usize)
                    });
                let Some(c) = known else {
                    // Where this input's channels land is unknown: nothing here can move.
                    self.block(y, &why);
                    return Ok(());
                };
                match self.tracked(i) {
                    Some(x) => {
                        for k in 0..c.min(self.tensors[y].channels.saturating_sub(offset)) {
                            let (a, b) = (self.atom(x, k), self.atom(y, offset + k));
                            self.union(a, b);
                        }
                    }
                    None => {
                        for k in offset..(offset + c).min(self.tensors[y].channels) {
                            let a = self.atom(y, k);
                            self.blocked.entry(a).or_insert_with(|| why.clone());
                        }
                    }
                }
                offset += c;
            }
            return Ok(());
        }
        // Another axis: every input carries all of the output's channels.
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            match self.tracked(i) {
                Some(x) if self.tensors[x].channels == self.tensors[y].channels => self.link(x, y),
                x => {
                    if let Some(x) = x {
                        self.block(x, &why);
                    }
                    self.block(y, &why);
                }
            }
        }
        Ok(())
    }

    fn split(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let x = g.input(id, 0)?;
        let axis = self.axis(id, 0)?;
        let sizes_ok = g.optional_input(id, 1).is_none_or(|s| self.own_constant(s));
        let outs: Vec<Option<usize>> = n.output.clone().iter().map(|o| self.track(o)).collect();
        let xt = self.tracked(x);
        let why = format!("Split '{}' is not one channels can follow", g.key(id));
        let (Some(xt), true) = (xt, sizes_ok && outs.iter().all(Option::is_some)) else {
            for t in outs.into_iter().flatten().chain(xt) {
                self.block(t, &why);
            }
            return Ok(());
        };
        let mut offset = 0;
        for y in outs.into_iter().flatten() {
            let c = self.tensors[y].channels;
            if axis == Some(1) {
                for k in 0..c {
                    if offset + k < self.tensors[xt].channels {
                        let (a, b) = (self.atom(xt, offset + k), self.atom(y, k));
                        self.union(a, b);
                    }
                }
                offset += c;
            } else {
                self.link(xt, y);
            }
        }
        Ok(())
    }

    fn slice(&mut self, id: NodeId) -> Result<()> {
        let g = self.graph;
        let n = g.node(id);
        let x = g.input(id, 0)?;
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let xt = self.tracked(x);
        let y = self.track(out);
        let why = format!(
            "Slice '{}' cuts the channel axis in a way channels cannot follow",
            g.key(id)
        );
        let (Some(xt), Some(y)) = (xt, y) else {
            for t in [xt, y].into_iter().flatten() {
                self.block(t, &why);
            }
            return Ok(());
        };
        if n.input.len() < 3 {
            // Opset < 10 keeps starts/ends in attributes: not followed.
            self.block(xt, &why);
            self.block(y, &why);
            return Ok(());
        }
        let consts: Option<Vec<Vec<i64>>> = (1..n.input.len())
            .map(|s| {
                let name = g.optional_input(id, s)?;
                crate::onnx::tensor::read_i64(g.constant(name)?).ok()
            })
            .collect();
        let rank = self.shapes[x].len() as i64;
        let axes_of = |c: &Vec<Vec<i64>>| -> Vec<i64> {
            c.get(2)
                .cloned()
                .unwrap_or_else(|| (0..c[0].len() as i64).collect())
        };
        let channel_cut = consts.as_ref().map(|c| {
            let axes = axes_of(c);
            let pos = axes
                .iter()
                .position(|&a| (if a < 0 { a + rank } else { a }) == 1);
            (pos, c.get(3).and_then(|s| pos.map(|p| s[p])).unwrap_or(1))
        });
        match channel_cut {
            Some((None, _)) => self.link(xt, y),
            Some((Some(p), 1)) => {
                let c = consts.as_ref().expect("checked");
                let len = self.tensors[xt].channels as i64;
                let start = c[0][p];
                let start = if start < 0 { start + len } else { start }.clamp(0, len) as usize;
                let own = (1..n.input.len())
                    .filter_map(|s| g.optional_input(id, s))
                    .all(|s| self.own_constant(s));
                if !own {
                    self.block(xt, &why);
                    self.block(y, &why);
                    return Ok(());
                }
                for k in 0..self.tensors[y].channels {
                    if start + k < len as usize {
                        let (a, b) = (self.atom(xt, start + k), self.atom(y, k));
                        self.union(a, b);
                    }
                }
            }
            _ => {
                self.block(xt, &why);
                self.block(y, &why);
            }
        }
        Ok(())
    }
}

impl Analysis {
    /// Analyse `graph` with the concrete `shapes` of its tensors (graph inputs included).
    pub fn new(graph: &Graph, shapes: &HashMap<String, Vec<usize>>) -> Result<Self> {
        let mut b = Builder {
            graph,
            shapes,
            tensors: Vec::new(),
            index: HashMap::new(),
            parent: Vec::new(),
            blocked: HashMap::new(),
            touches: Vec::new(),
            consumers: Vec::new(),
        };
        for i in graph.real_inputs() {
            if let Some(t) = b.track(&i.name) {
                b.block(t, "a graph input");
            }
        }
        for (id, _) in graph.nodes() {
            b.node(id)?;
        }
        for o in &graph.proto().output {
            b.block_name(&o.name, "a graph output");
        }
        Ok(b.finish())
    }

    /// Position of a tracked tensor.
    pub fn tensor(&self, name: &str) -> Option<&ChannelTensor> {
        self.index.get(name).map(|&t| &self.tensors[t])
    }

    /// The component of channel `c` of tracked tensor `name`.
    pub fn component(&self, name: &str, c: usize) -> Option<usize> {
        let t = self.tensor(name)?;
        (c < t.channels).then(|| self.root[t.first_atom + c])
    }

    pub fn set_of(&self, component: usize) -> Option<usize> {
        self.set_of.get(&component).copied()
    }

    /// Per tracked tensor, the keep mask when `removed` components go (only tensors that
    /// lose a channel).
    pub fn masks(&self, removed: &std::collections::HashSet<usize>) -> BTreeMap<String, Vec<bool>> {
        let mut out = BTreeMap::new();
        for t in &self.tensors {
            let mask: Vec<bool> = (0..t.channels)
                .map(|c| !removed.contains(&self.root[t.first_atom + c]))
                .collect();
            if mask.iter().any(|k| !k) {
                out.insert(t.name.clone(), mask);
            }
        }
        out
    }

    /// Sets that can lose channels.
    pub fn prunable_sets(&self) -> impl Iterator<Item = &ChannelSet> {
        self.sets.iter().filter(|s| s.excluded.is_none())
    }
}

impl Builder<'_, '_> {
    fn finish(mut self) -> Analysis {
        let atoms = self.parent.len();
        let root: Vec<usize> = (0..atoms).map(|a| self.find(a)).collect();
        // Per component: its atoms as (tensor, channel), whether blocked, whether sourced.
        let mut members: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
        for (t, ct) in self.tensors.iter().enumerate() {
            for c in 0..ct.channels {
                members
                    .entry(root[ct.first_atom + c])
                    .or_default()
                    .push((t, c));
            }
        }
        let mut touches: HashMap<usize, Vec<Touch>> = HashMap::new();
        for (a, t) in &self.touches {
            touches.entry(root[*a]).or_default().push(*t);
        }
        let mut blocked: HashMap<usize, String> = HashMap::new();
        for (a, why) in &self.blocked {
            let r = root[*a];
            // Keep the reason of the earliest atom: stable across runs.
            let keep = blocked.get(&r).is_none_or(|w| w > why);
            if keep {
                blocked.insert(r, why.clone());
            }
        }
        // Sets: components with the same tensor multiset.
        let mut by_key: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for (&r, m) in &members {
            let mut key: Vec<usize> = m.iter().map(|&(t, _)| t).collect();
            key.sort_unstable();
            by_key.entry(key).or_default().push(r);
        }
        let graph = self.graph;
        let mut sets: Vec<ChannelSet> = Vec::new();
        let mut set_of = HashMap::new();
        let mut keys: Vec<(Vec<usize>, Vec<usize>)> = by_key.into_iter().collect();
        // Graph order of the first atom, so set ids read top to bottom.
        keys.sort_by_key(|(_, comps)| comps.iter().min().copied());
        for (key, mut comps) in keys {
            comps.sort_by_key(|r| members[r][0].1);
            let id = sets.len();
            let mut sources: Vec<String> = comps
                .iter()
                .flat_map(|r| touches.get(r).into_iter().flatten())
                .filter(|t| t.kind == Use::Source)
                .map(|t| graph.key(t.node))
                .collect();
            sources.sort();
            sources.dedup();
            let excluded = comps
                .iter()
                .find_map(|r| blocked.get(r).cloned())
                .or_else(|| {
                    sources
                        .is_empty()
                        .then(|| "no conv writes these channels".to_string())
                });
            let mut tensors: Vec<(String, usize)> = Vec::new();
            for t in key {
                let name = &self.tensors[t].name;
                match tensors.last_mut() {
                    Some((n, k)) if n == name => *k += 1,
                    _ => tensors.push((name.clone(), 1)),
                }
            }
            for &r in &comps {
                set_of.insert(r, id);
            }
            sets.push(ChannelSet {
                id,
                group: 0,
                sources,
                tensors,
                channels: comps.len(),
                components: comps,
                excluded,
            });
        }
        // Groups: tensors linked through any component.
        let mut tparent: Vec<usize> = (0..self.tensors.len()).collect();
        fn tfind(p: &mut [usize], a: usize) -> usize {
            let mut r = a;
            while p[r] != r {
                r = p[r];
            }
            p[a] = r;
            r
        }
        for m in members.values() {
            let first = m[0].0;
            for &(t, _) in &m[1..] {
                let (a, b) = (tfind(&mut tparent, first), tfind(&mut tparent, t));
                if a != b {
                    tparent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
        let mut groups: Vec<DepGroup> = Vec::new();
        for s in sets.iter_mut() {
            let first_tensor = self.index[&s.tensors[0].0];
            let gr = tfind(&mut tparent, first_tensor);
            let gid = *group_of.entry(gr).or_insert_with(|| {
                groups.push(DepGroup {
                    id: groups.len(),
                    name: String::new(),
                    tensors: Vec::new(),
                    sets: Vec::new(),
                });
                groups.len() - 1
            });
            s.group = gid;
            groups[gid].sets.push(s.id);
        }
        for (t, ct) in self.tensors.iter().enumerate() {
            let gr = tfind(&mut tparent, t);
            if let Some(&gid) = group_of.get(&gr) {
                groups[gid].tensors.push(ct.name.clone());
            }
        }
        for gr in groups.iter_mut() {
            gr.name = gr
                .sets
                .iter()
                .flat_map(|&s| sets[s].sources.first())
                .next()
                .cloned()
                .unwrap_or_else(|| gr.tensors[0].clone());
        }
        Analysis {
            index: self.index,
            tensors: self.tensors,
            root,
            set_of,
            sets,
            groups,
            touches,
            consumers: self.consumers,
        }
    }
}

/// An error about the model's structure, naming the file.
pub fn structure_error(graph: &Graph, msg: impl Into<String>) -> Error {
    Error::Onnx {
        path: graph.model().path.clone(),
        msg: msg.into(),
    }
}
