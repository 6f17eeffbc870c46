//! The logger TensorRT reports through, forwarding to a Rust closure.

use super::super::result::{check, cstr};
use super::super::sys;
use crate::error::{Error, Result};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// TensorRT's log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    InternalError = 0,
    Error = 1,
    Warning = 2,
    Info = 3,
    Verbose = 4,
}

type LogFn = Box<dyn Fn(Severity, &str) + Send + Sync>;

/// Forwards every TensorRT message with its severity to a Rust closure.
pub struct Logger {
    pub(super) raw: NonNull<sys::trtforge_logger>,
    _f: Box<LogFn>,
}

unsafe extern "C" fn log_trampoline(user: *mut c_void, severity: i32, msg: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `user` is the `Box<LogFn>` owned by the Logger, alive while TensorRT logs.
        let f = unsafe { &*user.cast::<LogFn>() };
        let sev = match severity {
            0 => Severity::InternalError,
            1 => Severity::Error,
            2 => Severity::Warning,
            3 => Severity::Info,
            _ => Severity::Verbose,
        };
        f(sev, &cstr(msg));
    }));
}

impl Logger {
    pub fn new(f: impl Fn(Severity, &str) + Send + Sync + 'static) -> Result<Self> {
        let f: Box<LogFn> = Box::new(Box::new(f));
        let mut raw = std::ptr::null_mut();
        let user = (&*f as *const LogFn).cast_mut().cast();
        check(
            // SAFETY: `user` stays valid as long as the Logger (it owns the box).
            unsafe { sys::trtforge_logger_create(Some(log_trampoline), user, &mut raw) },
            "logger",
        )?;
        Ok(Logger {
            raw: NonNull::new(raw).ok_or_else(|| Error::Tensorrt {
                what: "logger".into(),
                msg: "returned a null handle".into(),
            })?,
            _f: f,
        })
    }

    /// A logger forwarding to the `log` crate (TensorRT's info goes to debug).
    pub fn to_log() -> Result<Self> {
        Logger::new(|sev, msg| match sev {
            Severity::InternalError | Severity::Error => log::error!("TensorRT: {msg}"),
            Severity::Warning => log::warn!("TensorRT: {msg}"),
            Severity::Info => log::debug!("TensorRT: {msg}"),
            Severity::Verbose => log::trace!("TensorRT: {msg}"),
        })
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        // SAFETY: created by trtforge_logger_create, destroyed once.
        unsafe { sys::trtforge_logger_destroy(self.raw.as_ptr()) }
    }
}
