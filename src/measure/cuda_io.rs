//! [`DeviceIo`] on a GPU through cudarc (feature `cuda`): for every tensor a page-locked host
//! buffer and a device buffer, copies issued asynchronously on the GPU's one stream, four CUDA
//! events for the timing split, and CUDA graph capture and replay of a whole inference.
//!
//! The hot path avoids cudarc's per-slice event tracking (it records extra events on every use
//! and would put them into a captured graph): device memory is allocated and copied with the
//! driver calls of `cudarc::driver::result`, owned here and freed in `Drop`.
//! Host buffers are pinned without write-combining, because outputs are read back on the CPU
//! (write-combined memory is slow to read).

use super::device_io::{DeviceIo, Mark};
use super::harness::Timing;
use crate::cuda::Gpu;
use crate::error::{Error, Result};
use cudarc::driver::sys::{CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{result, CudaEvent, CudaGraph, DriverError, PinnedHostSlice};
use std::ffi::c_void;

fn cuda(what: &'static str) -> impl Fn(DriverError) -> Error {
    move |e| Error::Cuda {
        what: what.to_string(),
        msg: e.to_string(),
    }
}

struct Buffer {
    name: String,
    input: bool,
    /// Owns the pinned allocation `host_ptr` points into (cudarc's accessors synchronize an
    /// event on every call, so the hot path uses the pointer).
    _host: PinnedHostSlice<u8>,
    host_ptr: *mut u8,
    device: cudarc::driver::sys::CUdeviceptr,
    bytes: usize,
}

pub struct CudaIo {
    gpu: Gpu,
    buffers: Vec<Buffer>,
    /// One event per [`Mark`], in its order; timing events (not DISABLE_TIMING), the last
    /// one blocking-sync so a blocking wait sleeps instead of spinning in the driver.
    events: [CudaEvent; 4],
    /// Marks recorded since the last [`Mark::Start`].
    recorded: [bool; 4],
    graph: Option<CudaGraph>,
}

fn slot(m: Mark) -> usize {
    match m {
        Mark::Start => 0,
        Mark::InputsCopied => 1,
        Mark::Computed => 2,
        Mark::OutputsCopied => 3,
    }
}

impl CudaIo {
    pub fn new(gpu: Gpu) -> Result<Self> {
        let ctx = gpu.context().clone();
        let ev = |flags| ctx.new_event(Some(flags)).map_err(cuda("event creation"));
        let events = [
            ev(CUevent_flags::CU_EVENT_DEFAULT)?,
            ev(CUevent_flags::CU_EVENT_DEFAULT)?,
            ev(CUevent_flags::CU_EVENT_DEFAULT)?,
            ev(CUevent_flags::CU_EVENT_BLOCKING_SYNC)?,
        ];
        Ok(CudaIo {
            gpu,
            buffers: vec![],
            events,
            recorded: [false; 4],
            graph: None,
        })
    }

    fn bind(&self) -> Result<()> {
        self.gpu
            .context()
            .bind_to_thread()
            .map_err(cuda("context bind"))
    }

    fn raw_stream(&self) -> cudarc::driver::sys::CUstream {
        self.gpu.stream().cu_stream()
    }

    /// The last mark recorded in this inference (what a wait waits for).
    fn last(&self) -> Option<&CudaEvent> {
        (0..4)
            .rev()
            .find(|&i| self.recorded[i])
            .map(|i| &self.events[i])
    }

    fn between(&self, a: Mark, b: Mark) -> Result<Option<f64>> {
        let (a, b) = (slot(a), slot(b));
        if !(self.recorded[a] && self.recorded[b]) {
            return Ok(None);
        }
        let ms = self.events[a]
            .elapsed_ms(&self.events[b])
            .map_err(cuda("event elapsed time"))?;
        Ok(Some(f64::from(ms)))
    }
}

impl DeviceIo for CudaIo {
    fn add(&mut self, name: &str, bytes: usize, input: bool) -> Result<*mut c_void> {
        self.bind()?;
        let n = bytes.max(1);
        // SAFETY: the contents are unset; inputs are written before the first copy and outputs
        // are only read after a device-to-host copy.
        let mut host = unsafe { self.gpu.context().alloc_pinned_with_flags::<u8>(n, 0) }
            .map_err(cuda("pinned host allocation"))?;
        let host_ptr = host
            .as_mut_slice()
            .map_err(cuda("pinned host buffer"))?
            .as_mut_ptr();
        // SAFETY: a plain allocation in the bound context; freed in Drop.
        let device = unsafe { result::malloc_sync(n) }.map_err(cuda("device allocation"))?;
        self.buffers.push(Buffer {
            name: name.to_string(),
            input,
            _host: host,
            host_ptr,
            device,
            bytes,
        });
        Ok(device as usize as *mut c_void)
    }

    fn host_mut(&mut self, name: &str) -> Result<&mut [u8]> {
        let b = self
            .buffers
            .iter_mut()
            .find(|b| b.name == name)
            .ok_or_else(|| Error::internal(format!("no buffer for tensor '{name}'")))?;
        // SAFETY: `host_ptr` points at `bytes` (at least) pinned bytes owned by `b`, borrowed
        // mutably through `self`.
        Ok(unsafe { std::slice::from_raw_parts_mut(b.host_ptr, b.bytes) })
    }

    fn stream(&self) -> *mut c_void {
        self.raw_stream().cast()
    }

    fn copy_inputs(&mut self) -> Result<()> {
        self.bind()?;
        let stream = self.raw_stream();
        for b in self.buffers.iter().filter(|b| b.input) {
            // SAFETY: `device` and the pinned `host_ptr` both hold `bytes`, and outlive the copy
            // (owned here, freed only after the stream is synchronized in Drop).
            unsafe {
                let src = std::slice::from_raw_parts(b.host_ptr, b.bytes);
                result::memcpy_htod_async(b.device, src, stream)
            }
            .map_err(cuda("host-to-device copy"))?;
        }
        Ok(())
    }

    fn copy_outputs(&mut self) -> Result<()> {
        self.bind()?;
        let stream = self.raw_stream();
        for b in self.buffers.iter_mut().filter(|b| !b.input) {
            // SAFETY: as for copy_inputs; nothing reads the host buffer before the wait.
            unsafe {
                let dst = std::slice::from_raw_parts_mut(b.host_ptr, b.bytes);
                result::memcpy_dtoh_async(dst, b.device, stream)
            }
            .map_err(cuda("device-to-host copy"))?;
        }
        Ok(())
    }

    fn mark(&mut self, m: Mark) -> Result<()> {
        if m == Mark::Start {
            self.recorded = [false; 4];
        }
        let i = slot(m);
        self.events[i]
            .record(self.gpu.stream())
            .map_err(cuda("event record"))?;
        self.recorded[i] = true;
        Ok(())
    }

    fn wait(&mut self, spin: bool) -> Result<()> {
        match (spin, self.last()) {
            (true, Some(e)) => {
                while !e.try_is_complete().map_err(cuda("event query"))? {
                    std::hint::spin_loop();
                }
                Ok(())
            }
            (false, Some(e)) => e.synchronize().map_err(cuda("event synchronize")),
            (_, None) => self
                .gpu
                .stream()
                .synchronize()
                .map_err(cuda("stream synchronize")),
        }
    }

    fn timing(&mut self) -> Result<Timing> {
        let whole = !self.recorded[1] && !self.recorded[2];
        Ok(Timing {
            h2d_ms: self.between(Mark::Start, Mark::InputsCopied)?,
            compute_ms: if whole {
                self.between(Mark::Start, Mark::OutputsCopied)?
            } else {
                self.between(Mark::InputsCopied, Mark::Computed)?
            },
            d2h_ms: self.between(Mark::Computed, Mark::OutputsCopied)?,
        })
    }

    fn begin_capture(&mut self) -> Result<()> {
        self.gpu
            .stream()
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(cuda("stream capture"))
    }

    fn end_capture(&mut self) -> Result<()> {
        let g = self
            .gpu
            .stream()
            .end_capture(CUgraphInstantiate_flags(0))
            .map_err(cuda("stream capture"))?
            .ok_or_else(|| Error::Cuda {
                what: "stream capture".into(),
                msg: "nothing was captured".into(),
            })?;
        g.upload().map_err(cuda("graph upload"))?;
        self.graph = Some(g);
        Ok(())
    }

    fn replay(&mut self) -> Result<()> {
        self.graph
            .as_ref()
            .ok_or_else(|| Error::internal("graph replay before a capture"))?
            .launch()
            .map_err(cuda("graph launch"))
    }
}

impl Drop for CudaIo {
    fn drop(&mut self) {
        // Nothing may still copy from or into the buffers.
        let _ = self.gpu.stream().synchronize();
        self.graph = None;
        for b in &self.buffers {
            // SAFETY: allocated by malloc_sync in `add`, freed once; the stream is idle.
            let _ = unsafe { result::free_sync(b.device) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the engine: copy the input's device buffer into the output's.
    fn compute(io: &CudaIo, input: *mut c_void, output: *mut c_void, n: usize) {
        // SAFETY: both are live device allocations of `n` bytes made by `io`.
        unsafe {
            result::memcpy_dtod_async(input as u64, output as u64, n, io.raw_stream()).unwrap()
        };
    }

    fn fill(io: &mut CudaIo, seed: u8) {
        for (i, v) in io.host_mut("in").unwrap().iter_mut().enumerate() {
            *v = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
    }

    /// Pinned copies in both directions, the four events, blocking and spinning waits, and a
    /// captured graph of the copies that replays with the inputs of the moment.
    #[test]
    fn copies_events_and_graph_capture_on_a_gpu() {
        let Some(gpu) = crate::cuda::testing::gpu() else {
            return;
        };
        let n = 8 << 20;
        let mut io = CudaIo::new(gpu).unwrap();
        let din = io.add("in", n, true).unwrap();
        let dout = io.add("out", n, false).unwrap();
        for (seed, spin) in [(1u8, false), (2, true)] {
            fill(&mut io, seed);
            io.mark(Mark::Start).unwrap();
            io.copy_inputs().unwrap();
            io.mark(Mark::InputsCopied).unwrap();
            compute(&io, din, dout, n);
            io.mark(Mark::Computed).unwrap();
            io.copy_outputs().unwrap();
            io.mark(Mark::OutputsCopied).unwrap();
            io.wait(spin).unwrap();
            let want = io.host_mut("in").unwrap().to_vec();
            assert_eq!(io.host_mut("out").unwrap(), &want[..], "spin {spin}");
            let t = io.timing().unwrap();
            let (h, c, d) = (t.h2d_ms.unwrap(), t.compute_ms.unwrap(), t.d2h_ms.unwrap());
            assert!(h > 0.0 && c > 0.0 && d > 0.0, "{t:?}");
            println!("8 MiB: h2d {h:.3} ms, device copy {c:.3} ms, d2h {d:.3} ms (spin {spin})");
        }
        // Capture the whole inference once, then replay it with new inputs.
        io.begin_capture().unwrap();
        io.copy_inputs().unwrap();
        compute(&io, din, dout, n);
        io.copy_outputs().unwrap();
        io.end_capture().unwrap();
        for seed in [7u8, 9] {
            fill(&mut io, seed);
            io.mark(Mark::Start).unwrap();
            io.replay().unwrap();
            io.mark(Mark::OutputsCopied).unwrap();
            io.wait(false).unwrap();
            let want = io.host_mut("in").unwrap().to_vec();
            assert_eq!(io.host_mut("out").unwrap(), &want[..], "replay {seed}");
            let t = io.timing().unwrap();
            assert!(t.h2d_ms.is_none() && t.d2h_ms.is_none());
            println!("graph replay: {:.3} ms", t.compute_ms.unwrap());
        }
    }
}
