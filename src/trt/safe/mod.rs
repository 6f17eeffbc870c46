//! Safe owning handles over the `sys/` shim (feature `tensorrt`), one file per TensorRT
//! object, as cudarc splits its safe layer.
//!
//! Handles are `NonNull` newtypes destroyed in `Drop` (which never panics), not `Clone`;
//! children borrow their parents (`Network<'b>` borrows its `Builder`), so the borrow checker
//! keeps parents alive; a network owns the ONNX parser that filled it. Every call checks the
//! status (`super::result`) and turns the thread-local last error into an [`Error`]. Nothing
//! works before [`load`].

pub(super) use super::options::{dtype_name, DataType, IoTensor};
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
mod library;
mod logger;
mod network;
mod runtime;

pub use builder::{Builder, Profile};
pub use calibrator::{CalibrationSession, Calibrator};
pub use config::{unsupported_field, Config};
pub use library::{header_version, library_version, load, Libraries};
pub use logger::{Logger, Severity};
pub use network::{Network, ParserError};
pub use runtime::{Engine, ExecutionContext, ProfileShape, TrtRuntime};

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
