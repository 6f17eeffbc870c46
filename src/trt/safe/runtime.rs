//! The runtime, deserialized engines and execution contexts.

use super::super::result::{check, cstr};
use super::super::sys;
use super::{dtype_name, HostBytes, IoTensor, Logger};
use crate::error::{Error, Result};
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(
    TrtRuntime,
    sys::trtforge_runtime,
    sys::trtforge_runtime_destroy
);

handle!(Engine, sys::trtforge_engine, sys::trtforge_engine_destroy);

handle!(
    ExecutionContext,
    sys::trtforge_context,
    sys::trtforge_context_destroy
);

fn name(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("tensor name {s:?} has a NUL byte")))
}

/// Which shape of an optimization profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileShape {
    Min = 0,
    Opt = 1,
    Max = 2,
}

impl<'l> TrtRuntime<'l> {
    /// A runtime; needs the libraries loaded ([`super::load`]).
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid logger, out-pointer.
            unsafe { sys::trtforge_runtime_create(logger.raw.as_ptr(), &mut raw) },
            "runtime",
        )?;
        TrtRuntime::from_raw(raw, "runtime")
    }

    pub fn nb_dla_cores(&self) -> Result<u32> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_runtime_nb_dla_cores(self.raw.as_ptr(), &mut n) },
            "DLA cores",
        )?;
        Ok(n.max(0) as u32)
    }

    /// The DLA core the next deserialized engines use (IRuntime::setDLACore, which must come
    /// before deserializeCudaEngine for a DLA engine).
    pub fn set_dla_core(&self, core: u32) -> Result<()> {
        check(
            // SAFETY: valid handle; the shim checks the core against getNbDLACores.
            unsafe { sys::trtforge_runtime_set_dla_core(self.raw.as_ptr(), core as i32) },
            "DLA core",
        )
    }

    /// Deserialize engine bytes; check them against their manifest first
    /// (`crate::build::manifest::load_checked_engine`).
    pub fn deserialize(&self, bytes: &[u8]) -> Result<Engine<'_>> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid runtime; TensorRT copies what it needs from `bytes`.
            unsafe {
                sys::trtforge_engine_deserialize(
                    self.raw.as_ptr(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    &mut raw,
                )
            },
            "engine deserialization",
        )?;
        Engine::from_raw(raw, "engine")
    }
}

impl Engine<'_> {
    pub fn io_tensors(&self) -> Result<Vec<IoTensor>> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_engine_nb_io(self.raw.as_ptr(), &mut n) },
            "engine I/O",
        )?;
        (0..n)
            .map(|i| {
                let (mut name, mut inp, mut nb, mut dims, mut dt) =
                    (std::ptr::null(), 0, 0, [0i64; 8], 0);
                check(
                    // SAFETY: valid handle, index in range, out-pointers.
                    unsafe {
                        sys::trtforge_engine_io(
                            self.raw.as_ptr(),
                            i,
                            &mut name,
                            &mut inp,
                            &mut nb,
                            dims.as_mut_ptr(),
                            &mut dt,
                        )
                    },
                    "engine I/O",
                )?;
                Ok(IoTensor {
                    name: cstr(name),
                    is_input: inp == 1,
                    dims: dims[..nb.clamp(0, 8) as usize].to_vec(),
                    dtype: dtype_name(dt),
                })
            })
            .collect()
    }

    pub fn nb_profiles(&self) -> Result<u32> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_engine_nb_profiles(self.raw.as_ptr(), &mut n) },
            "optimization profiles",
        )?;
        Ok(n.max(0) as u32)
    }

    /// A dynamic input's shape in optimization profile `profile`.
    pub fn profile_shape(
        &self,
        input: &str,
        profile: u32,
        which: ProfileShape,
    ) -> Result<Vec<i64>> {
        let c = name(input)?;
        let (mut nb, mut dims) = (0, [0i64; 8]);
        check(
            // SAFETY: valid handle and name, out-pointers.
            unsafe {
                sys::trtforge_engine_profile_shape(
                    self.raw.as_ptr(),
                    c.as_ptr(),
                    profile as i32,
                    which as i32,
                    &mut nb,
                    dims.as_mut_ptr(),
                )
            },
            "profile shape",
        )?;
        Ok(dims[..nb.clamp(0, 8) as usize].to_vec())
    }

    /// The engine inspector's per-layer JSON.
    pub fn layer_info_json(&self) -> Result<String> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_engine_layer_info_json(self.raw.as_ptr(), &mut raw) },
            "engine inspector",
        )?;
        Ok(
            String::from_utf8_lossy(HostBytes::from_raw(raw, "engine inspector")?.as_slice())
                .into_owned(),
        )
    }

    /// An execution context (it allocates the engine's activation memory).
    pub fn context(&self) -> Result<ExecutionContext<'_>> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_context_create(self.raw.as_ptr(), &mut raw) },
            "execution context",
        )?;
        ExecutionContext::from_raw(raw, "execution context")
    }
}

impl ExecutionContext<'_> {
    pub fn set_input_shape(&self, input: &str, dims: &[i64]) -> Result<()> {
        let c = name(input)?;
        check(
            // SAFETY: valid handle and name, `dims` alive for the call.
            unsafe {
                sys::trtforge_context_set_input_shape(
                    self.raw.as_ptr(),
                    c.as_ptr(),
                    dims.len() as i32,
                    dims.as_ptr(),
                )
            },
            "input shape",
        )
    }

    /// A tensor's shape given the input shapes set so far.
    pub fn tensor_shape(&self, tensor: &str) -> Result<Vec<i64>> {
        let c = name(tensor)?;
        let (mut nb, mut dims) = (0, [0i64; 8]);
        check(
            // SAFETY: valid handle and name, out-pointers.
            unsafe {
                sys::trtforge_context_tensor_shape(
                    self.raw.as_ptr(),
                    c.as_ptr(),
                    &mut nb,
                    dims.as_mut_ptr(),
                )
            },
            "tensor shape",
        )?;
        Ok(dims[..nb.clamp(0, 8) as usize].to_vec())
    }

    /// Bind `tensor` to device memory at `address`.
    ///
    /// # Safety
    /// `address` must be device memory holding the tensor's full volume in its type, alive
    /// (and not freed or reused for anything else) until every enqueue that reads it is done.
    pub unsafe fn set_tensor_address(&self, tensor: &str, address: *mut c_void) -> Result<()> {
        let c = name(tensor)?;
        check(
            // SAFETY: valid handle and name; the caller guarantees the memory.
            unsafe {
                sys::trtforge_context_set_tensor_address(self.raw.as_ptr(), c.as_ptr(), address)
            },
            "tensor address",
        )
    }

    /// Enqueue one inference on `stream` (enqueueV3).
    ///
    /// # Safety
    /// `stream` must be a live CUDA stream of the context's device, and every bound address
    /// must stay valid until the work on `stream` has finished.
    pub unsafe fn enqueue(&self, stream: *mut c_void) -> Result<()> {
        check(
            // SAFETY: valid handle; the caller guarantees the stream and memory.
            unsafe { sys::trtforge_context_enqueue(self.raw.as_ptr(), stream) },
            "enqueue",
        )
    }
}
