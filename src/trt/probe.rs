//! Is TensorRT usable here? Compiled in (feature `tensorrt`) and libnvinfer loadable
//! (checked with dlopen, so this works in every build). Always compiled, for `doctor`.

use crate::dylib::{load_version, LibStatus, VersionCall};
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorRtStatus {
    /// Built with the `tensorrt` feature.
    pub compiled_in: bool,
    /// NvInferVersion.h of the headers the shim was compiled against.
    pub compiled_against: Option<String>,
    pub library: LibStatus,
}

/// Names tried for libnvinfer, newest first (JetPack and the x86 packages install these).
const NVINFER: &[&str] = &[
    "libnvinfer.so.11",
    "libnvinfer.so.10",
    "libnvinfer.so.8",
    "libnvinfer.so",
];

/// How to get TensorRT's libraries.
pub const INSTALL_FIX: &str =
    "Install TensorRT (JetPack ships it; on x86 the libnvinfer packages or the TensorRT tar) \
     and put its lib folder on LD_LIBRARY_PATH or set TENSORRT_LIB_DIR";

/// The major version the shim was compiled against, when it was.
fn compiled_major() -> Option<u32> {
    option_env!("TRTFORGE_TRT_HEADER_VERSION")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The names to try: the compiled-in major first (the shim's vtables are that major's).
fn nvinfer_names() -> Vec<String> {
    let mut names: Vec<String> = NVINFER.iter().map(|s| s.to_string()).collect();
    if let Some(m) = compiled_major() {
        let own = format!("libnvinfer.so.{m}");
        names.retain(|n| *n != own);
        names.insert(0, own);
    }
    names
}

/// Decode NV_TENSORRT_VERSION as getInferLibVersion returns it.
pub fn decode_version(v: i32) -> String {
    let v = v.max(0) as u32;
    if v >= 10000 {
        format!("{}.{}.{}", v / 10000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v / 100) % 10, v % 100)
    }
}

/// Report TensorRT's availability; never fails.
pub fn probe() -> TensorRtStatus {
    let names = nvinfer_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let library = match load_version(
        &names,
        Some("TENSORRT_LIB_DIR"),
        b"getInferLibVersion",
        VersionCall::Returned,
    ) {
        Ok((path, v)) => LibStatus::found(path, decode_version(v)),
        Err(why) => LibStatus::missing(why, INSTALL_FIX),
    };
    TensorRtStatus {
        compiled_in: cfg!(feature = "tensorrt"),
        compiled_against: option_env!("TRTFORGE_TRT_HEADER_VERSION").map(str::to_string),
        library,
    }
}

impl TensorRtStatus {
    /// `Ok` when engines can be built here, else [`Error::Unavailable`] saying what to do.
    pub fn require(&self) -> Result<()> {
        if !self.compiled_in {
            return Err(Error::Unavailable {
                what: "TensorRT".into(),
                why: "this trtforge was built without the `tensorrt` feature".into(),
                fix: "On a machine with TensorRT, rebuild with `cargo build --release --features tensorrt` \
                      (set TENSORRT_ROOT or TENSORRT_INCLUDE_DIR/TENSORRT_LIB_DIR if it is not found)"
                    .into(),
            });
        }
        if !self.library.available {
            return Err(Error::Unavailable {
                what: "libnvinfer".into(),
                why: self.library.detail.clone(),
                fix: self.library.fix.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_like_nv_tensorrt_version() {
        assert_eq!(decode_version(8502), "8.5.2");
        assert_eq!(decode_version(8601), "8.6.1");
        assert_eq!(decode_version(100300), "10.3.0");
        assert_eq!(decode_version(110012), "11.0.12");
    }

    #[test]
    fn probe_reports_and_require_explains() {
        let s = probe();
        assert_eq!(s.compiled_in, cfg!(feature = "tensorrt"));
        if !s.library.available {
            assert!(
                s.library.detail.contains("libnvinfer"),
                "{}",
                s.library.detail
            );
            let e = s.require().unwrap_err().to_string();
            assert!(e.contains("not available"), "{e}");
        }
        if !s.compiled_in {
            assert!(s
                .require()
                .unwrap_err()
                .to_string()
                .contains("--features tensorrt"));
        }
    }
}
