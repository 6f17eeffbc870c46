//! CUDA through cudarc (feature `cuda`): a device context with one stream, device buffers the
//! calibrator bridge uploads batches into, and event timing. The driver is loaded dynamically,
//! so the crate builds without CUDA; [`probe()`] (always compiled) says whether it is there.

pub mod probe;

pub use probe::{probe, CudaStatus};

#[cfg(feature = "cuda")]
mod device;

#[cfg(feature = "cuda")]
pub use device::{DeviceBindings, Gpu};

#[cfg(all(test, feature = "cuda"))]
pub(crate) use device::testing;
