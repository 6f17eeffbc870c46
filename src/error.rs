//! The library's one error type. Every message names the file, tensor or recipe field
//! involved and says what to do about it.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// ONNX Runtime failed (session creation or a run).
    #[error("ONNX Runtime: {0}")]
    Ort(String),

    /// A required library or tool is absent. `fix` says how to get it.
    #[error("{what} is not available: {why}. {fix}")]
    Unavailable {
        what: String,
        why: String,
        fix: String,
    },

    /// A cached artifact made from other inputs than the current ones.
    #[error("{}: stale: {msg}", path.display())]
    Stale { path: PathBuf, msg: String },

    /// Anything else that is the caller's fault, with the fix in the message.
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
}

/// Read a whole file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
