//! TensorRT engines as a bench [`Executor`] (feature `tensorrt`), the way trtexec runs them
//! (samples/common/sampleInference.cpp): input shapes set on the execution context
//! (setInputShape), every I/O tensor bound to its buffer (setTensorAddress), then per inference
//! host-to-device copies, enqueueV3 and device-to-host copies on one stream, with CUDA events
//! between them for the h2d / compute / d2h split. Options as trtexec's: `--noDataTransfers`
//! (compute only), `--useSpinWait` (busy-wait instead of a blocking sync), `--useCudaGraph`
//! (the inference captured once into a CUDA graph and replayed; its device time is the whole
//! replay, copies included).
//!
//! The memory and the stream are a [`DeviceIo`]: [`super::cuda_io::CudaIo`] on a GPU, a
//! host-only one in tests against the TensorRT test double.

use super::device_io::{DeviceIo, Mark};
use super::harness::{Executor, ExecutorInfo, Timing};
use super::ort_exec::seeded_input;
use crate::error::{Error, Result};
use crate::trt::{Engine, ExecutionContext, IoTensor, ProfileShape};
use std::path::Path;

/// trtexec's inference options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrtOptions {
    /// Copy inputs and outputs every inference (trtexec's default).
    pub no_transfers: bool,
    pub spin_wait: bool,
    pub cuda_graph: bool,
    /// The batch of dynamic-batch inputs (default: the profile's opt).
    pub batch: Option<usize>,
    pub seed: u64,
}

/// Bytes per element of a TensorRT type name (int4 packs two per byte, rounded up by the
/// caller's volume).
fn element_bytes(dtype: &str) -> Result<usize> {
    Ok(match dtype {
        "float32" | "int32" => 4,
        "float16" | "bfloat16" => 2,
        "int8" | "uint8" | "bool" | "fp8" => 1,
        "int64" => 8,
        other => {
            return Err(Error::Invalid(format!(
                "engine tensor type {other} is not supported by the bench executor"
            )))
        }
    })
}

/// The shape each input runs at: static dims as built; dynamic ones from profile 0's opt,
/// with the batch (dim 0) replaced by `batch` when given.
pub fn input_shapes(
    engine: &Engine<'_>,
    inputs: &[&IoTensor],
    batch: Option<usize>,
) -> Result<Vec<Vec<i64>>> {
    inputs
        .iter()
        .map(|t| {
            if t.dims.iter().all(|d| *d > 0) {
                if let Some(b) = batch.filter(|b| t.dims.first() != Some(&(*b as i64))) {
                    return Err(Error::Contract(format!(
                        "engine input '{}' has a fixed batch of {}; --batch {b} needs an engine built with a dynamic batch and a profile",
                        t.name, t.dims[0]
                    )));
                }
                return Ok(t.dims.clone());
            }
            let mut opt = engine.profile_shape(&t.name, 0, ProfileShape::Opt)?;
            if let (Some(b), Some(d0)) = (batch, opt.first_mut()) {
                let (lo, hi) = (
                    engine.profile_shape(&t.name, 0, ProfileShape::Min)?[0],
                    engine.profile_shape(&t.name, 0, ProfileShape::Max)?[0],
                );
                if (b as i64) < lo || (b as i64) > hi {
                    return Err(Error::Contract(format!(
                        "--batch {b} is outside the engine's profile for '{}' ({lo} to {hi})",
                        t.name
                    )));
                }
                *d0 = b as i64;
            }
            Ok(opt)
        })
        .collect()
}

/// Seeded values in [0, 255) in the input's own type (zeros for integer and quantized
/// inputs: there is no meaningful random image for them).
fn encode_input(dtype: &str, shape: &[usize], seed: u64, out: &mut [u8]) -> Result<()> {
    match dtype {
        "float32" | "float16" => {
            let v = seeded_input(shape, seed);
            encode(dtype, v.as_slice().expect("standard layout"), out)
        }
        _ => {
            out.fill(0);
            Ok(())
        }
    }
}

pub struct TrtExecutor<'e> {
    context: ExecutionContext<'e>,
    io: Box<dyn DeviceIo + 'e>,
    opts: TrtOptions,
    info: ExecutorInfo,
    /// Every I/O tensor at the shape it is bound with.
    bound: Vec<Bound>,
}

/// One bound tensor.
struct Bound {
    name: String,
    is_input: bool,
    dtype: &'static str,
    shape: Vec<usize>,
}

impl<'e> TrtExecutor<'e> {
    /// Bind every tensor of `engine` to buffers of `io`, fill the inputs, and with
    /// `cuda_graph` capture one inference (after one plain run, as trtexec does, so TensorRT
    /// has allocated what it allocates lazily).
    pub fn new(
        engine: &'e Engine<'e>,
        artifact: &Path,
        mut io: Box<dyn DeviceIo + 'e>,
        opts: TrtOptions,
    ) -> Result<Self> {
        let context = engine.context()?;
        let tensors = engine.io_tensors()?;
        let inputs: Vec<&IoTensor> = tensors.iter().filter(|t| t.is_input).collect();
        if inputs.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the engine has no input",
                artifact.display()
            )));
        }
        let shapes = input_shapes(engine, &inputs, opts.batch)?;
        for (t, s) in inputs.iter().zip(&shapes) {
            context.set_input_shape(&t.name, s)?;
        }
        let mut bound = vec![];
        for t in &tensors {
            let shape = context.tensor_shape(&t.name)?;
            if shape.iter().any(|d| *d < 0) {
                return Err(Error::Invalid(format!(
                    "{}: tensor '{}' has no concrete shape ({shape:?}) with the inputs set",
                    artifact.display(),
                    t.name
                )));
            }
            let volume: usize = shape.iter().map(|d| *d as usize).product();
            let bytes = volume * element_bytes(t.dtype)?;
            let addr = io.add(&t.name, bytes, t.is_input)?;
            // SAFETY: `io` owns a buffer of the tensor's full volume at `addr` and keeps it
            // until this executor (which owns `io`) drops, after its last inference.
            unsafe { context.set_tensor_address(&t.name, addr)? };
            let dims: Vec<usize> = shape.iter().map(|d| *d as usize).collect();
            if t.is_input {
                encode_input(t.dtype, &dims, opts.seed, io.host_mut(&t.name)?)?;
            }
            bound.push(Bound {
                name: t.name.clone(),
                is_input: t.is_input,
                dtype: t.dtype,
                shape: dims,
            });
        }
        let first = &inputs[0];
        let input_shape: Vec<usize> = shapes[0].iter().map(|d| *d as usize).collect();
        let mut notes = vec![format!(
            "input: uniform [0, 255) values in the input's type, seed {}",
            opts.seed
        )];
        if opts.no_transfers {
            notes.push("no host<->device transfers (compute only)".into());
        }
        notes.push(if opts.spin_wait {
            "spin-wait sync".into()
        } else {
            "blocking sync".into()
        });
        let mut exec = TrtExecutor {
            context,
            io,
            opts,
            info: ExecutorInfo {
                backend: "tensorrt".into(),
                artifact: artifact.to_path_buf(),
                artifact_sha256: crate::util::sha256_file(artifact)?,
                input_name: first.name.clone(),
                input_shape,
                notes,
            },
            bound,
        };
        if opts.cuda_graph {
            exec.run_plain()?;
            exec.io.begin_capture()?;
            let captured = exec.issue();
            // End the capture on every path, or the stream stays in capture mode.
            let ended = exec.io.end_capture();
            captured.and(ended)?;
            exec.info
                .notes
                .push("CUDA graph: one capture, replayed; device time includes copies".into());
        }
        Ok(exec)
    }

    /// Copies and enqueue, without marks (what a graph captures).
    fn issue(&mut self) -> Result<()> {
        if !self.opts.no_transfers {
            self.io.copy_inputs()?;
        }
        // SAFETY: the io's stream is live, and every bound buffer lives as long as `self`.
        unsafe { self.context.enqueue(self.io.stream())? };
        if !self.opts.no_transfers {
            self.io.copy_outputs()?;
        }
        Ok(())
    }

    fn run_plain(&mut self) -> Result<Timing> {
        let transfers = !self.opts.no_transfers;
        self.io.mark(Mark::Start)?;
        if transfers {
            self.io.copy_inputs()?;
        }
        self.io.mark(Mark::InputsCopied)?;
        // SAFETY: as in `issue`.
        unsafe { self.context.enqueue(self.io.stream())? };
        self.io.mark(Mark::Computed)?;
        if transfers {
            self.io.copy_outputs()?;
        }
        self.io.mark(Mark::OutputsCopied)?;
        self.io.wait(self.opts.spin_wait)?;
        let mut t = self.io.timing()?;
        if !transfers {
            t.h2d_ms = None;
            t.d2h_ms = None;
        }
        Ok(t)
    }

    /// The host side of tensor `name` (inputs before a run, outputs after one).
    pub fn host_mut(&mut self, name: &str) -> Result<&mut [u8]> {
        self.io.host_mut(name)
    }
}

/// Float values into `out` in TensorRT type `dtype` (zeros past the end of `vals`).
fn encode(dtype: &str, vals: &[f32], out: &mut [u8]) -> Result<()> {
    out.fill(0);
    match dtype {
        "float32" => out.chunks_exact_mut(4).zip(vals).for_each(|(o, x)| {
            o.copy_from_slice(&x.to_le_bytes());
        }),
        "float16" => out.chunks_exact_mut(2).zip(vals).for_each(|(o, x)| {
            o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes());
        }),
        other => {
            return Err(Error::Contract(format!(
                "engine input of type {other}: images are fed as float32 or float16"
            )))
        }
    }
    Ok(())
}

/// A TensorRT-typed buffer as float values.
fn decode(dtype: &str, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        "float32" => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect(),
        "float16" => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        "int32" => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32)
            .collect(),
        "int64" => bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        "int8" => bytes.iter().map(|b| *b as i8 as f32).collect(),
        "uint8" | "bool" => bytes.iter().map(|b| f32::from(*b)).collect(),
        other => {
            return Err(Error::Invalid(format!(
                "engine output of type {other} cannot be read as float"
            )))
        }
    })
}

/// Images through the engine (`trtforge run`/`eval --engine`): each input is copied into its
/// buffer in the engine's type; a short last batch is padded with zeros and its outputs cut
/// to the images it holds.
impl crate::exec::Infer for TrtExecutor<'_> {
    fn infer(
        &mut self,
        inputs: &[(&str, ndarray::ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, ndarray::ArrayD<f32>)>> {
        let mut images = None;
        for (name, x) in inputs {
            let b = self
                .bound
                .iter()
                .find(|b| b.is_input && b.name == *name)
                .ok_or_else(|| {
                    Error::Contract(format!("the engine has no input named '{name}'"))
                })?;
            let (want, got) = (&b.shape, x.shape());
            let fits = want.len() == got.len() && want[1..] == got[1..] && got[0] <= want[0];
            if !fits {
                return Err(Error::Contract(format!(
                    "input '{name}' is {got:?} but the engine runs {want:?}: build the engine for the recipe's input.shape"
                )));
            }
            images = Some(got[0]);
            let vals = x.as_standard_layout();
            let dtype = b.dtype;
            encode(
                dtype,
                vals.as_slice().expect("standard layout"),
                self.io.host_mut(name)?,
            )?;
        }
        self.run_plain()?;
        let mut out = vec![];
        for b in self.bound.iter().filter(|b| !b.is_input) {
            let vals = decode(b.dtype, self.io.host_mut(&b.name)?)?;
            let mut a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&b.shape), vals)
                .map_err(|e| Error::internal(format!("output '{}': {e}", b.name)))?;
            if let (Some(n), Some(&rows)) = (images, b.shape.first()) {
                if n < rows {
                    a = a
                        .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..n))
                        .to_owned();
                }
            }
            out.push((b.name.clone(), a));
        }
        Ok(out)
    }
}

impl Executor for TrtExecutor<'_> {
    fn info(&self) -> ExecutorInfo {
        self.info.clone()
    }

    fn run_once(&mut self) -> Result<Timing> {
        if !self.opts.cuda_graph {
            return self.run_plain();
        }
        self.io.mark(Mark::Start)?;
        self.io.replay()?;
        self.io.mark(Mark::OutputsCopied)?;
        self.io.wait(self.opts.spin_wait)?;
        self.io.timing()
    }
}

/// Load TensorRT, open GPU 0, check `path` against its manifest (TensorRT version, compute
/// capability, sha256), deserialize it (on its DLA core, set before deserializing) and hand
/// the engine to `f`. Logger, runtime and engine live for the call.
pub fn with_engine<R>(
    path: &Path,
    f: impl FnOnce(&Engine<'_>, &crate::cuda::Gpu) -> Result<R>,
) -> Result<R> {
    let library = crate::trt::load(&crate::trt::Libraries::from_env())?;
    let gpu = crate::cuda::Gpu::open(0)?;
    let (maj, min) = gpu.compute_capability()?;
    let rt = crate::build::Runtime {
        tensorrt: library.to_string(),
        compute_capability: format!("{maj}.{min}"),
    };
    let (manifest, bytes) = crate::build::load_checked_engine(path, &rt)?;
    let logger = crate::trt::Logger::to_log()?;
    let runtime = crate::trt::TrtRuntime::new(&logger)?;
    if let Some(core) = manifest.target.dla_core {
        runtime.set_dla_core(core)?;
    }
    let engine = runtime.deserialize(&bytes)?;
    drop(bytes);
    f(&engine, &gpu)
}

/// `f` with the engine at `path` as an [`crate::exec::Infer`] on GPU 0, its inputs run at
/// `batch` (the recipe's input.shape[0]): how `trtforge run` and `eval` take `--engine`.
pub fn infer_with_engine<R>(
    path: &Path,
    batch: usize,
    f: impl FnOnce(&mut dyn crate::exec::Infer) -> Result<R>,
) -> Result<R> {
    with_engine(path, |engine, gpu| {
        let io = super::cuda_io::CudaIo::new(gpu.clone())?;
        let opts = TrtOptions {
            batch: Some(batch),
            ..Default::default()
        };
        let mut exec = TrtExecutor::new(engine, path, Box::new(io), opts)?;
        f(&mut exec)
    })
}
