//! The network definition and the ONNX parser that fills it.

use super::super::result::{check, cstr};
use super::super::sys;
use super::{dtype_name, IoTensor, Logger};
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

handle!(Parser, sys::trtforge_parser, sys::trtforge_parser_destroy);

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

    pub fn inputs(&self) -> Result<Vec<IoTensor>> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_network_nb_inputs(self.raw.as_ptr(), &mut n) },
            "network inputs",
        )?;
        (0..n).map(|i| self.io(true, i)).collect()
    }

    pub fn outputs(&self) -> Result<Vec<IoTensor>> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_network_nb_outputs(self.raw.as_ptr(), &mut n) },
            "network outputs",
        )?;
        (0..n).map(|i| self.io(false, i)).collect()
    }

    /// Pin the layers named exactly `name` to `dtype` (precision and output types; a TensorRT
    /// DataType number such as [`DATA_TYPE_HALF`]). Returns how many layers matched.
    pub fn set_precision_where_exact(&self, wanted: &str, dtype: i32) -> Result<usize> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_network_nb_layers(self.raw.as_ptr(), &mut n) },
            "network layers",
        )?;
        let mut hits = 0;
        for i in 0..n {
            let mut name = std::ptr::null();
            check(
                // SAFETY: valid handle, index in range, out-pointer.
                unsafe { sys::trtforge_network_layer_name(self.raw.as_ptr(), i, &mut name) },
                "layer name",
            )?;
            if cstr(name) == wanted {
                check(
                    // SAFETY: valid handle, index in range.
                    unsafe {
                        sys::trtforge_network_set_layer_precision(self.raw.as_ptr(), i, dtype)
                    },
                    "layer precision",
                )?;
                hits += 1;
            }
        }
        Ok(hits)
    }

    /// Parse an ONNX file into this network; every parser error is reported.
    pub fn parse_onnx(&self, logger: &Logger, path: &Path) -> Result<()> {
        let mut raw = std::ptr::null_mut();
        check(
            // SAFETY: valid handles, out-pointer.
            unsafe {
                sys::trtforge_parser_create(self.raw.as_ptr(), logger.raw.as_ptr(), &mut raw)
            },
            "ONNX parser",
        )?;
        let parser = Parser::from_raw(raw, "ONNX parser")?;
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| Error::Invalid(format!("{}: path has a NUL byte", path.display())))?;
        // SAFETY: valid handle and path.
        let st = unsafe { sys::trtforge_parser_parse_file(parser.raw.as_ptr(), c.as_ptr(), 2) };
        if st == sys::TRTFORGE_PARSE_FAILED as i32 {
            let errs = parser.errors()?;
            let lines: Vec<String> = errs
                .iter()
                .map(|e| {
                    format!(
                        "node {} '{}': {} (code {})",
                        e.node, e.node_name, e.desc, e.code
                    )
                })
                .collect();
            return Err(Error::Onnx {
                path: path.to_path_buf(),
                msg: format!("TensorRT's ONNX parser failed: {}", lines.join("; ")),
            });
        }
        check(st, "ONNX parse")
    }
}

impl Parser<'_> {
    pub fn errors(&self) -> Result<Vec<ParserError>> {
        let mut n = 0;
        check(
            // SAFETY: valid handle, out-pointer.
            unsafe { sys::trtforge_parser_nb_errors(self.raw.as_ptr(), &mut n) },
            "parser errors",
        )?;
        (0..n)
            .map(|i| {
                let (mut node, mut name, mut desc, mut code) =
                    (0, std::ptr::null(), std::ptr::null(), 0);
                check(
                    // SAFETY: valid handle, index in range, out-pointers.
                    unsafe {
                        sys::trtforge_parser_error(
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
