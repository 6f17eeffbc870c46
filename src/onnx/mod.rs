//! ONNX models: lossless load/write (rust-protobuf keeps unknown fields), external data,
//! inspection, MACs and the channel-alignment lint.
