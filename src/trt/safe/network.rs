//! The network definition, filled by the ONNX parser it owns.

use super::super::result::{check, cstr};
use super::super::sys;
use super::{dtype_name, DataType, IoTensor, Logger};
use crate::error::{Error, Result};
use std::ffi::CString;
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

handle!(
    Network,
    sys::trtforge_network,
    sys::trtforge_network_destroy
);

/// One ONNX parser error.
#[derive(Debug, Clone, PartialEq)]
pub struct ParserError {
    pub node: i32,
    pub node_name: String,
    pub desc: String,
    pub code: i32,
}

impl Network<'_> {
    fn io(&self, input: bool, i: i32) -> Result<IoTensor> {
        let (mut name, mut nb, mut dims, mut dtype) = (std::ptr::null(), 0i32, [0i64; 8], 0i32);
        // SAFETY: valid handle and out-pointers; `name` lives as long as the network.
        let st = unsafe {
            if input {
                sys::trtforge_network_input(
                    self.raw.as_ptr(),
                    i,
                    &mut name,
                    &mut nb,
                    dims.as_mut_ptr(),
                    &mut dtype,
                )
            } else {
                sys::trtforge_network_output(
                    self.raw.as_ptr(),
                    i,
                    &mut name,
                    &mut nb,
                    dims.as_mut_ptr(),
                    &mut dtype,
                )
            }
        };
        check(st, "network tensor")?;
        Ok(IoTensor {
            name: cstr(name),
            is_input: input,
            dims: dims[..nb.clamp(0, 8) as usize].to_vec(),
            dtype: dtype_name(dtype),
        })
    }

    fn count(
        &self,
        f: unsafe extern "C" fn(*mut sys::trtforge_network, *mut i32) -> i32,
    ) -> Result<i32> {
        let mut n = 0;
        // SAFETY: valid handle, out-pointer.
        check(unsafe { f(self.raw.as_ptr(), &mut n) }, "network")?;
        Ok(n)
    }

    pub fn inputs(&self) -> Result<Vec<IoTensor>> {
        (0..self.count(sys::trtforge_network_nb_inputs)?)
            .map(|i| self.io(true, i))
            .collect()
    }

    pub fn outputs(&self) -> Result<Vec<IoTensor>> {
        (0..self.count(sys::trtforge_network_nb_outputs)?)
            .map(|i| self.io(false, i))
            .collect()
    }

    /// Every layer's name, in network order (the ONNX parser names a layer after its node).
    pub fn layer_names(&self) -> Result<Vec<String>> {
        (0..self.count(sys::trtforge_network_nb_layers)?)
            .map(|i| {
                let mut name = std::ptr::null();
                check(
                    // SAFETY: valid handle, index in range, out-pointer.
                    unsafe { sys::trtforge_network_layer_name(self.raw.as_ptr(), i, &mut name) },
                    "layer name",
                )?;
                Ok(cstr(name))
            })
            .collect()
    }

    /// Pin layer `index` to `dtype` (precision and output types). Unavailable on TensorRT 11.
    pub fn set_layer_precision(&self, index: usize, dtype: DataType) -> Result<()> {
        let i = i32::try_from(index).map_err(|_| Error::internal("layer index"))?;
        check(
            // SAFETY: valid handle; the shim checks the index.
            unsafe {
                sys::trtforge_network_set_layer_precision(self.raw.as_ptr(), i, dtype as i32)
            },
            "layer precision",
        )
    }

    /// Parse an ONNX file into this network. The network keeps the parser (TensorRT refers to
    /// the parsed weights until the engine is built), so the lifetime cannot go wrong; every
    /// parser error is reported, with the node.
    pub fn parse_onnx(&mut self, logger: &Logger, path: &Path) -> Result<()> {
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| Error::Invalid(format!("{}: path has a NUL byte", path.display())))?;
        // SAFETY: valid handles and path.
        let st = unsafe {
            sys::trtforge_network_parse_onnx(self.raw.as_ptr(), logger.raw.as_ptr(), c.as_ptr(), 2)
        };
        if st == sys::TRTFORGE_PARSE_FAILED as i32 {
            let errs = self.parser_errors()?;
            let lines: Vec<String> = errs
                .iter()
                .map(|e| {
                    format!(
                        "node {} '{}': {} (code {})",
                        e.node, e.node_name, e.desc, e.code
                    )
                })
                .collect();
            let msg = if lines.is_empty() {
                "TensorRT's ONNX parser failed without reporting an error (see the TensorRT log, -vv)"
                    .to_string()
            } else {
                format!("TensorRT's ONNX parser failed: {}", lines.join("; "))
            };
            return Err(Error::Onnx {
                path: path.to_path_buf(),
                msg,
            });
        }
        check(st, "ONNX parse")
    }

    /// The errors of the last parse.
    pub fn parser_errors(&self) -> Result<Vec<ParserError>> {
        (0..self.count(sys::trtforge_network_parser_nb_errors)?)
            .map(|i| {
                let (mut node, mut name, mut desc, mut code) =
                    (0, std::ptr::null(), std::ptr::null(), 0);
                check(
                    // SAFETY: valid handle, index in range, out-pointers.
                    unsafe {
                        sys::trtforge_network_parser_error(
                            self.raw.as_ptr(),
                            i,
                            &mut node,
                            &mut name,
                            &mut desc,
                            &mut code,
                        )
                    },
                    "parser error",
                )?;
                Ok(ParserError {
                    node,
                    node_name: cstr(name),
                    desc: cstr(desc),
                    code,
                })
            })
            .collect()
    }
}
