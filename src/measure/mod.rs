//! Measurement: trtexec-grade latency statistics, power samplers and energy per inference.
//!
//! - [`stats`]: min/mean/median/percentiles/max/std over per-iteration times (trtexec's
//!   percentile definition, see [`stats::percentile`]).
//! - [`harness`]: the [`Executor`] trait and the bench loop (warmup, measured window, every
//!   per-iteration time on the monotonic clock).
//! - [`power`]: samplers (INA3221 sysfs, tegrastats, NVML), each in its own thread.
//! - [`energy`]: trapezoidal integration clipped to the measured window, idle baseline.
//! - [`context`]: device facts recorded with every result (model, L4T, nvpmodel, clocks, temps).
//! - [`ort_exec`]: the ONNX Runtime CPU executor.
//! - [`session`]: one full measurement: context, idle baseline, loop, samplers, energy.
//! - [`device_io`]: tensors' buffers, copies, events and graphs on one stream (`cuda_io` on a
//!   GPU, feature `cuda`); `trt_exec`: the TensorRT engine executor (feature `tensorrt`).

pub mod context;
#[cfg(feature = "cuda")]
pub mod cuda_io;
pub mod device_io;
pub mod energy;
pub mod harness;
pub mod ort_exec;
pub mod power;
pub mod session;
pub mod stats;
#[cfg(feature = "tensorrt")]
pub mod trt_exec;

pub use harness::{
    BenchConfig, BenchRun, Executor, ExecutorInfo, IterRecord, Stop, Timing, Warmup,
};
