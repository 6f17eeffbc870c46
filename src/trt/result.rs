//! The thin, fallible layer over the raw bindings: every shim call's status becomes a
//! `Result`, with the thread-local last error as its message.

use super::sys;
use crate::error::{Error, Result};
use std::ffi::{c_char, CStr};

pub(crate) fn last_error() -> String {
    // SAFETY: returns a NUL-terminated thread-local string valid until the next shim call.
    let p = unsafe { sys::trtforge_last_error() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, read before any other shim call on this thread.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

pub(crate) fn check(status: i32, what: &str) -> Result<()> {
    if status == sys::TRTFORGE_OK as i32 {
        return Ok(());
    }
    let msg = last_error();
    if status == sys::TRTFORGE_UNSUPPORTED as i32 {
        return Err(Error::Unavailable {
            what: what.to_string(),
            why: msg,
            fix: "Use a TensorRT version that has it, or drop the recipe field".into(),
        });
    }
    if status == sys::TRTFORGE_UNAVAILABLE as i32 {
        return Err(Error::Unavailable {
            what: "TensorRT".into(),
            why: msg,
            fix: super::probe::INSTALL_FIX.into(),
        });
    }
    Err(Error::Tensorrt {
        what: what.to_string(),
        msg: if msg.is_empty() {
            "failed without a message (see TensorRT's log above; run with -vv)".into()
        } else {
            msg
        },
    })
}

pub(crate) fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the shim returns NUL-terminated strings owned by a live TensorRT object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
