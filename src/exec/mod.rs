//! Executors of models: ONNX Runtime on CPU, and [`Infer`], the one-inference interface it
//! and the TensorRT engine executor (`measure::trt_exec`, feature `tensorrt`) share, and
//! [`check_loads`], the load check of a rewritten model before it is written.

mod check;
mod guard;
mod infer;
mod ort;

pub use check::check_loads;
pub use guard::{guarded, install_panic_filter};
pub use infer::Infer;

pub use self::ort::{
    init as init_ort, library_path as ort_library_path, version as ort_version, zeros, OrtSession,
    OrtShapes,
};
