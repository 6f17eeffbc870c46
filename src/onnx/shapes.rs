//! Where tensor shapes come from. The ONNX layer does not run models: whoever can (ONNX
//! Runtime, in `exec`) implements [`ShapeSource`], and inspection takes one.

use super::Model;
use crate::error::Result;
use std::collections::{BTreeMap, HashMap};

/// Concrete shapes of a model's tensors at given input shapes.
pub trait ShapeSource {
    /// The shape of every node output for inputs of these shapes (real graph inputs only).
    fn tensor_shapes(
        &self,
        model: &Model,
        inputs: &BTreeMap<String, Vec<usize>>,
    ) -> Result<HashMap<String, Vec<usize>>>;
}
