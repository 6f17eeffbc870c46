//! `--engine` of `run` and `eval`: the TensorRT engine instead of the ONNX model.

use std::path::Path;
use trtforge::exec::Infer;

/// Run `f` on the engine at `path` (feature `tensorrt`), or say plainly why not.
#[cfg(feature = "tensorrt")]
pub fn with_engine<R>(
    path: &Path,
    batch: usize,
    f: impl FnOnce(&mut dyn Infer) -> trtforge::Result<R>,
) -> trtforge::Result<R> {
    trtforge::measure::trt_exec::infer_with_engine(path, batch, f)
}

#[cfg(not(feature = "tensorrt"))]
pub fn with_engine<R>(
    path: &Path,
    _batch: usize,
    _f: impl FnOnce(&mut dyn Infer) -> trtforge::Result<R>,
) -> trtforge::Result<R> {
    Err(trtforge::Error::Unavailable {
        what: "TensorRT".into(),
        why: format!(
            "{}: this trtforge was built without TensorRT",
            path.display()
        ),
        fix: "Rebuild with `cargo build --release --features tensorrt` on the Jetson, or drop --engine to run the ONNX model with ONNX Runtime".into(),
    })
}
