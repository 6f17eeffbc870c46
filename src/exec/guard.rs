//! The boundary between our code and the `ort` crate's panics.
//!
//! `ort` 2.0.0-rc.15 panics ("infallible") when ONNX Runtime describes a type it cannot
//! express, for example an output whose inferred dimension is negative (a Conv kernel larger
//! than its input). A hostile or broken model must be a one-line error, not a crash: calls
//! into `ort` that can describe types run inside [`guarded`], which turns such a panic into an
//! ONNX error naming the model, and keeps the default panic message off stderr while it does
//! (the filter hook is installed once, by [`install_panic_filter`], from the binary's main).

use crate::error::{Error, Result};
use std::cell::Cell;
use std::path::Path;

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Install a panic hook that stays silent for panics [`guarded`] will report itself.
pub fn install_panic_filter() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(Cell::get) {
            default(info);
        }
    }));
}

/// Run `f`; a panic inside it becomes an ONNX error about `model`.
pub fn guarded<T>(model: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let was = GUARDED.with(|g| g.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        // ort's panics carry `Error { code: .., message: "..", ptr: 0x.. }`: keep the message.
        let msg = match msg.split_once("message: \"") {
            Some((_, rest)) => rest.split('"').next().unwrap_or(rest).to_string(),
            None => msg,
        };
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(Error::Onnx {
            path: model.to_path_buf(),
            msg: format!("ONNX Runtime cannot describe this model ({msg}); check its shapes (for example a kernel larger than its input) and re-export it"),
        })
    })
}
