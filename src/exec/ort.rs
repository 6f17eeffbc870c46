//! ONNX Runtime on CPU, loaded at run time from the `onnxruntime` wheel's shared library.
//! It is the reference executor: `run`, `eval` and calibration use it, and it can expose any
//! intermediate tensor as an extra output (calibration needs every node output).

use crate::error::{Error, Result};
use crate::onnx::Model;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FIX: &str = "run `bash scripts/setup.sh` (installs the onnxruntime wheel into .venv) and \
`source scripts/env.sh`, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31";

/// Where the ONNX Runtime library is: ORT_DYLIB_PATH, else the project's `.venv`.
pub fn library_path() -> Result<PathBuf> {
    if let Some(p) = crate::env::var("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Unavailable {
                what: "ONNX Runtime".into(),
                why: format!("ORT_DYLIB_PATH={} is not a file", p.display()),
                fix: FIX.into(),
            })
        };
    }
    // Look for ./.venv from the current folder and from the executable's ancestors (a cargo
    // build lives in <project>/target/<profile>/).
    let mut roots = vec![std::env::current_dir().unwrap_or_default()];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let lib = root.join(".venv").join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for py in entries.flatten() {
            let capi = py.path().join("site-packages/onnxruntime/capi");
            if let Ok(files) = std::fs::read_dir(&capi) {
                let mut libs: Vec<PathBuf> = files
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("libonnxruntime.so."))
                    })
                    .collect();
                libs.sort();
                if let Some(l) = libs.pop() {
                    return Ok(l);
                }
            }
        }
    }
    Err(Error::Unavailable {
        what: "ONNX Runtime".into(),
        why: "ORT_DYLIB_PATH is not set and no .venv with the onnxruntime wheel was found".into(),
        fix: FIX.into(),
    })
}

/// Load the library once per process; later calls return the first outcome.
pub fn init() -> Result<Environment> {
    // (why, fix) of a failure, kept as text: the first outcome is every later call's.
    static INIT: OnceLock<std::result::Result<Environment, (String, String)>> = OnceLock::new();
    let outcome = INIT.get_or_init(|| {
        let path = library_path().map_err(|e| match e {
            Error::Unavailable { why, fix, .. } => (why, fix),
            other => (other.to_string(), FIX.to_string()),
        })?;
        let builder = ort::init_from(&path).map_err(|e| {
            (
                format!("cannot load {}: {e}", path.display()),
                FIX.to_string(),
            )
        })?;
        builder.with_name("trtforge").build().map_err(|e| {
            (
                format!("cannot create its environment: {e}"),
                FIX.to_string(),
            )
        })
    });
    outcome.clone().map_err(|(why, fix)| Error::Unavailable {
        what: "ONNX Runtime".into(),
        why,
        fix,
    })
}

/// Version of the ONNX Runtime library found (from its file name, e.g. 1.31.1) and its build
/// information string.
pub fn version() -> Result<(String, String)> {
    let path = library_path()?;
    init()?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let v = name
        .strip_prefix("libonnxruntime.so.")
        .unwrap_or("unknown")
        .to_string();
    Ok((v, ort::info().to_string()))
}

/// One ONNX Runtime CPU session.
pub struct OrtSession {
    session: Session,
    inputs: Vec<String>,
    outputs: Vec<String>,
    model: PathBuf,
}

impl OrtSession {
    /// Open `model`, adding `extra_outputs` (names of intermediate tensors) as graph outputs.
    pub fn open(model: &Path, extra_outputs: &[String]) -> Result<Self> {
        let m = Model::load(model)?;
        Self::from_model(&m, extra_outputs)
    }

    /// Open an in-memory model (for example one just rewritten), with extra outputs.
    pub fn from_model(model: &Model, extra_outputs: &[String]) -> Result<Self> {
        Self::build(model, extra_outputs, true)
    }

    /// A session for calibration: between runs the caller's own threads histogram the
    /// outputs, so ONNX Runtime's workers must stop spinning when a run returns.
    pub fn for_calibration(model: &Model, extra_outputs: &[String]) -> Result<Self> {
        Self::build(model, extra_outputs, false)
    }

    fn build(model: &Model, extra_outputs: &[String], spin: bool) -> Result<Self> {
        super::guarded(&model.path, || {
            Self::build_unguarded(model, extra_outputs, spin)
        })
    }

    fn build_unguarded(model: &Model, extra_outputs: &[String], spin: bool) -> Result<Self> {
        let env = init()?;
        let bytes = if extra_outputs.is_empty() {
            model.to_bytes()?
        } else {
            crate::onnx::with_extra_outputs(model, extra_outputs).to_bytes()?
        };
        let threads = crate::env::var("TRTFORGE_ORT_THREADS")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let ort_err = |e: ort::Error| {
            Error::ort(
                format!("{}: cannot create a session", model.path.display()),
                e,
            )
        };
        let mut builder = Session::builder(&env).map_err(ort_err)?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(|e| ort_err(e.into()))?;
        }
        if !spin {
            // Spin inside a run (parking workers between its ~200 small kernels costs ~30%),
            // but stop as soon as it returns, leaving the cores to the histograms.
            builder = builder
                .with_config_entry("session.force_spinning_stop", "1")
                .map_err(|e| ort_err(e.into()))?;
        }
        let session = builder.commit_from_memory(&bytes).map_err(ort_err)?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(OrtSession {
            session,
            inputs,
            outputs,
            model: model.path.clone(),
        })
    }

    pub fn input_names(&self) -> Vec<String> {
        self.inputs.clone()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.outputs.clone()
    }

    /// Declared shape of an input (-1 for dynamic dimensions), if it is a tensor.
    pub fn input_shape(&self, name: &str) -> Option<Vec<i64>> {
        super::guarded(&self.model, || {
            Ok(self
                .session
                .inputs()
                .iter()
                .find(|o| o.name() == name)
                .and_then(|o| match o.dtype() {
                    ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
                    _ => None,
                }))
        })
        .ok()
        .flatten()
    }

    /// Estimated bytes of each output (in `output_names` order) for inputs of the `probe`
    /// shapes, from the shapes ONNX Runtime inferred when it loaded the model: a dynamic
    /// dimension that carries an input's symbol (`batch`) takes that input's size, any
    /// other counts as 1, and the flag says whether any did. Exact for static graphs (and for
    /// a model opened through [`crate::onnx::with_fixed_inputs`]); the basis of the memory
    /// checks.
    pub fn output_estimates(
        &self,
        probe: &BTreeMap<String, Vec<usize>>,
    ) -> Result<(Vec<u64>, bool)> {
        super::guarded(&self.model, || {
            let mut symbols: HashMap<&str, u64> = HashMap::new();
            for i in self.session.inputs() {
                if let (
                    ValueType::Tensor {
                        dimension_symbols, ..
                    },
                    Some(dims),
                ) = (i.dtype(), probe.get(i.name()))
                {
                    for (sym, &d) in dimension_symbols.iter().zip(dims) {
                        if !sym.is_empty() {
                            symbols.insert(sym.as_str(), d as u64);
                        }
                    }
                }
            }
            let mut exact = true;
            let sizes = self
                .session
                .outputs()
                .iter()
                .map(|o| match o.dtype() {
                    ValueType::Tensor {
                        ty,
                        shape,
                        dimension_symbols,
                    } => {
                        let count = shape.iter().zip(dimension_symbols.iter()).fold(
                            1u64,
                            |acc, (&d, sym)| {
                                let d = if d >= 0 {
                                    d as u64
                                } else if let Some(&s) = symbols.get(sym.as_str()) {
                                    s
                                } else {
                                    exact = false;
                                    1
                                };
                                acc.saturating_mul(d)
                            },
                        );
                        let width = ty.byte_size(1).unwrap_or(4).max(1) as u64;
                        count.saturating_mul(width)
                    }
                    _ => 0,
                })
                .collect();
            Ok((sizes, exact))
        })
    }

    /// Inputs as ONNX Runtime values, refusing names the model does not have.
    fn values<'v>(
        &self,
        inputs: &'v [(&str, ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, TensorRef<'v, f32>)>> {
        inputs
            .iter()
            .map(|(name, view)| {
                if !self.inputs.iter().any(|i| i == name) {
                    return Err(Error::Contract(format!(
                        "{}: the model has no input '{name}' (inputs: {}); fix input.tensor in the recipe",
                        self.model.display(),
                        self.inputs.join(", ")
                    )));
                }
                let t = TensorRef::from_array_view(view.view()).map_err(|e| Error::ort(format!("input '{name}'"), e))?;
                Ok((name.to_string(), t))
            })
            .collect()
    }

    /// Run with f32 inputs; returns every float output in `output_names` order (non-float
    /// outputs, such as shape tensors, are skipped).
    pub fn run(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, ArrayD<f32>)>> {
        let values = self.values(inputs)?;
        let outputs = self
            .session
            .run(values)
            .map_err(|e| Error::ort(format!("{}: run failed", self.model.display()), e))?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let Some(v) = outputs.get(name.as_str()) else {
                continue;
            };
            if let Ok(a) = v.try_extract_array::<f32>() {
                result.push((name.clone(), a.to_owned()));
            }
        }
        Ok(result)
    }

    /// Run and hand all float outputs to `visit` at once as borrowed views (no copy), in
    /// `output_names` order: calibration histograms hundreds of intermediate tensors per image.
    pub fn run_with<R>(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
        visit: impl FnOnce(&[(&str, ArrayViewD<'_, f32>)]) -> Result<R>,
    ) -> Result<R> {
        let values = self.values(inputs)?;
        let outputs = self
            .session
            .run(values)
            .map_err(|e| Error::ort(format!("{}: run failed", self.model.display()), e))?;
        let mut views = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            if let Some(v) = outputs.get(name.as_str()) {
                if let Ok(a) = v.try_extract_array::<f32>() {
                    views.push((name.as_str(), a));
                }
            }
        }
        visit(&views)
    }

    /// Shapes of every output for one run on `inputs` (any dtype), for shape probing.
    pub fn run_shapes(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
    ) -> Result<Vec<(String, Vec<usize>)>> {
        let values = self.values(inputs)?;
        let model = self.model.clone();
        let names = self.outputs.clone();
        let session = &mut self.session;
        super::guarded(&self.model, move || {
            let outputs = session
                .run(values)
                .map_err(|e| Error::ort(format!("{}: run failed", model.display()), e))?;
            let mut shapes = Vec::new();
            for name in &names {
                if let Some(v) = outputs.get(name.as_str()) {
                    if let ValueType::Tensor { shape, .. } = v.dtype() {
                        shapes.push((
                            name.clone(),
                            shape.iter().map(|&d| d.max(0) as usize).collect(),
                        ));
                    }
                }
            }
            Ok(shapes)
        })
    }
}

/// Shapes from one ONNX Runtime run on zeros, every node output returned: exact for every op.
pub struct OrtShapes;

impl crate::onnx::ShapeSource for OrtShapes {
    fn tensor_shapes(
        &self,
        model: &Model,
        inputs: &BTreeMap<String, Vec<usize>>,
    ) -> Result<HashMap<String, Vec<usize>>> {
        let names: Vec<String> = model
            .proto
            .graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().cloned())
            .filter(|o| !o.is_empty())
            .collect();
        for (n, s) in inputs {
            let count = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if count.is_none_or(|c| c > 1 << 28) {
                return Err(Error::Contract(format!(
                    "{}: input '{n}' of shape {s:?} is too large to probe (more than 2^28 values); give a realistic --shape",
                    model.path.display()
                )));
            }
        }
        let arrays: Vec<(String, ArrayD<f32>)> =
            inputs.iter().map(|(n, s)| (n.clone(), zeros(s))).collect();
        let views: Vec<(&str, ArrayViewD<f32>)> =
            arrays.iter().map(|(n, a)| (n.as_str(), a.view())).collect();
        // Inputs declared at the probed shapes: ONNX Runtime then infers the size of every
        // tensor that does not depend on data, and the estimate below is exact for those.
        let fixed = crate::onnx::with_fixed_inputs(model, inputs);
        let mut session = OrtSession::from_model(&fixed, &names)?;
        let (sizes, _) = session.output_estimates(inputs)?;
        let budget = crate::util::memory::budget();
        if sizes.iter().fold(0u64, |a, &b| a.saturating_add(b)) <= budget {
            return Ok(session.run_shapes(&views)?.into_iter().collect());
        }
        // Every output returned at once would not fit (a graph of many thousand tensors):
        // probe in chunks that do, one session each. Each chunk also returns the model's
        // own outputs, so they count in every chunk.
        let size_of: HashMap<String, u64> = session.output_names().into_iter().zip(sizes).collect();
        drop(session);
        let own = model
            .proto
            .graph
            .output
            .iter()
            .map(|o| size_of.get(&o.name).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        let mut shapes = HashMap::new();
        let mut chunk: Vec<String> = Vec::new();
        let mut chunk_bytes = own;
        for (i, name) in names.iter().enumerate() {
            let bytes = size_of.get(name).copied().unwrap_or(0);
            crate::util::memory::check_within(
                &model.path,
                &format!(
                    "the tensor '{}' at the probed input shapes",
                    crate::util::clip(name, 100)
                ),
                own.saturating_add(bytes),
                budget,
                "give a smaller --shape",
            )?;
            if chunk_bytes.saturating_add(bytes) > budget && !chunk.is_empty() {
                probe_chunk(&fixed, &std::mem::take(&mut chunk), &views, &mut shapes)?;
                chunk_bytes = own;
            }
            chunk.push(name.clone());
            chunk_bytes = chunk_bytes.saturating_add(bytes);
            if i + 1 == names.len() {
                probe_chunk(&fixed, &std::mem::take(&mut chunk), &views, &mut shapes)?;
            }
        }
        Ok(shapes)
    }
}

/// One chunk of a probe: a session returning `names` (and the model's outputs).
fn probe_chunk(
    model: &Model,
    names: &[String],
    views: &[(&str, ArrayViewD<f32>)],
    shapes: &mut HashMap<String, Vec<usize>>,
) -> Result<()> {
    let mut session = OrtSession::from_model(model, names)?;
    shapes.extend(session.run_shapes(views)?);
    Ok(())
}

/// A zero tensor of the given shape, for probes.
pub fn zeros(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::zeros(IxDyn(shape))
}
