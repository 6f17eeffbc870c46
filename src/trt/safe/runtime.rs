//! The runtime and deserialized engines.

use super::super::result::{check, cstr};
use super::super::sys;
use super::{dtype_name, HostBytes, IoTensor, Logger};
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

handle!(
    TrtRuntime,
    sys::trtforge_runtime,
    sys::trtforge_runtime_destroy
);

handle!(Engine, sys::trtforge_engine, sys::trtforge_engine_destroy);

impl<'l> TrtRuntime<'l> {
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid logger, out-pointer.
            unsafe { sys::trtforge_runtime_create(logger.raw.as_ptr(), &mut raw) },
            "runtime",
        )?;
        TrtRuntime::from_raw(raw, "runtime")
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
}
