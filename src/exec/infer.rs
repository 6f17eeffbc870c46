//! One inference over named float tensors, whatever runs it: ONNX Runtime on CPU, or a
//! TensorRT engine on the device (`measure::trt_exec`), so `run` and `eval` score an engine
//! through the same preprocessing and decoders as the ONNX model.

use crate::error::Result;
use ndarray::{ArrayD, ArrayViewD};

pub trait Infer {
    /// Run `inputs`; every output as float32, in the executor's output order.
    fn infer(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, ArrayD<f32>)>>;
}

impl Infer for super::OrtSession {
    fn infer(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.run(inputs)
    }
}
