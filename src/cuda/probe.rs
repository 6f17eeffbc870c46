//! CUDA driver and runtime availability through dlopen, so `doctor` works in every build.

use crate::trt::probe::LibStatus;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CudaStatus {
    /// Built with the `cuda` feature (device buffers, streams, events).
    pub compiled_in: bool,
    /// libcuda.so (the driver), `cuDriverGetVersion`.
    pub driver: LibStatus,
    /// libcudart.so (the runtime TensorRT links), `cudaRuntimeGetVersion`.
    pub runtime: LibStatus,
}

/// `12060` -> `12.6`.
pub fn decode_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Load the first library that opens and call `int f(int*)` on it.
fn probe_getter(names: &[&str], symbol: &[u8], fix: &str) -> LibStatus {
    let mut tried = Vec::new();
    for name in names {
        // SAFETY: loading the CUDA driver/runtime runs their initialisers, as any CUDA program does.
        match unsafe { libloading::Library::new(*name) } {
            Ok(lib) => {
                // SAFETY: `cuDriverGetVersion`/`cudaRuntimeGetVersion` are `int f(int*)`.
                let f = unsafe { lib.get::<unsafe extern "C" fn(*mut i32) -> i32>(symbol) };
                let Ok(f) = f else {
                    tried.push(format!("{name} (no {})", String::from_utf8_lossy(symbol)));
                    continue;
                };
                let mut v = 0i32;
                // SAFETY: `v` is a valid out-parameter.
                let rc = unsafe { f(&mut v) };
                return if rc == 0 {
                    LibStatus {
                        available: true,
                        version: Some(decode_version(v)),
                        detail: (*name).to_string(),
                        fix: None,
                    }
                } else {
                    LibStatus {
                        available: false,
                        version: None,
                        detail: format!(
                            "{name} loaded but {} returned error {rc}",
                            String::from_utf8_lossy(symbol)
                        ),
                        fix: Some(fix.to_string()),
                    }
                };
            }
            Err(e) => tried.push(format!("{name} ({e})")),
        }
    }
    LibStatus {
        available: false,
        version: None,
        detail: format!("tried {}", tried.join("; ")),
        fix: Some(fix.to_string()),
    }
}

/// Report the CUDA driver and runtime; never fails.
pub fn probe() -> CudaStatus {
    CudaStatus {
        compiled_in: cfg!(feature = "cuda"),
        driver: probe_getter(
            &["libcuda.so.1", "libcuda.so"],
            b"cuDriverGetVersion",
            "Install the NVIDIA driver (JetPack includes it); a machine without an NVIDIA GPU cannot build or run engines",
        ),
        runtime: probe_getter(
            &["libcudart.so.12", "libcudart.so.11.0", "libcudart.so"],
            b"cudaRuntimeGetVersion",
            "Install the CUDA runtime (JetPack includes it; on x86 the cuda-cudart package) and put it on LD_LIBRARY_PATH",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode() {
        assert_eq!(decode_version(12060), "12.6");
        assert_eq!(decode_version(11040), "11.4");
    }

    #[test]
    fn probe_never_panics_and_explains_absence() {
        let s = probe();
        for lib in [&s.driver, &s.runtime] {
            assert_eq!(lib.available, lib.fix.is_none(), "{lib:?}");
            if !lib.available {
                assert!(
                    lib.detail.starts_with("tried") || lib.detail.contains("error"),
                    "{lib:?}"
                );
            }
        }
    }
}
