//! Safe owning handles over the `sys/` shim (feature `tensorrt`).
//!
//! Handles are `NonNull` newtypes destroyed in `Drop` (which never panics), not `Clone`;
//! children borrow their parents (`Network<'b>` borrows its `Builder`), so the borrow checker
//! keeps parents alive. Every call checks the status and turns the thread-local last error
//! into an [`Error`].

use super::bridge::{CalibrationSummary, CalibratorState};
use super::sys;
use crate::error::{Error, Result};
use std::ffi::{c_char, c_void, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::NonNull;

/// TensorRT's log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    InternalError = 0,
    Error = 1,
    Warning = 2,
    Info = 3,
    Verbose = 4,
}

fn last_error() -> String {
    // SAFETY: returns a NUL-terminated thread-local string valid until the next shim call.
    let p = unsafe { sys::trtforge_last_error() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, read before any other shim call on this thread.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn check(status: i32, what: &str) -> Result<()> {
    if status == sys::TRTFORGE_OK as i32 {
        return Ok(());
    }
    let msg = last_error();
    if status == sys::TRTFORGE_UNSUPPORTED as i32 {
        return Err(Error::Unavailable {
            what: what.to_string(),
            why: msg,
            fix: "Use a TensorRT version that has it, or drop the recipe field".into(),
        });
    }
    Err(Error::Invalid(format!("TensorRT {what}: {msg}")))
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the shim returns NUL-terminated strings owned by a live TensorRT object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Header and library versions as `major.minor.patch`.
pub fn versions() -> (String, String) {
    // SAFETY: plain functions returning numbers.
    let (h, l) = unsafe {
        (
            sys::trtforge_header_version(),
            sys::trtforge_library_version(),
        )
    };
    (
        super::probe::decode_version(h),
        super::probe::decode_version(l),
    )
}

type LogFn = Box<dyn Fn(Severity, &str) + Send + Sync>;

/// Forwards every TensorRT message with its severity to a Rust closure.
pub struct Logger {
    raw: NonNull<sys::trtforge_logger>,
    _f: Box<LogFn>,
}

unsafe extern "C" fn log_trampoline(user: *mut c_void, severity: i32, msg: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `user` is the `Box<LogFn>` owned by the Logger, alive while TensorRT logs.
        let f = unsafe { &*user.cast::<LogFn>() };
        let sev = match severity {
            0 => Severity::InternalError,
            1 => Severity::Error,
            2 => Severity::Warning,
            3 => Severity::Info,
            _ => Severity::Verbose,
        };
        f(sev, &cstr(msg));
    }));
}

impl Logger {
    pub fn new(f: impl Fn(Severity, &str) + Send + Sync + 'static) -> Result<Self> {
        let f: Box<LogFn> = Box::new(Box::new(f));
        let mut raw = std::ptr::null_mut();
        let user = (&*f as *const LogFn).cast_mut().cast();
        // SAFETY: `user` stays valid as long as the Logger (it owns the box).
        check(
            unsafe { sys::trtforge_logger_create(Some(log_trampoline), user, &mut raw) },
            "logger",
        )?;
        Ok(Logger {
            raw: NonNull::new(raw).ok_or_else(|| Error::Invalid("null logger".into()))?,
            _f: f,
        })
    }

    /// A logger forwarding to the `log` crate (TensorRT's info goes to debug).
    pub fn to_log() -> Result<Self> {
        Logger::new(|sev, msg| match sev {
            Severity::InternalError | Severity::Error => log::error!("TensorRT: {msg}"),
            Severity::Warning => log::warn!("TensorRT: {msg}"),
            Severity::Info => log::debug!("TensorRT: {msg}"),
            Severity::Verbose => log::trace!("TensorRT: {msg}"),
        })
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        // SAFETY: created by trtforge_logger_create, destroyed once.
        unsafe { sys::trtforge_logger_destroy(self.raw.as_ptr()) }
    }
}

macro_rules! handle {
    ($name:ident, $raw:ty, $destroy:path) => {
        pub struct $name<'p> {
            raw: NonNull<$raw>,
            _parent: PhantomData<&'p ()>,
        }
        impl Drop for $name<'_> {
            fn drop(&mut self) {
                // SAFETY: created by the matching create call and destroyed exactly once.
                unsafe { $destroy(self.raw.as_ptr()) }
            }
        }
        impl $name<'_> {
            fn from_raw(raw: *mut $raw, what: &str) -> Result<Self> {
                Ok($name {
                    raw: NonNull::new(raw)
                        .ok_or_else(|| Error::Invalid(format!("TensorRT {what}: null handle")))?,
                    _parent: PhantomData,
                })
            }
        }
    };
}

handle!(
    Builder,
    sys::trtforge_builder,
    sys::trtforge_builder_destroy
);
handle!(
    Network,
    sys::trtforge_network,
    sys::trtforge_network_destroy
);
handle!(Parser, sys::trtforge_parser, sys::trtforge_parser_destroy);
handle!(Config, sys::trtforge_config, sys::trtforge_config_destroy);
handle!(HostBytes, sys::trtforge_bytes, sys::trtforge_bytes_destroy);
handle!(
    TrtRuntime,
    sys::trtforge_runtime,
    sys::trtforge_runtime_destroy
);
handle!(Engine, sys::trtforge_engine, sys::trtforge_engine_destroy);
handle!(
    Calibrator,
    sys::trtforge_calibrator,
    sys::trtforge_calibrator_destroy
);

impl HostBytes<'_> {
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: data/size describe a buffer owned by this handle.
        unsafe {
            let p = sys::trtforge_bytes_data(self.raw.as_ptr());
            let n = sys::trtforge_bytes_size(self.raw.as_ptr());
            if p.is_null() || n == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p.cast(), n)
            }
        }
    }
}

/// A tensor's name, dims (-1 = dynamic) and TensorRT DataType.
#[derive(Debug, Clone, PartialEq)]
pub struct IoTensor {
    pub name: String,
    pub is_input: bool,
    pub dims: Vec<i64>,
    pub dtype: &'static str,
}

fn dtype_name(d: i32) -> &'static str {
    match d {
        0 => "float32",
        1 => "float16",
        2 => "int8",
        3 => "int32",
        4 => "bool",
        5 => "uint8",
        6 => "fp8",
        7 => "bfloat16",
        8 => "int64",
        9 => "int4",
        _ => "unknown",
    }
}

/// Shapes of one dynamic input in an optimization profile.
#[derive(Debug, Clone, PartialEq)]
pub struct InputProfile {
    pub name: String,
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}

/// One ONNX parser error.
#[derive(Debug, Clone, PartialEq)]
pub struct ParserError {
    pub node: i32,
    pub node_name: String,
    pub desc: String,
    pub code: i32,
}

impl<'l> Builder<'l> {
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid logger handle, out-pointer.
        check(
            unsafe { sys::trtforge_builder_create(logger.raw.as_ptr(), &mut raw) },
            "builder",
        )?;
        Builder::from_raw(raw, "builder")
    }

    /// Explicit-batch network; `strongly_typed` for Q/DQ models where the version has it.
    pub fn network(&self, strongly_typed: bool) -> Result<Network<'_>> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid builder handle, out-pointer.
        check(
            unsafe {
                sys::trtforge_network_create(self.raw.as_ptr(), i32::from(strongly_typed), &mut raw)
            },
            "network",
        )?;
        Network::from_raw(raw, "network")
    }

    pub fn config(&self) -> Result<Config<'_>> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid builder handle, out-pointer.
        check(
            unsafe { sys::trtforge_config_create(self.raw.as_ptr(), &mut raw) },
            "builder config",
        )?;
        Config::from_raw(raw, "builder config")
    }

    /// Add an optimization profile: `(input, min, opt, max)` per dynamic input.
    pub fn add_profile(
        &self,
        config: &Config<'_>,
        shapes: &[InputProfile],
        calibration: bool,
    ) -> Result<()> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid builder handle, out-pointer.
        check(
            unsafe { sys::trtforge_profile_create(self.raw.as_ptr(), &mut raw) },
            "optimization profile",
        )?;
        for InputProfile {
            name,
            min,
            opt,
            max,
        } in shapes
        {
            let c = CString::new(name.as_str())
                .map_err(|_| Error::Invalid(format!("input name {name:?}")))?;
            if min.len() != opt.len() || opt.len() != max.len() {
                return Err(Error::Invalid(format!(
                    "profile for '{name}': min/opt/max ranks differ"
                )));
            }
            // SAFETY: arrays of `len` dims, valid profile handle.
            check(
                unsafe {
                    sys::trtforge_profile_set(
                        raw,
                        c.as_ptr(),
                        min.len() as i32,
                        min.as_ptr(),
                        opt.as_ptr(),
                        max.as_ptr(),
                    )
                },
                "optimization profile",
            )?;
        }
        // SAFETY: the config takes the profile (TensorRT owns it); `raw` is not used again.
        check(
            unsafe {
                sys::trtforge_config_add_profile(config.raw.as_ptr(), raw, i32::from(calibration))
            },
            "optimization profile",
        )
    }

    /// Build the serialized engine. With a calibrator, the failure recorded in its state (an
    /// error or a panic in a callback) takes precedence over TensorRT's own error.
    pub fn build(
        &self,
        network: &Network<'_>,
        config: &Config<'_>,
        calib: Option<&mut CalibrationSession>,
    ) -> Result<(Vec<u8>, Option<CalibrationSummary>)> {
        if let Some(s) = calib.as_deref() {
            // SAFETY: valid handles; the session outlives this call, and is detached below.
            check(
                unsafe {
                    sys::trtforge_config_set_calibrator(config.raw.as_ptr(), s.calib.raw.as_ptr())
                },
                "calibrator",
            )?;
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid handles; the calibrator session is borrowed for the whole call.
        let status = unsafe {
            sys::trtforge_build_serialized(
                self.raw.as_ptr(),
                network.raw.as_ptr(),
                config.raw.as_ptr(),
                &mut raw,
            )
        };
        // Own whatever came back before any early return, so it is freed.
        let bytes = if raw.is_null() {
            None
        } else {
            Some(HostBytes::from_raw(raw, "engine build")?)
        };
        let summary = match calib {
            Some(s) => {
                // SAFETY: detach so the config never points at a dropped calibrator.
                unsafe {
                    sys::trtforge_config_set_calibrator(config.raw.as_ptr(), std::ptr::null_mut())
                };
                Some(s.state.finish()?)
            }
            None => None,
        };
        check(status, "engine build")?;
        let bytes = bytes
            .ok_or_else(|| Error::Invalid("TensorRT engine build returned no bytes".into()))?;
        Ok((bytes.as_slice().to_vec(), summary))
    }
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
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_network_nb_inputs(self.raw.as_ptr(), &mut n) },
            "network inputs",
        )?;
        (0..n).map(|i| self.io(true, i)).collect()
    }

    pub fn outputs(&self) -> Result<Vec<IoTensor>> {
        let mut n = 0;
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_network_nb_outputs(self.raw.as_ptr(), &mut n) },
            "network outputs",
        )?;
        (0..n).map(|i| self.io(false, i)).collect()
    }

    /// Pin the layers named exactly `name` to `dtype` (precision and output types; a TensorRT
    /// DataType number such as [`DATA_TYPE_HALF`]). Returns how many layers matched.
    pub fn set_precision_where_exact(&self, wanted: &str, dtype: i32) -> Result<usize> {
        let mut n = 0;
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_network_nb_layers(self.raw.as_ptr(), &mut n) },
            "network layers",
        )?;
        let mut hits = 0;
        for i in 0..n {
            let mut name = std::ptr::null();
            // SAFETY: valid handle, index in range, out-pointer.
            check(
                unsafe { sys::trtforge_network_layer_name(self.raw.as_ptr(), i, &mut name) },
                "layer name",
            )?;
            if cstr(name) == wanted {
                // SAFETY: valid handle, index in range.
                check(
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
        // SAFETY: valid handles, out-pointer.
        check(
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
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_parser_nb_errors(self.raw.as_ptr(), &mut n) },
            "parser errors",
        )?;
        (0..n)
            .map(|i| {
                let (mut node, mut name, mut desc, mut code) =
                    (0, std::ptr::null(), std::ptr::null(), 0);
                // SAFETY: valid handle, index in range, out-pointers.
                check(
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

/// Builder precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPrecision {
    Fp32,
    Fp16,
    Int8,
    Best,
}

/// `nvinfer1::DataType::kHALF` (the same number in TensorRT 8.5 to 10.x).
pub const DATA_TYPE_HALF: i32 = 1;

/// Precision constraints for layers given explicit precisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraints {
    None,
    Prefer,
    Obey,
}

impl<'b> Config<'b> {
    pub fn set_precision(&self, p: BuildPrecision) -> Result<()> {
        let v = match p {
            BuildPrecision::Fp32 => sys::TRTFORGE_PRECISION_FP32,
            BuildPrecision::Fp16 => sys::TRTFORGE_PRECISION_FP16,
            BuildPrecision::Int8 => sys::TRTFORGE_PRECISION_INT8,
            BuildPrecision::Best => sys::TRTFORGE_PRECISION_BEST,
        };
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_precision(self.raw.as_ptr(), v as i32) },
            "precision",
        )
    }

    pub fn set_constraints(&self, c: Constraints) -> Result<()> {
        let v = match c {
            Constraints::None => sys::TRTFORGE_CONSTRAINTS_NONE,
            Constraints::Prefer => sys::TRTFORGE_CONSTRAINTS_PREFER,
            Constraints::Obey => sys::TRTFORGE_CONSTRAINTS_OBEY,
        };
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_constraints(self.raw.as_ptr(), v as i32) },
            "precision constraints",
        )
    }

    pub fn set_workspace_mib(&self, mib: u64) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_workspace(self.raw.as_ptr(), mib << 20) },
            "workspace",
        )
    }

    pub fn set_dla(&self, core: Option<u32>, gpu_fallback: bool) -> Result<()> {
        let core = core.map(|c| c as i32).unwrap_or(-1);
        // SAFETY: valid handle.
        check(
            unsafe {
                sys::trtforge_config_set_dla(self.raw.as_ptr(), core, i32::from(gpu_fallback))
            },
            "DLA",
        )
    }

    pub fn set_optimization_level(&self, level: u32) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_optimization_level(self.raw.as_ptr(), level as i32) },
            "builder optimization level",
        )
    }

    pub fn set_detailed_profiling(&self) -> Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { sys::trtforge_config_set_detailed_profiling(self.raw.as_ptr()) },
            "profiling verbosity",
        )
    }

    /// Attach a timing cache (`None`: start an empty one).
    pub fn set_timing_cache(&self, bytes: Option<&[u8]>) -> Result<()> {
        let (p, n) = bytes
            .map(|b| (b.as_ptr().cast(), b.len()))
            .unwrap_or((std::ptr::null(), 0));
        // SAFETY: valid handle; TensorRT copies the bytes.
        check(
            unsafe { sys::trtforge_config_set_timing_cache(self.raw.as_ptr(), p, n) },
            "timing cache",
        )
    }

    pub fn timing_cache(&self) -> Result<Vec<u8>> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_config_serialize_timing_cache(self.raw.as_ptr(), &mut raw) },
            "timing cache",
        )?;
        Ok(HostBytes::from_raw(raw, "timing cache")?
            .as_slice()
            .to_vec())
    }
}

/// A C++ calibrator and the boxed Rust state it forwards to, owned together (the handle is
/// dropped before the state). [`Builder::build`] attaches it for the duration of the build.
pub struct CalibrationSession {
    calib: Calibrator<'static>,
    state: Box<CalibratorState>,
}

impl CalibrationSession {
    /// `minmax` picks IInt8MinMaxCalibrator, else IInt8EntropyCalibrator2.
    pub fn new(mut state: Box<CalibratorState>, minmax: bool) -> Result<Self> {
        let cb = state.callbacks();
        let algo = if minmax {
            sys::TRTFORGE_CALIB_MINMAX
        } else {
            sys::TRTFORGE_CALIB_ENTROPY2
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: `cb.user` points into the box, which this session owns and outlives the handle.
        check(
            unsafe { sys::trtforge_calibrator_create(&cb, algo as i32, &mut raw) },
            "calibrator",
        )?;
        Ok(CalibrationSession {
            calib: Calibrator::from_raw(raw, "calibrator")?,
            state,
        })
    }

    pub fn state(&mut self) -> &mut CalibratorState {
        &mut self.state
    }
}

impl<'l> TrtRuntime<'l> {
    pub fn new(logger: &'l Logger) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid logger, out-pointer.
        check(
            unsafe { sys::trtforge_runtime_create(logger.raw.as_ptr(), &mut raw) },
            "runtime",
        )?;
        TrtRuntime::from_raw(raw, "runtime")
    }

    /// Deserialize engine bytes; use [`super::manifest::load_checked_engine`] first.
    pub fn deserialize(&self, bytes: &[u8]) -> Result<Engine<'_>> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid runtime; TensorRT copies what it needs from `bytes`.
        check(
            unsafe {
                sys::trtforge_engine_deserialize(
                    self.raw.as_ptr(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    &mut raw,
                )
            },
            "engine deserialization",
        )?;
        Engine::from_raw(raw, "engine")
    }
}

impl Engine<'_> {
    pub fn io_tensors(&self) -> Result<Vec<IoTensor>> {
        let mut n = 0;
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_engine_nb_io(self.raw.as_ptr(), &mut n) },
            "engine I/O",
        )?;
        (0..n)
            .map(|i| {
                let (mut name, mut inp, mut nb, mut dims, mut dt) =
                    (std::ptr::null(), 0, 0, [0i64; 8], 0);
                // SAFETY: valid handle, index in range, out-pointers.
                check(
                    unsafe {
                        sys::trtforge_engine_io(
                            self.raw.as_ptr(),
                            i,
                            &mut name,
                            &mut inp,
                            &mut nb,
                            dims.as_mut_ptr(),
                            &mut dt,
                        )
                    },
                    "engine I/O",
                )?;
                Ok(IoTensor {
                    name: cstr(name),
                    is_input: inp == 1,
                    dims: dims[..nb.clamp(0, 8) as usize].to_vec(),
                    dtype: dtype_name(dt),
                })
            })
            .collect()
    }

    /// The engine inspector's per-layer JSON.
    pub fn layer_info_json(&self) -> Result<String> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid handle, out-pointer.
        check(
            unsafe { sys::trtforge_engine_layer_info_json(self.raw.as_ptr(), &mut raw) },
            "engine inspector",
        )?;
        Ok(
            String::from_utf8_lossy(HostBytes::from_raw(raw, "engine inspector")?.as_slice())
                .into_owned(),
        )
    }
}
