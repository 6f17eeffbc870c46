//! Builders for the protobuf pieces rewrites and fixtures create: nodes and value infos.
//! Tensors are built in [`super::tensor`], attributes in [`super::attr`].

use onnx_protobuf::{
    tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, NodeProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// A node in the default domain.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.attribute = attrs;
    n
}

/// A tensor value info of element type `elem` with a static shape.
pub fn typed_value_info(name: &str, elem: DataType, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.set_dim_value(d);
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = elem as i32;
    tt.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.set_tensor_type(tt);
    let mut vi = ValueInfoProto::new();
    vi.name = name.into();
    vi.type_ = Some(ty).into();
    vi
}

/// A float tensor value info with a static shape.
pub fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    typed_value_info(name, DataType::FLOAT, dims)
}
