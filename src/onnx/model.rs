//! Lossless ONNX load and write. rust-protobuf keeps unknown fields, so a model written by a
//! newer ONNX survives a parse -> write round trip. External data is read into the tensors
//! (refusing any location that escapes the model's folder), so a written model is self-contained.

use crate::error::{Error, Result};
use onnx_protobuf::{tensor_proto::DataLocation, ModelProto, TensorProto};
use protobuf::Message;
use std::path::{Path, PathBuf};

/// An ONNX model and the file it came from.
#[derive(Debug, Clone)]
pub struct Model {
    pub proto: ModelProto,
    pub path: PathBuf,
}

impl Model {
    /// Parse a model file, inlining external data that lives inside the model's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::util::input::read(path, crate::util::input::MODEL)?;
        let mut model = Self::from_bytes(&bytes, path)?;
        model.inline_external_data()?;
        // Now that external tensors hold their bytes, they are checked like inline ones.
        check_initializer_sizes(&model.proto).map_err(|msg| Error::Onnx {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(model)
    }

    /// Parse model bytes; `path` is only used in messages and to resolve external data.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let err = |msg: String| Error::Onnx {
            path: path.to_path_buf(),
            msg,
        };
        if bytes.is_empty() {
            return Err(err("empty file; expected an ONNX model (.onnx)".into()));
        }
        super::wire::check_group_depth(bytes).map_err(err)?;
        let proto = ModelProto::parse_from_bytes(bytes).map_err(|e| {
            err(format!(
                "not a valid ONNX model ({e}); the file may be truncated or not ONNX: re-export or re-download it"
            ))
        })?;
        // Protobuf accepts many random byte strings as an empty-ish message; a real model has
        // an IR version, an opset and a graph with at least one node.
        if proto.ir_version == 0 || proto.opset_import.is_empty() || proto.graph.is_none() {
            return Err(err(
                "not an ONNX model (no IR version, opset or graph); check the file is the exported .onnx"
                    .into(),
            ));
        }
        if !proto
            .opset_import
            .iter()
            .any(|o| (o.domain.is_empty() || o.domain == "ai.onnx") && o.version > 0)
        {
            return Err(err(
                "no opset for the default ONNX domain (a truncated or hand-edited file?); re-export the model".into(),
            ));
        }
        if proto.graph.node.is_empty() {
            return Err(err("the graph has no nodes; re-export the model".into()));
        }
        check_connected(&proto).map_err(err)?;
        check_initializer_sizes(&proto).map_err(err)?;
        Ok(Model {
            proto,
            path: path.to_path_buf(),
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.proto.write_to_bytes().map_err(|e| Error::Onnx {
            path: self.path.clone(),
            msg: format!("cannot serialize: {e}"),
        })
    }

    /// Write atomically: a temporary file in the same folder, then rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &self.to_bytes()?)
    }

    /// Default-domain opset (the one every standard op follows).
    pub fn opset(&self) -> i64 {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(0)
    }

    fn folder(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn inline_external_data(&mut self) -> Result<()> {
        let folder = self.folder();
        let path = self.path.clone();
        let graph = self.proto.graph.mut_or_insert_default();
        let mut tensors: Vec<&mut TensorProto> = graph.initializer.iter_mut().collect();
        for node in graph.node.iter_mut() {
            for attr in node.attribute.iter_mut() {
                if let Some(t) = attr.t.as_mut() {
                    tensors.push(t);
                }
            }
        }
        for t in tensors {
            if t.data_location.enum_value_or_default() == DataLocation::EXTERNAL {
                load_external(t, &folder, &path)?;
            }
        }
        Ok(())
    }
}

/// A truncated file can still parse (protobuf stops at a field boundary), but then tensors go
/// missing: every tensor a node reads (its inputs, and what its subgraphs read from outside)
/// and every graph output must come from an input, an initializer or a node.
pub(crate) fn check_connected(proto: &ModelProto) -> std::result::Result<(), String> {
    use std::collections::HashSet;
    let g = &proto.graph;
    let mut known: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    known.extend(g.initializer.iter().map(|t| t.name.as_str()));
    known.extend(
        g.sparse_initializer
            .iter()
            .filter_map(|t| t.values.as_ref())
            .map(|t| t.name.as_str()),
    );
    for n in &g.node {
        known.extend(n.output.iter().map(String::as_str));
    }
    let missing = g
        .node
        .iter()
        .flat_map(|n| super::node_reads(n).into_iter().map(move |i| (n, i)))
        .find(|(_, i)| !known.contains(i.as_str()));
    if let Some((n, i)) = missing {
        return Err(format!(
            "node '{}' ({}) reads '{i}', which no input, initializer or node provides: the file is truncated or corrupt; re-export it",
            super::node_key(n),
            n.op_type
        ));
    }
    if let Some(o) = g.output.iter().find(|o| !known.contains(o.name.as_str())) {
        return Err(format!(
            "graph output '{}' is produced by nothing: the file is truncated or corrupt; re-export it",
            o.name
        ));
    }
    Ok(())
}

/// Bytes per element of a fixed-width ONNX data type (TensorProto.DataType), as
/// (numerator, denominator): 4-bit types pack two elements a byte. `None`: strings and
/// types this check does not know.
fn element_bytes(data_type: i32) -> Option<(u64, u64)> {
    Some(match data_type {
        2 | 3 | 9 | 17..=20 => (1, 1), // uint8, int8, bool, float8 variants
        4 | 5 | 10 | 16 => (2, 1),     // uint16, int16, float16, bfloat16
        1 | 6 | 12 => (4, 1),          // float, int32, uint32
        7 | 11 | 13 | 14 => (8, 1),    // int64, double, uint64, complex64
        15 => (16, 1),                 // complex128
        21..=23 => (1, 2),             // uint4, int4, float4e2m1
        _ => return None,
    })
}

/// Every initializer stored as raw bytes (inline, or external once read) holds exactly what
/// its dims and type need. Protobuf keeps whatever was written, so a damaged length or dim
/// would otherwise reach the runtime, or a rewrite, as a tensor of the wrong size.
fn check_initializer_sizes(proto: &ModelProto) -> std::result::Result<(), String> {
    for t in &proto.graph.initializer {
        if t.data_location.enum_value_or_default() == DataLocation::EXTERNAL {
            continue;
        }
        // A zero dim makes the tensor empty whatever the others are (no overflow then).
        let count = if t.dims.contains(&0) && t.dims.iter().all(|&d| d >= 0) {
            Some(0)
        } else {
            t.dims.iter().try_fold(1u64, |acc, &d| {
                u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
        };
        if t.raw_data.is_empty() {
            // Typed fields: they must hold something when the tensor has elements, and a
            // float tensor exactly its count.
            let typed = [
                t.float_data.len(),
                t.int32_data.len(),
                t.int64_data.len(),
                t.double_data.len(),
                t.uint64_data.len(),
                t.string_data.len(),
            ];
            let held = typed.iter().sum::<usize>() as u64;
            let ok = match count {
                Some(0) => true,
                Some(n) if t.data_type == 1 => t.float_data.len() as u64 == n,
                Some(_) => held > 0,
                None => false,
            };
            if !ok {
                return Err(format!(
                    "initializer '{}' of dims {:?} holds {held} values{}: the model or its external data is damaged; re-export it",
                    crate::util::clip(&t.name, 200),
                    t.dims,
                    if t.external_data.is_empty() {
                        ""
                    } else {
                        " (it names external data but is not marked EXTERNAL)"
                    }
                ));
            }
            continue;
        }
        let Some((num, den)) = element_bytes(t.data_type) else {
            continue;
        };
        let need = count
            .and_then(|c| c.checked_mul(num))
            .map(|b| b.div_ceil(den));
        if need != Some(t.raw_data.len() as u64) {
            return Err(format!(
                "initializer '{}' holds {} bytes but its dims {:?} need {}: the model or its external data is damaged; re-export it",
                crate::util::clip(&t.name, 200),
                t.raw_data.len(),
                t.dims,
                need.map_or("more than 2^64".into(), |b| b.to_string())
            ));
        }
    }
    Ok(())
}

/// Read one tensor's external data into `raw_data`, refusing paths outside `folder`.
fn load_external(t: &mut TensorProto, folder: &Path, model: &Path) -> Result<()> {
    let err = |msg: String| Error::Onnx {
        path: model.to_path_buf(),
        msg: format!("tensor '{}': external data: {msg}", t.name),
    };
    let (mut location, mut offset, mut length) = (None, 0u64, None::<u64>);
    for kv in &t.external_data {
        match kv.key.as_str() {
            "location" => location = Some(kv.value.clone()),
            "offset" => offset = kv.value.parse().map_err(|_| err("bad offset".into()))?,
            "length" => length = Some(kv.value.parse().map_err(|_| err("bad length".into()))?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| err("no 'location' key".into()))?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(err(format!(
            "location '{location}' points outside the model's folder; refusing it (keep external data files beside the model)"
        )));
    }
    let file = folder.join(rel);
    // Symlinks could still escape: compare canonical paths.
    let canon_folder = folder.canonicalize().map_err(|e| Error::io(folder, e))?;
    let canon_file = file.canonicalize().map_err(|e| Error::io(&file, e))?;
    if !canon_file.starts_with(&canon_folder) {
        return Err(err(format!(
            "location '{location}' resolves to {} outside the model's folder; refusing it",
            canon_file.display()
        )));
    }
    t.raw_data = crate::util::input::read_range(&canon_file, offset, length)?;
    t.external_data.clear();
    t.data_location = DataLocation::DEFAULT.into();
    Ok(())
}
