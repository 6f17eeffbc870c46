//! Is TensorRT usable here? Compiled in (feature `tensorrt`) and libnvinfer loadable
//! (checked with dlopen, so this works in every build). Always compiled, for `doctor`.

use crate::error::{Error, Result};
use serde::Serialize;

/// A library found or not, and if not, why and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LibStatus {
    pub available: bool,
    /// Version reported by the library itself.
    pub version: Option<String>,
    /// The file that was loaded, or why nothing could be.
    pub detail: String,
    pub fix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorRtStatus {
    /// Built with the `tensorrt` feature.
    pub compiled_in: bool,
    /// NvInferVersion.h of the headers the shim was compiled against.
    pub compiled_against: Option<String>,
    pub library: LibStatus,
}

/// Names tried for libnvinfer, newest first (JetPack and the x86 packages install these).
const NVINFER: &[&str] = &["libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"];

/// Decode NV_TENSORRT_VERSION as getInferLibVersion returns it.
pub fn decode_version(v: i32) -> String {
    let v = v.max(0) as u32;
    if v >= 10000 {
        format!("{}.{}.{}", v / 10000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v / 100) % 10, v % 100)
    }
}

/// Try each candidate (first in `TENSORRT_LIB_DIR` when set, then the loader's path) and call
/// `symbol` (an `int32_t f(void)` version function).
pub(crate) fn probe_lib(
    names: &[&str],
    dir_var: Option<&str>,
    symbol: &[u8],
) -> std::result::Result<(String, i32), String> {
    let mut tried = Vec::new();
    let dir = dir_var.and_then(crate::env::var);
    for name in names {
        let candidates: Vec<String> = match &dir {
            Some(d) => vec![format!("{d}/{name}"), (*name).to_string()],
            None => vec![(*name).to_string()],
        };
        for c in candidates {
            // SAFETY: loading a vendor library runs its initialisers; these are the libraries
            // trtforge is meant to use, loaded exactly as their own tools do.
            match unsafe { libloading::Library::new(&c) } {
                Ok(lib) => {
                    // SAFETY: the symbol is declared `int32_t f(void)` in the vendor headers.
                    let f = unsafe { lib.get::<unsafe extern "C" fn() -> i32>(symbol) };
                    return match f {
                        // SAFETY: as above; takes no arguments and only returns a number.
                        Ok(f) => Ok((c, unsafe { f() })),
                        Err(e) => Err(format!(
                            "{c} loaded but has no {}: {e}",
                            String::from_utf8_lossy(symbol)
                        )),
                    };
                }
                Err(e) => tried.push(format!("{c} ({e})")),
            }
        }
    }
    Err(format!("tried {}", tried.join("; ")))
}

/// Report TensorRT's availability; never fails.
pub fn probe() -> TensorRtStatus {
    let library = match probe_lib(NVINFER, Some("TENSORRT_LIB_DIR"), b"getInferLibVersion") {
        Ok((path, v)) => LibStatus {
            available: true,
            version: Some(decode_version(v)),
            detail: path,
            fix: None,
        },
        Err(why) => LibStatus {
            available: false,
            version: None,
            detail: why,
            fix: Some(
                "Install TensorRT (JetPack ships it; on x86 the libnvinfer packages or the TensorRT tar) \
                 and put its lib folder on LD_LIBRARY_PATH or set TENSORRT_LIB_DIR"
                    .into(),
            ),
        },
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
