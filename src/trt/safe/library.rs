//! Loading TensorRT's libraries (once per process, as trtexec does) and checking that the
//! loaded library is one the compiled shim can drive.

use super::super::result::check;
use super::super::sys;
use super::super::TrtVersion;
use super::Logger;
use crate::error::{Error, Result};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where to load libnvinfer, libnvonnxparser and libnvinfer_plugin from. `None`: the
/// loader's search path, `lib<name>.so.<major of the headers>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Libraries {
    pub nvinfer: Option<PathBuf>,
    pub onnxparser: Option<PathBuf>,
    pub plugins: Option<PathBuf>,
}

impl Libraries {
    /// `TENSORRT_LIB_DIR/lib<name>.so.<major>` when that variable is set, else the loader's path.
    pub fn from_env() -> Self {
        let Some(dir) = crate::env::var("TENSORRT_LIB_DIR") else {
            return Libraries::default();
        };
        let major = header_version().major;
        let at = |name: &str| Some(PathBuf::from(&dir).join(format!("lib{name}.so.{major}")));
        Libraries {
            nvinfer: at("nvinfer"),
            onnxparser: at("nvonnxparser"),
            plugins: at("nvinfer_plugin"),
        }
    }
}

/// NvInferVersion.h of the headers the shim was compiled against.
pub fn header_version() -> TrtVersion {
    // SAFETY: a plain function returning a number.
    let v = unsafe { sys::trtforge_header_version() };
    TrtVersion::from_number(v).expect("the shim's own NV_TENSORRT_VERSION decodes")
}

/// getInferLibVersion of the loaded library; `None` before a successful [`load`].
pub fn library_version() -> Option<TrtVersion> {
    // SAFETY: a plain function returning a number (-1 when nothing is loaded).
    TrtVersion::from_number(unsafe { sys::trtforge_library_version() })
}

/// Load the libraries and register the standard plugins. The first outcome is every later
/// call's (the libraries stay loaded for the process). Refuses a library of another major
/// version than the headers, or an older minor.
pub fn load(libs: &Libraries) -> Result<TrtVersion> {
    static OUTCOME: OnceLock<std::result::Result<TrtVersion, (String, String)>> = OnceLock::new();
    let outcome = OUTCOME.get_or_init(|| {
        load_once(libs).map_err(|e| match e {
            Error::Unavailable { why, fix, .. } => (why, fix),
            other => (other.to_string(), super::super::probe::INSTALL_FIX.into()),
        })
    });
    outcome.clone().map_err(|(why, fix)| Error::Unavailable {
        what: "TensorRT".into(),
        why,
        fix,
    })
}

fn load_once(libs: &Libraries) -> Result<TrtVersion> {
    // The plugins keep this logger for the whole process.
    let logger: &'static Logger = Box::leak(Box::new(Logger::to_log()?));
    let c = |p: &Option<PathBuf>| -> Result<Option<CString>> {
        p.as_ref()
            .map(|p| {
                CString::new(p.to_string_lossy().as_bytes())
                    .map_err(|_| Error::Invalid(format!("{}: path has a NUL byte", p.display())))
            })
            .transpose()
    };
    let (a, b, p) = (c(&libs.nvinfer)?, c(&libs.onnxparser)?, c(&libs.plugins)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    check(
        // SAFETY: NUL-terminated strings (or null) alive for the call; the logger is 'static.
        unsafe { sys::trtforge_library_load(ptr(&a), ptr(&b), ptr(&p), logger.raw.as_ptr()) },
        "library load",
    )?;
    let lib = library_version().ok_or_else(|| Error::Tensorrt {
        what: "library load".into(),
        msg: "getInferLibVersion returned no version".into(),
    })?;
    header_version()
        .can_drive(lib)
        .map_err(|why| Error::Unavailable {
            what: "TensorRT".into(),
            why,
            fix: "Build trtforge against the headers of the TensorRT it runs with".into(),
        })?;
    Ok(lib)
}
