//! The TensorRT binding, and only that. It depends on nothing above [`crate::cuda`],
//! [`crate::env`], [`crate::dylib`], [`crate::util`] and [`crate::error`]; the build pipeline
//! that uses it is [`crate::build`].
//!
//! Layers, as cudarc has them:
//! - `sys`: the raw bindings of `sys/trtforge_shim.h` (feature `tensorrt`);
//! - `result`: statuses to `Result`s with TensorRT's message (feature `tensorrt`);
//! - `safe`: owning handles, one file per TensorRT object (feature `tensorrt`);
//! - [`bridge`]: the calibrator bridge's Rust side, pure Rust behind a C ABI (always compiled,
//!   so it is tested everywhere);
//! - [`mod@probe`]: is libnvinfer here, and which version (always compiled, for `doctor`);
//! - [`version`]: TensorRT version numbers and what each version has;
//! - [`options`]: what a build can be asked for, as plain data (always compiled).

pub mod bridge;
pub mod options;
pub mod probe;
pub mod version;

pub use options::{DataType, Flag, InputProfile, IoTensor, Pool, ProfilingVerbosity, TacticSource};

#[cfg(test)]
mod harness_test;

/// bindgen output for `sys/trtforge_shim.h`, committed (tests/bindings.rs keeps it current).
#[cfg(feature = "tensorrt")]
#[rustfmt::skip]
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
pub mod sys;

#[cfg(feature = "tensorrt")]
pub mod result;

#[cfg(feature = "tensorrt")]
mod safe;

#[cfg(feature = "tensorrt")]
pub use safe::*;

pub use bridge::{BatchSource, BindingMemory, CacheStore, CalibratorState, HostTensor};
pub use probe::{probe, TensorRtStatus};
pub use version::TrtVersion;
