//! TensorRT: the calibrator bridge, engine manifests and availability probe (always compiled,
//! pure Rust), and the safe wrapper over the `sys/` C ABI shim (feature `tensorrt`).
//!
//! The calibration stream plugs in through [`bridge::BatchSource`], the provenance-checked
//! calibration cache through [`bridge::CacheStore`]; [`calib_io`] implements both over the
//! calibration issue's `ImageStream` and provenance-checked cache files.

pub mod bridge;
pub mod calib_io;
pub mod manifest;
pub mod plan;
pub mod probe;

#[cfg(test)]
mod harness_test;

#[cfg(feature = "tensorrt")]
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod sys {
    //! bindgen output for `sys/trtforge_shim.h`.
    include!(concat!(env!("OUT_DIR"), "/trtforge_sys.rs"));
}

#[cfg(feature = "tensorrt")]
mod safe;

#[cfg(feature = "tensorrt")]
pub use safe::*;

#[cfg(feature = "tensorrt")]
mod engine;

#[cfg(feature = "tensorrt")]
pub use engine::{build_engine, summarize_layers, CalibrationInputs};

pub use bridge::{BatchSource, BindingMemory, CacheStore, CalibratorState, HostTensor};
pub use calib_io::{ProvenanceCache, StreamSource};
pub use manifest::{load_checked_engine, manifest_path, write_atomic, Manifest, Runtime};
pub use probe::{probe, TensorRtStatus};
