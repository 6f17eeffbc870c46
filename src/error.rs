//! The library's one error type. Every message names the file, tensor or recipe field
//! involved and says what to do about it. Variants say whose fault it is: the input
//! (`Io`, `Onnx`, `Recipe`, `Image`, `Contract`, `Invalid`), a stale artifact (`Stale`), the
//! machine (`Unavailable`), a library underneath (`Ort`, `Tensorrt`, `Cuda`), a callback run
//! by TensorRT (`Callback`, `CallbackPanic`), or trtforge itself (`Internal`).

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about a stale artifact; the command that was run decides the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleFix {
    /// `trtforge calibrate` (or quantize) refused a calibration cache.
    Recalibrate,
    /// `trtforge build` refused a calibration cache.
    RecalibrateInBuild,
    /// An engine whose bytes or manifest no longer match.
    Rebuild,
    /// An engine made for another TensorRT version: rebuild on this machine.
    RebuildHere,
    /// An engine made for another GPU: rebuild on the target device.
    RebuildOnTarget,
}

impl fmt::Display for StaleFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaleFix::Recalibrate => "rerun with --force to recalibrate",
            StaleFix::RecalibrateInBuild => {
                "rerun `trtforge build` with --force-calibration (or `trtforge calibrate --force`) to recalibrate"
            }
            StaleFix::Rebuild => "rebuild it with `trtforge build`",
            StaleFix::RebuildHere => "rebuild it here with `trtforge build`",
            StaleFix::RebuildOnTarget => "rebuild it on the target with `trtforge build`",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model file that cannot be parsed or violates an ONNX rule.
    #[error("{}: {msg}", path.display())]
    Onnx { path: PathBuf, msg: String },

    /// A recipe that does not parse or does not validate. `location` is `file:line:column`
    /// when known, `field` the dotted path of the offending field.
    #[error("{location}: {field}: {msg}")]
    Recipe {
        location: String,
        field: String,
        msg: String,
    },

    /// An image that cannot be read or decoded.
    #[error("{}: {msg}", path.display())]
    Image { path: PathBuf, msg: String },

    /// A tensor name, shape or dtype that does not fit the model.
    #[error("{0}")]
    Contract(String),

    /// ONNX Runtime failed (session creation or a run); `context` says on what.
    #[error("ONNX Runtime: {context}: {source}")]
    Ort {
        context: String,
        #[source]
        source: ort::Error,
    },

    /// A TensorRT call failed; `msg` is TensorRT's own message.
    #[error("TensorRT {what}: {msg}")]
    Tensorrt { what: String, msg: String },

    /// A CUDA driver call failed.
    #[error("CUDA {what} failed: {msg}")]
    Cuda { what: String, msg: String },

    /// A required library or tool is absent. `fix` says how to get it.
    #[error("{what} is not available: {why}. {fix}")]
    Unavailable {
        what: String,
        why: String,
        fix: String,
    },

    /// A cached artifact made from other inputs than the current ones.
    #[error("{}: stale: {why}; {fix}", path.display())]
    Stale {
        path: PathBuf,
        why: String,
        fix: StaleFix,
    },

    /// An error raised inside a callback TensorRT made (e.g. a calibration batch), returned
    /// once TensorRT gave control back. `at` names the callback.
    #[error("{at} failed: {source}")]
    Callback {
        at: String,
        #[source]
        source: Box<Error>,
    },

    /// A panic caught inside a callback TensorRT made.
    #[error("{at} panicked: {msg} (a bug in trtforge or the batch source; calibration stopped)")]
    CallbackPanic { at: String, msg: String },

    /// A bug or a broken invariant in trtforge itself; please report it.
    #[error("internal error: {0}")]
    Internal(String),

    /// Anything else that is the caller's fault (a flag, a data file), with the fix in the
    /// message.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn ort(context: impl Into<String>, source: impl Into<ort::Error>) -> Self {
        Error::Ort {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// The same error with another stale-artifact fix (a no-op for other errors).
    pub fn with_stale_fix(self, fix: StaleFix) -> Self {
        match self {
            Error::Stale { path, why, .. } => Error::Stale { path, why, fix },
            other => other,
        }
    }
}

/// Read a whole regular file (at most 8 GiB), naming it in the error; callers that know the
/// kind use `util::input::read` with its tighter limit.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    crate::util::input::read(path, crate::util::input::BINARY)
}

/// Pretty JSON of plain data (serialization of our own report types cannot fail).
pub fn to_json_pretty<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(Error::internal)
}
