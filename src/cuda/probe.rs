//! CUDA driver and runtime availability through dlopen, so `doctor` works in every build.

use crate::dylib::{load_version, LibStatus, VersionCall};
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

fn probe_lib(names: &[&str], symbol: &[u8], fix: &str) -> LibStatus {
    match load_version(names, None, symbol, VersionCall::OutParam) {
        Ok((path, v)) => LibStatus::found(path, decode_version(v)),
        Err(why) => LibStatus::missing(why, fix),
    }
}

/// Report the CUDA driver and runtime; never fails.
pub fn probe() -> CudaStatus {
    CudaStatus {
        compiled_in: cfg!(feature = "cuda"),
        driver: probe_lib(
            &["libcuda.so.1", "libcuda.so"],
            b"cuDriverGetVersion",
            "Install the NVIDIA driver (JetPack includes it); a machine without an NVIDIA GPU cannot build or run engines",
        ),
        runtime: probe_lib(
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
