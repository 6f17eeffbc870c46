//! `trtforge doctor`: what this machine can do, and how to fix what is missing.

use crate::dylib::LibStatus;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Doctor {
    pub trtforge: String,
    pub features: Vec<&'static str>,
    pub onnxruntime: LibStatus,
    pub tensorrt: crate::trt::TensorRtStatus,
    pub cuda: crate::cuda::CudaStatus,
    /// Device model, L4T release, nvpmodel mode, clocks (Jetson facts where readable).
    pub device: crate::measure::context::DeviceContext,
}

pub fn onnxruntime() -> LibStatus {
    match crate::exec::ort_version() {
        Ok((v, _)) => LibStatus::found(
            crate::exec::ort_library_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            v,
        ),
        Err(e) => LibStatus::missing(
            e.to_string(),
            "bash scripts/setup.sh && source scripts/env.sh (or set ORT_DYLIB_PATH)",
        ),
    }
}

pub fn features() -> Vec<&'static str> {
    let mut f = vec![];
    if cfg!(feature = "cuda") {
        f.push("cuda");
    }
    if cfg!(feature = "tensorrt") {
        f.push("tensorrt");
    }
    f
}

pub fn run() -> Doctor {
    Doctor {
        trtforge: crate::TOOL_VERSION.to_string(),
        features: features(),
        onnxruntime: onnxruntime(),
        tensorrt: crate::trt::probe(),
        cuda: crate::cuda::probe(),
        device: crate::measure::context::collect(&Default::default()),
    }
}
