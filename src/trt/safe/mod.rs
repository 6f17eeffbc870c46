//! Safe owning handles over the `sys/` shim (feature `tensorrt`), one file per TensorRT
//! object, as cudarc splits its safe layer.
//!
//! Handles are `NonNull` newtypes destroyed in `Drop` (which never panics), not `Clone`;
//! children borrow their parents (`Network<'b>` borrows its `Builder`), so the borrow checker
//! keeps parents alive. Every call checks the status ([`super::result`]) and turns the
//! thread-local last error into an [`Error`].

use super::sys;
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// An owning handle: `$name<'p>` borrows its parent for `'p` and destroys itself on drop.
macro_rules! handle {
    ($name:ident, $raw:ty, $destroy:path) => {
        pub struct $name<'p> {
            pub(super) raw: NonNull<$raw>,
            _parent: PhantomData<&'p ()>,
        }
        impl Drop for $name<'_> {
            fn drop(&mut self) {
                // SAFETY: created by the matching create call and destroyed exactly once.
                unsafe { $destroy(self.raw.as_ptr()) }
            }
        }
        impl $name<'_> {
            pub(super) fn from_raw(raw: *mut $raw, what: &str) -> Result<Self> {
                Ok($name {
                    raw: NonNull::new(raw).ok_or_else(|| Error::Tensorrt {
                        what: what.to_string(),
                        msg: "returned a null handle".into(),
                    })?,
                    _parent: PhantomData,
                })
            }
        }
    };
}

mod builder;
mod calibrator;
mod config;
mod logger;
mod network;
mod runtime;

pub use builder::{Builder, InputProfile};
pub use calibrator::{CalibrationSession, Calibrator};
pub use config::{BuildPrecision, Config, Constraints};
pub use logger::{Logger, Severity};
pub use network::{Network, Parser, ParserError};
pub use runtime::{Engine, TrtRuntime};

/// Header and library versions as `major.minor.patch`.
pub fn versions() -> (String, String) {
    // SAFETY: plain functions returning numbers.
    let (h, l) = unsafe {
        (
            sys::trtforge_header_version(),
            sys::trtforge_library_version(),
        )
    };
    (
        super::probe::decode_version(h),
        super::probe::decode_version(l),
    )
}

handle!(HostBytes, sys::trtforge_bytes, sys::trtforge_bytes_destroy);

impl HostBytes<'_> {
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: data/size describe a buffer owned by this handle.
        unsafe {
            let p = sys::trtforge_bytes_data(self.raw.as_ptr());
            let n = sys::trtforge_bytes_size(self.raw.as_ptr());
            if p.is_null() || n == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p.cast(), n)
            }
        }
    }
}

/// A tensor's name, dims (-1 = dynamic) and TensorRT DataType.
#[derive(Debug, Clone, PartialEq)]
pub struct IoTensor {
    pub name: String,
    pub is_input: bool,
    pub dims: Vec<i64>,
    pub dtype: &'static str,
}

pub(super) fn dtype_name(d: i32) -> &'static str {
    match d {
        0 => "float32",
        1 => "float16",
        2 => "int8",
        3 => "int32",
        4 => "bool",
        5 => "uint8",
        6 => "fp8",
        7 => "bfloat16",
        8 => "int64",
        9 => "int4",
        _ => "unknown",
    }
}

/// `nvinfer1::DataType::kHALF` (the same number in TensorRT 8.5 to 10.x).
pub const DATA_TYPE_HALF: i32 = 1;
