//! What the device a bundle is about to run on has: TensorRT's library version, the GPU's
//! compute capability, the L4T release, the DLA cores. Each is read from the machine (the
//! TensorRT probe, CUDA, `/etc/nv_tegra_release`, sysfs) unless an environment variable names
//! it (`TRTFORGE_DEVICE_TENSORRT`, `TRTFORGE_DEVICE_COMPUTE_CAPABILITY`), and the file system
//! roots can be moved (`--root`, `--sysfs-root`), so that verification is testable anywhere.

use crate::measure::context::{parse_l4t, Roots};
use serde::Serialize;

/// A fact, or why it could not be read here.
pub type Fact = std::result::Result<String, String>;

#[derive(Debug, Clone, Serialize)]
pub struct DeviceFacts {
    pub tensorrt: Fact,
    pub compute_capability: Fact,
    pub l4t_release: Fact,
    /// Indices of the DLA cores sysfs lists (`*.nvdla0`, `*.nvdla1`).
    pub dla_cores: Vec<u32>,
}

fn tensorrt() -> Fact {
    if let Some(v) = crate::env::var("TRTFORGE_DEVICE_TENSORRT") {
        return Ok(v);
    }
    let s = crate::trt::probe();
    match (s.library.available, s.library.version) {
        (true, Some(v)) => Ok(v),
        _ => Err(format!(
            "TensorRT not found ({}); install it (JetPack) or set LD_LIBRARY_PATH",
            s.library.detail
        )),
    }
}

fn compute_capability() -> Fact {
    if let Some(v) = crate::env::var("TRTFORGE_DEVICE_COMPUTE_CAPABILITY") {
        return Ok(v);
    }
    #[cfg(feature = "cuda")]
    {
        crate::cuda::Gpu::open(0)
            .and_then(|g| g.compute_capability())
            .map(|(a, b)| format!("{a}.{b}"))
            .map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "cuda"))]
    Err("this trtforge was built without CUDA (rebuild with --features cuda or tensorrt)".into())
}

fn dla_cores(roots: &Roots) -> Vec<u32> {
    let dir = roots.sysfs.join("bus/platform/devices");
    let mut v: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.rsplit_once(".nvdla").and_then(|(_, i)| i.parse().ok())
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

pub fn probe(roots: &Roots) -> DeviceFacts {
    let release = roots.etc.join("nv_tegra_release");
    let l4t_release = std::fs::read_to_string(&release)
        .ok()
        .and_then(|t| parse_l4t(&t))
        .ok_or_else(|| format!("{} not readable: not a Jetson", release.display()));
    DeviceFacts {
        tensorrt: tensorrt(),
        compute_capability: compute_capability(),
        l4t_release,
        dla_cores: dla_cores(roots),
    }
}
