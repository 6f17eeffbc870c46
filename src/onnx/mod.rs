//! ONNX models: lossless load/write (rust-protobuf keeps unknown fields), external data, and
//! the one graph layer every rewrite and analysis uses:
//! - [`Graph`]: a read-only view with stable node ids, producers, consumers, constants,
//!   typed attributes and checked inputs; [`node_key`] is the one node identity;
//! - [`Patch`]: edits applied in one step, topological and lossless;
//! - [`tensor`]: typed tensor read/write and slicing; [`attr`]: typed attributes;
//!   [`node`] and [`value_info`]: builders;
//! - [`upgrade`]: the opset upgrade to 13;
//! - [`inspect()`] and [`inspect_with_shapes`]: summary, MACs and the channel-alignment lint,
//!   with shapes from a [`ShapeSource`];
//! - [`synth`]: the demo model and test fixtures.

pub mod attr;
mod builder;
mod graph;
mod inspect;
mod model;
mod patch;
mod shapes;
pub mod synth;
pub mod tensor;
pub mod upgrade;
mod wire;

pub use attr::{float_attr, int_attr, ints_attr, string_attr, tensor_attr};
pub use builder::{node, typed_value_info, value_info};
pub use graph::{arity, node_key, node_reads, Graph, NodeId};
pub use inspect::*;
pub use model::Model;
pub use patch::{with_extra_outputs, with_fixed_inputs, Patch};
pub use shapes::ShapeSource;
pub use tensor::{float16_tensor, float_tensor, int64_tensor, int8_tensor};
pub use upgrade::upgrade_opset;
