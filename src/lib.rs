//! trtforge: ONNX detection models to TensorRT engines for Jetson Orin and Thor.
//!
//! Modules, from the bottom up (each depends only on modules listed before it):
//! - [`error`], [`mod@env`], [`util`], [`dylib`]: the error type, environment variables, atomic
//!   writes and hashes, run-time library probes.
//! - [`cuda`]: cudarc device buffers, streams, events (feature `cuda`); [`trt`]: the TensorRT
//!   binding only (raw, result, safe handles, calibrator bridge, probe, versions).
//! - [`onnx`]: lossless load/write and the one graph layer (view, patches, tensors, opset
//!   upgrade, inspection).
//! - [`data`]: image decoding, the input contract, preprocessing, image sets, the ordered
//!   stream, `.npy` dumps.
//! - [`recipe`]: the YAML schema, located errors, and the resolved jobs every command runs.
//! - [`exec`]: executors (ONNX Runtime on CPU).
//! - [`eval`]: detection decoders, NMS, COCO-style mAP, and the `eval` job.
//! - [`calib`]: histograms, range algorithms, cache/range/provenance files, the `calibrate` job.
//! - [`quant`]: the Q/DQ writer and the accuracy-aware precision plan (`quantize`).
//! - [`prune`]: structural channel pruning (dependency groups, criteria, selection, least-squares
//!   recovery) (`prune`).
//! - [`build`]: the engine-build pipeline (plan, calibration decision, engine, manifest).
//! - [`run`]: reference outputs over images (`run`).
//! - [`measure`], [`report`]: latency statistics, power samplers, energy; bench reports.
//! - [`doctor`]: what this machine has.

pub mod build;
pub mod bundle;
pub mod calib;
pub mod cuda;
pub mod data;
pub mod doctor;
pub mod dylib;
pub mod env;
pub mod error;
pub mod eval;
pub mod exec;
pub mod matrix;
pub mod measure;
pub mod onnx;
pub mod prune;
pub mod quant;
pub mod recipe;
pub mod report;
pub mod run;
pub mod trt;
pub mod util;

pub use error::{Error, Result};

/// Version string recorded in every artifact trtforge writes.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
