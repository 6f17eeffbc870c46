//! Finding vendor libraries at run time (dlopen), for the availability probes of CUDA and
//! TensorRT: which file loaded, what version it reports, and how to fix a missing one.
//! Works in every build, with or without the `cuda`/`tensorrt` features.

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

impl LibStatus {
    pub fn found(path: impl Into<String>, version: String) -> Self {
        LibStatus {
            available: true,
            version: Some(version),
            detail: path.into(),
            fix: None,
        }
    }

    pub fn missing(why: impl Into<String>, fix: &str) -> Self {
        LibStatus {
            available: false,
            version: None,
            detail: why.into(),
            fix: Some(fix.to_string()),
        }
    }
}

/// How a library reports its version.
#[derive(Debug, Clone, Copy)]
pub enum VersionCall {
    /// `int32_t f(void)` returning the version (TensorRT's getInferLibVersion).
    Returned,
    /// `int f(int*)` writing the version, returning 0 on success (cuDriverGetVersion).
    OutParam,
}

/// Load the first of `names` that opens (first from the folder in the environment variable
/// `dir_var` when it is set, then from the loader's path) and call its version function
/// `symbol`. `Ok((file, version))`, or `Err` listing everything tried.
pub fn load_version(
    names: &[&str],
    dir_var: Option<&str>,
    symbol: &[u8],
    call: VersionCall,
) -> Result<(String, i32), String> {
    let mut tried = Vec::new();
    let dir = dir_var.and_then(crate::env::var);
    let sym = String::from_utf8_lossy(symbol);
    for name in names {
        let candidates: Vec<String> = match &dir {
            Some(d) => vec![format!("{d}/{name}"), (*name).to_string()],
            None => vec![(*name).to_string()],
        };
        for c in candidates {
            // SAFETY: loading a vendor library runs its initialisers; these are the libraries
            // trtforge is meant to use, loaded exactly as their own tools do.
            let lib = match unsafe { libloading::Library::new(&c) } {
                Ok(lib) => lib,
                Err(e) => {
                    tried.push(format!("{c} ({e})"));
                    continue;
                }
            };
            let v = match call {
                VersionCall::Returned => {
                    // SAFETY: the vendor headers declare the symbol `int32_t f(void)`.
                    let f = unsafe { lib.get::<unsafe extern "C" fn() -> i32>(symbol) };
                    // SAFETY: as above; it takes no arguments and only returns a number.
                    f.map(|f| Ok(unsafe { f() }))
                }
                VersionCall::OutParam => {
                    // SAFETY: the vendor headers declare the symbol `int f(int*)`.
                    let f = unsafe { lib.get::<unsafe extern "C" fn(*mut i32) -> i32>(symbol) };
                    f.map(|f| {
                        let mut v = 0i32;
                        // SAFETY: `v` is a valid out-parameter.
                        match unsafe { f(&mut v) } {
                            0 => Ok(v),
                            rc => Err(format!("{c} loaded but {sym} returned error {rc}")),
                        }
                    })
                }
            };
            return match v {
                Ok(r) => r.map(|v| (c, v)),
                Err(e) => Err(format!("{c} loaded but has no {sym}: {e}")),
            };
        }
    }
    Err(format!("tried {}", tried.join("; ")))
}
