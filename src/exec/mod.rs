//! Executors: ONNX Runtime on CPU (always), TensorRT (feature `tensorrt`).

mod infer;
mod ort;

pub use infer::Infer;

pub use self::ort::{
    init as init_ort, library_path as ort_library_path, version as ort_version, zeros, OrtSession,
    OrtShapes,
};
