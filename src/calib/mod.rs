//! INT8 calibration: streaming histograms of every activation, range algorithms, and the
//! TensorRT cache, range and provenance files they produce, with the `calibrate` job that
//! runs the FP32 model over the calibration images (read through [`crate::data`]).

// Calibration algorithms.
pub mod capture;
pub mod histogram;
pub mod range;
pub mod unary;

// Artifacts.
pub mod artifacts;
pub mod cache;
pub mod provenance;

// The `trtforge calibrate` job.
pub mod calibrate;
mod collect;
