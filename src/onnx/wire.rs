//! A bounded pre-scan of protobuf wire bytes, run before rust-protobuf parses a model.
//!
//! Why: rust-protobuf 3.4 limits the nesting of *messages* (100, as C++ does), but skips an
//! unknown *group* by recursing once per nested group with no limit (`skip_group` ->
//! `skip_field` -> `skip_group`). ONNX has no groups, so a model's bytes carry one only when
//! they are damaged or hostile, and 300 KB of nested group tags overflow the stack (an abort,
//! not an error). This scan walks exactly the bytes the parser will walk — every region the
//! ONNX schema says is a message ([`Kind::message_field`], the table of onnx-protobuf 0.2.3's
//! generated `merge_from`, which is built for the lite runtime and has no descriptors) — with
//! an explicit stack, and refuses group nesting deeper than [`MAX_GROUP_DEPTH`].
//!
//! It is not a validator: where the bytes stop being well-formed it stops scanning that
//! region, because the parser fails there too (it reads the same region in the same order,
//! so it meets every group this scan would have met first).

/// Deepest group nesting accepted. Any group is foreign to ONNX; a little nesting is
/// harmless, so unknown fields written by some other tool still round-trip.
pub const MAX_GROUP_DEPTH: usize = 32;

/// Message nesting the parser itself allows (rust-protobuf's default recursion limit).
const MAX_MESSAGE_DEPTH: usize = 100;

/// The ONNX message types, as far as the scan needs them: which fields hold messages.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    SparseTensor,
    ValueInfo,
    Type,
    /// `TypeProto.Tensor` and `TypeProto.SparseTensor`: field 2 is the shape.
    TypeWithShape,
    /// `TypeProto.Sequence`/`.Optional` (field 1) and `.Map` (field 2): the element type.
    TypeOf(u64),
    Shape,
    TrainingInfo,
    TensorAnnotation,
    Function,
    /// Messages without message fields (StringStringEntry, Segment, Dimension, OperatorSetId).
    Leaf,
}

impl Kind {
    /// The kind of field `number` when the schema declares it a message.
    fn message_field(self, number: u64) -> Option<Kind> {
        use Kind::*;
        Some(match (self, number) {
            (Model, 7) => Graph,
            (Model, 8 | 14) => Leaf,
            (Model, 20) => TrainingInfo,
            (Model, 25) => Function,
            (Graph, 1) => Node,
            (Graph, 5) => Tensor,
            (Graph, 15) => SparseTensor,
            (Graph, 11..=13) => ValueInfo,
            (Graph, 14) => TensorAnnotation,
            (Graph, 16) => Leaf,
            (Node, 5) => Attribute,
            (Node, 9) => Leaf,
            (Attribute, 5 | 10) => Tensor,
            (Attribute, 6 | 11) => Graph,
            (Attribute, 22 | 23) => SparseTensor,
            (Attribute, 14 | 15) => Type,
            (Tensor, 3 | 13 | 16) => Leaf,
            (SparseTensor, 1 | 2) => Tensor,
            (ValueInfo, 2) => Type,
            (ValueInfo, 4) => Leaf,
            (Type, 1 | 8) => TypeWithShape,
            (Type, 4 | 9) => TypeOf(1),
            (Type, 5) => TypeOf(2),
            (TypeWithShape, 2) => Shape,
            (TypeOf(f), n) if f == n => Type,
            (Shape, 1) => Leaf,
            (TrainingInfo, 1 | 2) => Graph,
            (TrainingInfo, 3 | 4) => Leaf,
            (TensorAnnotation, 2) => Leaf,
            (Function, 7) => Node,
            (Function, 9 | 14) => Leaf,
            (Function, 11) => Attribute,
            (Function, 12) => ValueInfo,
            _ => return None,
        })
    }
}

/// Check that no message region of `bytes` (a serialized `ModelProto`) nests groups deeper
/// than [`MAX_GROUP_DEPTH`]. The error says where the nesting was found.
pub fn check_group_depth(bytes: &[u8]) -> Result<(), String> {
    // Regions still to scan: (byte range, its message type, message depth).
    let mut todo = vec![(0, bytes.len(), Kind::Model, 0)];
    while let Some((start, end, kind, depth)) = todo.pop() {
        scan_region(bytes, start, end, kind, depth, &mut todo)?;
    }
    Ok(())
}

fn scan_region(
    bytes: &[u8],
    start: usize,
    end: usize,
    kind: Kind,
    depth: usize,
    todo: &mut Vec<(usize, usize, Kind, usize)>,
) -> Result<(), String> {
    let mut pos = start;
    let mut groups = 0usize;
    while pos < end {
        let Some(tag) = varint(bytes, &mut pos, end) else {
            return Ok(());
        };
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                if varint(bytes, &mut pos, end).is_none() {
                    return Ok(());
                }
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let Some(len) = varint(bytes, &mut pos, end) else {
                    return Ok(());
                };
                let Some(stop) = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&s| s <= end)
                else {
                    return Ok(());
                };
                // Inside a group every field is skipped as bytes; outside one, a field the
                // schema declares as a message is parsed as one, so it is scanned too.
                if groups == 0 && depth < MAX_MESSAGE_DEPTH {
                    if let Some(sub) = kind.message_field(field) {
                        todo.push((pos, stop, sub, depth + 1));
                    }
                }
                pos = stop;
            }
            3 => {
                groups += 1;
                if groups > MAX_GROUP_DEPTH {
                    return Err(format!(
                        "protobuf groups nested more than {MAX_GROUP_DEPTH} deep at byte {pos} \
                         (ONNX has no groups: the file is damaged or not an ONNX model)"
                    ));
                }
            }
            4 => {
                if groups == 0 {
                    return Ok(());
                }
                groups -= 1;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Read a varint (at most 10 bytes) ending before `end`; `None` when malformed.
fn varint(bytes: &[u8], pos: &mut usize, end: usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let b = *bytes.get(*pos).filter(|_| *pos < end)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;

    fn nested_groups(field: u8, depth: usize) -> Vec<u8> {
        let start = (field << 3) | 3;
        let stop = (field << 3) | 4;
        let mut b = vec![start; depth];
        b.extend(std::iter::repeat_n(stop, depth));
        b
    }

    #[test]
    fn deep_groups_are_refused_before_the_parser_recurses() {
        // Top level: field 15 is unknown to ModelProto.
        let bytes = nested_groups(15, 150_000);
        let err = check_group_depth(&bytes).unwrap_err();
        assert!(err.contains("nested more than 32"), "{err}");
    }

    #[test]
    fn deep_groups_inside_a_submessage_are_found() {
        // ModelProto.graph (field 7) -> GraphProto with the nested groups.
        let inner = nested_groups(15, 1000);
        let mut bytes = vec![(7 << 3) | 2];
        let mut len = inner.len();
        while len >= 0x80 {
            bytes.push((len as u8) | 0x80);
            len >>= 7;
        }
        bytes.push(len as u8);
        bytes.extend(inner);
        assert!(check_group_depth(&bytes).is_err());
    }

    #[test]
    fn shallow_groups_and_real_models_pass() {
        assert!(check_group_depth(&nested_groups(15, MAX_GROUP_DEPTH)).is_ok());
        let bytes = crate::onnx::synth::tiny_detector(64)
            .proto
            .write_to_bytes()
            .unwrap();
        assert!(check_group_depth(&bytes).is_ok());
    }
}
