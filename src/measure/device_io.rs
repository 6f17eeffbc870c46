//! Where an engine's tensors live and how one inference's copies, timing marks and waits are
//! issued on its stream (always compiled). `measure::cuda_io::CudaIo` (feature `cuda`) is the real one: pinned
//! host buffers, device buffers, CUDA events and graphs on one stream. [`HostIo`] keeps every
//! tensor in host memory and logs each call, so the TensorRT executor's sequence runs in tests
//! against the TensorRT test double, which never touches the memory behind an address.

use super::harness::Timing;
use crate::error::{Error, Result};
use std::ffi::c_void;

/// Points of one inference recorded on the stream, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Start,
    InputsCopied,
    Computed,
    OutputsCopied,
}

pub trait DeviceIo {
    /// Buffers for tensor `name` of `bytes` bytes; returns the address TensorRT reads or
    /// writes (device memory on a GPU).
    fn add(&mut self, name: &str, bytes: usize, input: bool) -> Result<*mut c_void>;
    /// The host side of `name`: fill inputs here, read outputs after [`DeviceIo::wait`].
    fn host_mut(&mut self, name: &str) -> Result<&mut [u8]>;
    /// The stream TensorRT enqueues on (a `cudaStream_t`).
    fn stream(&self) -> *mut c_void;
    /// Issue every input's host-to-device copy (asynchronous).
    fn copy_inputs(&mut self) -> Result<()>;
    /// Issue every output's device-to-host copy (asynchronous).
    fn copy_outputs(&mut self) -> Result<()>;
    /// Record `m` on the stream (a CUDA event); [`Mark::Start`] begins a new inference.
    fn mark(&mut self, m: Mark) -> Result<()>;
    /// Wait for everything issued: busy-wait on the last mark (`spin`) or block.
    fn wait(&mut self, spin: bool) -> Result<()>;
    /// Device time between the marks of the last inference: h2d Start..InputsCopied, compute
    /// InputsCopied..Computed (or Start..OutputsCopied when only those two were recorded, as
    /// for a graph replay), d2h Computed..OutputsCopied.
    fn timing(&mut self) -> Result<Timing>;
    /// Capture what is issued from now on into a graph instead of running it.
    fn begin_capture(&mut self) -> Result<()>;
    fn end_capture(&mut self) -> Result<()>;
    /// Launch the captured graph.
    fn replay(&mut self) -> Result<()>;
}

/// Host memory only; records every call in `log` (shared, so a test still reads it once the
/// executor owns this).
#[derive(Default)]
pub struct HostIo {
    buffers: Vec<(String, bool, Vec<u8>)>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    capturing: bool,
    captured: bool,
}

impl HostIo {
    fn note(&self, what: impl Into<String>) {
        if let Ok(mut l) = self.log.lock() {
            l.push(what.into());
        }
    }

    fn find(&mut self, name: &str) -> Result<&mut Vec<u8>> {
        self.buffers
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, b)| b)
            .ok_or_else(|| Error::internal(format!("no buffer for tensor '{name}'")))
    }
}

impl DeviceIo for HostIo {
    fn add(&mut self, name: &str, bytes: usize, input: bool) -> Result<*mut c_void> {
        self.note(format!("add {name} {bytes}"));
        self.buffers
            .push((name.to_string(), input, vec![0; bytes.max(1)]));
        Ok(self.find(name)?.as_mut_ptr().cast())
    }
    fn host_mut(&mut self, name: &str) -> Result<&mut [u8]> {
        Ok(self.find(name)?.as_mut_slice())
    }
    fn stream(&self) -> *mut c_void {
        std::ptr::null_mut()
    }
    fn copy_inputs(&mut self) -> Result<()> {
        self.note("h2d");
        Ok(())
    }
    fn copy_outputs(&mut self) -> Result<()> {
        self.note("d2h");
        Ok(())
    }
    fn mark(&mut self, m: Mark) -> Result<()> {
        self.note(format!("{m:?}"));
        Ok(())
    }
    fn wait(&mut self, spin: bool) -> Result<()> {
        if self.capturing {
            return Err(Error::internal("wait during a stream capture"));
        }
        self.note(if spin { "spin" } else { "block" });
        Ok(())
    }
    fn timing(&mut self) -> Result<Timing> {
        Ok(Timing::HOST_ONLY)
    }
    fn begin_capture(&mut self) -> Result<()> {
        self.note("begin_capture");
        self.capturing = true;
        Ok(())
    }
    fn end_capture(&mut self) -> Result<()> {
        self.note("end_capture");
        self.capturing = false;
        self.captured = true;
        Ok(())
    }
    fn replay(&mut self) -> Result<()> {
        if !self.captured {
            return Err(Error::internal("replay before a capture"));
        }
        self.note("replay");
        Ok(())
    }
}
