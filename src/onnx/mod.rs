//! ONNX models: lossless load/write (rust-protobuf keeps unknown fields), external data,
//! inspection, MACs and the channel-alignment lint.

mod inspect;
mod model;
mod rewrite;
pub mod synth;

pub use inspect::*;
pub use model::Model;
pub use rewrite::{activation_names, with_extra_outputs};
