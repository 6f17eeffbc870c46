//! Owning CUDA types over cudarc's safe API.

use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DriverError};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

fn cuda_err(what: &str) -> impl Fn(DriverError) -> Error + '_ {
    move |e| Error::Cuda {
        what: what.to_string(),
        msg: e.to_string(),
    }
}

/// One GPU: its primary context and the stream trtforge issues work on.
#[derive(Clone)]
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl Gpu {
    /// Open GPU `ordinal`. Checks for the driver first (cudarc would panic without it).
    pub fn open(ordinal: usize) -> Result<Self> {
        let status = super::probe();
        if !status.driver.available {
            return Err(Error::Unavailable {
                what: "the CUDA driver".into(),
                why: status.driver.detail,
                fix: status.driver.fix.unwrap_or_default(),
            });
        }
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| Error::Unavailable {
                what: "the CUDA driver".into(),
                why: "cudarc could not load libcuda".into(),
                fix: "Install the NVIDIA driver".into(),
            })?
            .map_err(|e| Error::Unavailable {
                what: format!("CUDA device {ordinal}"),
                why: e.to_string(),
                fix: "Check `nvidia-smi` (or tegrastats on a Jetson) and CUDA_VISIBLE_DEVICES"
                    .into(),
            })?;
        let stream = ctx.new_stream().map_err(cuda_err("stream creation"))?;
        Ok(Gpu { ctx, stream })
    }

    pub fn name(&self) -> Result<String> {
        self.ctx.name().map_err(cuda_err("device name"))
    }

    /// `(major, minor)`, (8, 7) on Orin.
    pub fn compute_capability(&self) -> Result<(i32, i32)> {
        self.ctx
            .compute_capability()
            .map_err(cuda_err("compute capability"))
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The raw `CUstream`, for TensorRT's enqueue.
    pub fn raw_stream(&self) -> *mut c_void {
        self.stream.cu_stream().cast()
    }

    /// Copy `data` to a new device buffer.
    pub fn upload(&self, data: &[f32]) -> Result<CudaSlice<f32>> {
        self.stream
            .clone_htod(data)
            .map_err(cuda_err("host-to-device copy"))
    }

    /// Copy a device buffer back to the host (synchronises the stream).
    pub fn download(&self, buf: &CudaSlice<f32>) -> Result<Vec<f32>> {
        self.stream
            .clone_dtoh(buf)
            .map_err(cuda_err("device-to-host copy"))
    }

    /// Milliseconds between two events recorded around `work` on this GPU's stream.
    pub fn time_ms(&self, work: impl FnOnce(&Gpu) -> Result<()>) -> Result<f32> {
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self
            .stream
            .record_event(flags)
            .map_err(cuda_err("event record"))?;
        work(self)?;
        let end = self
            .stream
            .record_event(flags)
            .map_err(cuda_err("event record"))?;
        end.synchronize().map_err(cuda_err("event synchronize"))?;
        start
            .elapsed_ms(&end)
            .map_err(cuda_err("event elapsed time"))
    }
}

/// Device buffers for calibration batches, one per input name, allocated at the first batch
/// and reused (TensorRT may keep the addresses between getBatch calls). They hold bytes: the
/// caller encodes each input in the type the network reads (float32 or float16).
pub struct DeviceBindings {
    gpu: Gpu,
    buffers: HashMap<String, CudaSlice<u8>>,
}

impl DeviceBindings {
    pub fn new(gpu: Gpu) -> Self {
        DeviceBindings {
            gpu,
            buffers: HashMap::new(),
        }
    }

    /// The current contents of `name`'s buffer (for checks).
    pub fn read_back(&self, name: &str) -> Result<Vec<u8>> {
        let buf = self
            .buffers
            .get(name)
            .ok_or_else(|| Error::Contract(format!("no device buffer for input '{name}'")))?;
        self.gpu
            .stream
            .clone_dtoh(buf)
            .map_err(cuda_err("device-to-host copy"))
    }
}

impl DeviceBindings {
    /// Copy `data` into the buffer kept for `name` (allocated on first use, then reused, so
    /// the address stays the same) and return its device address. The copy is complete when
    /// this returns: the reader (TensorRT) uses its own stream.
    pub fn upload(&mut self, name: &str, data: &[u8]) -> Result<*mut c_void> {
        let stream = self.gpu.stream.clone();
        if !self.buffers.contains_key(name) {
            let buf = stream
                .alloc_zeros::<u8>(data.len())
                .map_err(cuda_err("allocation"))?;
            self.buffers.insert(name.to_string(), buf);
        }
        let buf = self.buffers.get_mut(name).expect("inserted above");
        if buf.len() != data.len() {
            return Err(Error::Contract(format!(
                "calibration input '{name}' changed size from {} to {} values between batches",
                buf.len(),
                data.len()
            )));
        }
        stream
            .memcpy_htod(data, buf)
            .map_err(cuda_err("host-to-device copy"))?;
        // TensorRT reads the buffer on its own stream right after getBatch returns.
        stream
            .synchronize()
            .map_err(cuda_err("stream synchronize"))?;
        let (ptr, _sync) = buf.device_ptr(&stream);
        Ok(ptr as usize as *mut c_void)
    }
}

/// Test support: a GPU when there is one, and a raw device read.
#[cfg(test)]
pub(crate) mod testing {
    use super::Gpu;

    /// Copy `n` floats from device address `ptr` to the host.
    ///
    /// # Safety
    /// `ptr` must be a live device allocation of at least `n` floats in `gpu`'s context.
    pub unsafe fn read_device(gpu: &Gpu, ptr: *mut std::ffi::c_void, n: usize) -> Vec<f32> {
        let mut host = vec![0f32; n];
        gpu.ctx.bind_to_thread().unwrap();
        // SAFETY: the caller guarantees `ptr` holds `n` floats in this context.
        unsafe { cudarc::driver::result::memcpy_dtoh_sync(&mut host, ptr as usize as u64) }
            .unwrap();
        host
    }

    /// A GPU, or `None` with a printed reason (a failure when TRTFORGE_REQUIRE_GPU is set).
    pub fn gpu() -> Option<Gpu> {
        match Gpu::open(0) {
            Ok(g) => Some(g),
            Err(e) if crate::env::var("TRTFORGE_REQUIRE_GPU").is_some() => {
                panic!("TRTFORGE_REQUIRE_GPU is set but: {e}")
            }
            Err(e) => {
                eprintln!("skipping CUDA test: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::gpu;
    use super::*;

    #[test]
    fn device_round_trip_and_event_timing() {
        let Some(g) = gpu() else { return };
        let (maj, min) = g.compute_capability().unwrap();
        let n = 3 * 416 * 416;
        let host: Vec<f32> = (0..n).map(|i| (i % 251) as f32 * 0.25).collect();
        let mut dev = None;
        let ms = g
            .time_ms(|g| {
                dev = Some(g.upload(&host)?);
                Ok(())
            })
            .unwrap();
        let back = g.download(dev.as_ref().unwrap()).unwrap();
        assert_eq!(back, host);
        assert!(ms >= 0.0);
        println!(
            "GPU {} (cc {maj}.{min}): H2D of {} bytes took {ms:.3} ms ({:.2} GB/s)",
            g.name().unwrap(),
            n * 4,
            (n * 4) as f64 / (ms as f64 * 1e-3) / 1e9
        );
    }

    #[test]
    fn device_bindings_keep_addresses_and_hold_the_batch() {
        let Some(g) = gpu() else { return };
        let mut b = DeviceBindings::new(g);
        let p1 = b.upload("images", &[1, 2, 3]).unwrap();
        let p2 = b.upload("images", &[4, 5, 6]).unwrap();
        assert_eq!(p1, p2, "the buffer is reused");
        assert!(!p1.is_null());
        assert_eq!(b.read_back("images").unwrap(), vec![4, 5, 6]);
        let e = b.upload("images", &[1]).unwrap_err().to_string();
        assert!(e.contains("changed size"), "{e}");
    }

    /// Work queued on one stream runs in order: H2D, D2D, memset, then D2H sees each result.
    #[test]
    fn stream_orders_copies_and_memset() {
        let Some(g) = gpu() else { return };
        let s = g.stream();
        let host: Vec<f32> = (0..1 << 20).map(|i| i as f32).collect();
        let mut a = s.clone_htod(&host).unwrap();
        let mut b = s.alloc_zeros::<f32>(host.len()).unwrap();
        s.memcpy_dtod(&a, &mut b).unwrap();
        s.memset_zeros(&mut a).unwrap();
        assert_eq!(g.download(&b).unwrap(), host);
        assert!(g.download(&a).unwrap().iter().all(|v| *v == 0.0));
    }
}
