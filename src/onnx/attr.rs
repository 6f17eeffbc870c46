//! Node attributes: typed reads that refuse a value of the wrong type, and builders.
//!
//! Reads return `Ok(None)` when the attribute is absent (the op's default applies) and `Err`
//! with a short reason when it is present with another type; [`super::Graph`] turns the reason
//! into an error naming the node and the model. An attribute whose `type` field is unset
//! (some old exporters) is read from the field the caller asks for.

use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};

/// The attribute called `name`, if the node has one.
pub fn find<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn typed<'n>(
    node: &'n NodeProto,
    name: &str,
    want: AttributeType,
) -> Result<Option<&'n AttributeProto>, String> {
    let Some(a) = find(node, name) else {
        return Ok(None);
    };
    let ty = a.type_.enum_value_or_default();
    if ty != want && ty != AttributeType::UNDEFINED {
        return Err(format!("attribute '{name}' is {ty:?}, expected {want:?}"));
    }
    Ok(Some(a))
}

pub fn int(node: &NodeProto, name: &str) -> Result<Option<i64>, String> {
    Ok(typed(node, name, AttributeType::INT)?.map(|a| a.i))
}

pub fn float(node: &NodeProto, name: &str) -> Result<Option<f32>, String> {
    Ok(typed(node, name, AttributeType::FLOAT)?.map(|a| a.f))
}

pub fn ints<'n>(node: &'n NodeProto, name: &str) -> Result<Option<&'n [i64]>, String> {
    Ok(typed(node, name, AttributeType::INTS)?.map(|a| a.ints.as_slice()))
}

pub fn floats<'n>(node: &'n NodeProto, name: &str) -> Result<Option<&'n [f32]>, String> {
    Ok(typed(node, name, AttributeType::FLOATS)?.map(|a| a.floats.as_slice()))
}

/// A STRING attribute as bytes (ONNX strings are bytes; op attributes are ASCII).
pub fn string<'n>(node: &'n NodeProto, name: &str) -> Result<Option<&'n [u8]>, String> {
    Ok(typed(node, name, AttributeType::STRING)?.map(|a| a.s.as_slice()))
}

pub fn tensor<'n>(node: &'n NodeProto, name: &str) -> Result<Option<&'n TensorProto>, String> {
    match typed(node, name, AttributeType::TENSOR)? {
        Some(a) => {
            a.t.as_ref()
                .map(Some)
                .ok_or_else(|| format!("attribute '{name}' has no tensor"))
        }
        None => Ok(None),
    }
}

/// Remove the attribute called `name` and return it.
pub fn take(node: &mut NodeProto, name: &str) -> Option<AttributeProto> {
    let pos = node.attribute.iter().position(|a| a.name == name)?;
    Some(node.attribute.remove(pos))
}

fn new(name: &str, ty: AttributeType) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = ty.into();
    a
}

pub fn int_attr(name: &str, v: i64) -> AttributeProto {
    let mut a = new(name, AttributeType::INT);
    a.i = v;
    a
}

pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = new(name, AttributeType::INTS);
    a.ints = v.to_vec();
    a
}

pub fn float_attr(name: &str, v: f32) -> AttributeProto {
    let mut a = new(name, AttributeType::FLOAT);
    a.f = v;
    a
}

pub fn string_attr(name: &str, v: &str) -> AttributeProto {
    let mut a = new(name, AttributeType::STRING);
    a.s = v.as_bytes().to_vec();
    a
}

pub fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    let mut a = new(name, AttributeType::TENSOR);
    a.t = Some(t).into();
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::node;

    #[test]
    fn typed_reads_refuse_other_types_and_absent_is_none() {
        let n = node(
            "Conv",
            "c",
            &["x", "w"],
            &["y"],
            vec![int_attr("group", 2), ints_attr("pads", &[1, 1, 1, 1])],
        );
        assert_eq!(int(&n, "group").unwrap(), Some(2));
        assert_eq!(ints(&n, "pads").unwrap(), Some(&[1i64, 1, 1, 1][..]));
        assert_eq!(int(&n, "missing").unwrap(), None);
        let e = int(&n, "pads").unwrap_err();
        assert!(e.contains("'pads'") && e.contains("INTS"), "{e}");
        let mut untyped = n.clone();
        untyped.attribute[0].type_ = AttributeType::UNDEFINED.into();
        assert_eq!(int(&untyped, "group").unwrap(), Some(2));
        let mut m = n.clone();
        assert_eq!(take(&mut m, "group").unwrap().i, 2);
        assert!(find(&m, "group").is_none());
    }
}
