//! ONNX Runtime on CPU as a bench [`Executor`]: one fixed input tensor (seeded random values in
//! the raw pixel range 0..255, or a caller-provided tensor) fed on every iteration.

use super::harness::{Executor, ExecutorInfo, Timing};
use crate::exec::OrtSession;
use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

pub use crate::util::sha256_file;

/// Resolve a concrete input shape: symbolic dims take `batch` for dim 0 and are otherwise an
/// error naming the fix; a fixed batch that differs from `batch` is an error.
pub fn resolve_shape(
    model: &Path,
    dims: &[Option<usize>],
    batch: Option<usize>,
) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        out.push(match (i, d, batch) {
            (0, Some(n), Some(b)) if *n != b => {
                return Err(Error::Contract(format!(
                    "{}: input batch is fixed at {n}; --batch {b} needs a model exported with a dynamic batch",
                    model.display()
                )))
            }
            (_, Some(n), _) => *n,
            (0, None, b) => b.unwrap_or(1),
            (_, None, _) => {
                return Err(Error::Contract(format!(
                    "{}: input dimension {i} is symbolic; bench it through a recipe whose input.shape fixes it",
                    model.display()
                )))
            }
        });
    }
    Ok(out)
}

/// Deterministic input values in [0, 255) from a 64-bit seed (SplitMix64), so two runs feed
/// the same bytes.
pub fn seeded_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut s = seed;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 255.0
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches shape")
}

pub struct OrtExecutor {
    session: OrtSession,
    input_name: String,
    input: ArrayD<f32>,
    info: ExecutorInfo,
}

impl OrtExecutor {
    /// Open `model` and feed `input` (tensor name, values) on every run.
    pub fn open(model: &Path, input_name: &str, input: ArrayD<f32>) -> Result<Self> {
        Self::with_session(OrtSession::open(model, &[])?, model, input_name, input)
    }

    fn with_session(
        session: OrtSession,
        model: &Path,
        input_name: &str,
        input: ArrayD<f32>,
    ) -> Result<Self> {
        if !session.input_names().iter().any(|n| n == input_name) {
            return Err(Error::Contract(format!(
                "{}: no input named '{input_name}' (inputs: {})",
                model.display(),
                session.input_names().join(", ")
            )));
        }
        let info = ExecutorInfo {
            backend: "ort-cpu".into(),
            artifact: PathBuf::from(model),
            artifact_sha256: sha256_file(model)?,
            input_name: input_name.to_string(),
            input_shape: input.shape().to_vec(),
            notes: vec!["ONNX Runtime CPU execution provider".into()],
        };
        Ok(OrtExecutor {
            session,
            input_name: input_name.to_string(),
            input,
            info,
        })
    }

    /// Open `model` and feed seeded random values to its first input, its shape taken from
    /// the model (a symbolic batch becomes `batch`, default 1).
    pub fn open_model(model: &Path, batch: Option<usize>, seed: u64) -> Result<Self> {
        let session = OrtSession::open(model, &[])?;
        let name = session
            .input_names()
            .into_iter()
            .next()
            .ok_or_else(|| Error::Onnx {
                path: model.to_path_buf(),
                msg: "the model has no input".into(),
            })?;
        let dims: Vec<Option<usize>> = session
            .input_shape(&name)
            .ok_or_else(|| {
                Error::Contract(format!(
                    "{}: input '{name}' is not a tensor",
                    model.display()
                ))
            })?
            .iter()
            .map(|&d| (d > 0).then_some(d as usize))
            .collect();
        let shape = resolve_shape(model, &dims, batch)?;
        let mut e = Self::with_session(session, model, &name, seeded_input(&shape, seed))?;
        e.info
            .notes
            .push(format!("input: uniform [0, 255) values, seed {seed}"));
        Ok(e)
    }

    /// Open with seeded random input of `shape`.
    pub fn open_seeded(model: &Path, input_name: &str, shape: &[usize], seed: u64) -> Result<Self> {
        let mut e = Self::open(model, input_name, seeded_input(shape, seed))?;
        e.info
            .notes
            .push(format!("input: uniform [0, 255) values, seed {seed}"));
        Ok(e)
    }
}

impl Executor for OrtExecutor {
    fn info(&self) -> ExecutorInfo {
        self.info.clone()
    }

    fn run_once(&mut self) -> Result<Timing> {
        let out = self
            .session
            .run(&[(self.input_name.as_str(), self.input.view())])?;
        // Outputs are on the host when run returns; dropping them is part of the cost a real
        // caller pays too.
        drop(out);
        Ok(Timing::HOST_ONLY)
    }
}
