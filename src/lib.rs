//! trtforge: ONNX detection models to TensorRT engines for Jetson Orin.
//!
//! Where things live (one module per concern):
//! - [`onnx`]: lossless ONNX load/write, inspection, MACs, channel-alignment lint.
//! - [`recipe`]: the YAML recipe schema and its validation.
//! - [`calib`]: the calibration image stream and preprocessing.
//! - [`exec`]: executors (ONNX Runtime on CPU; TensorRT behind the `tensorrt` feature).
//! - [`eval`]: detection decoders, NMS, COCO-style mAP.
//! - [`trt`]: the safe TensorRT wrapper and the calibrator bridge (feature `tensorrt`).
//! - [`cuda`]: cudarc device buffers, streams, events (feature `cuda`).
//! - [`measure`]: latency statistics and power samplers.
//! - [`report`]: manifests and JSON/Markdown/SVG reports.

pub mod build;
pub mod calib;
pub mod cuda;
pub mod data;
pub mod doctor;
pub mod dylib;
pub mod env;
pub mod error;
pub mod eval;
pub mod exec;
pub mod measure;
pub mod onnx;
pub mod quant;
pub mod recipe;
pub mod report;
pub mod run;
pub mod trt;
pub mod util;

pub use error::{Error, Result};

/// Version string recorded in every artifact trtforge writes.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
