//! The CPU part of `trtforge build` (always compiled): validate the recipe against the model,
//! hash the inputs, find Q/DQ nodes and decide how INT8 is obtained. Runs without TensorRT.

use super::settings::EngineSettings;
use crate::error::{Error, Result};
use crate::onnx::Graph;
use crate::recipe::{BuildJob, Precision};
use serde::Serialize;
use std::path::PathBuf;

/// How the engine gets its INT8 scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Int8Source {
    /// FP32/FP16: none needed.
    None,
    /// Implicit quantization through the calibrator bridge (TensorRT 8.5 to 10.x).
    Calibrator,
    /// The model carries Q/DQ nodes: no calibrator, strongly typed where the version has it.
    ExplicitQdq,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    pub recipe: PathBuf,
    pub model: PathBuf,
    pub engine: PathBuf,
    pub onnx_sha256: String,
    pub recipe_sha256: String,
    pub precision: Precision,
    pub tensorrt: String,
    pub qdq_nodes: usize,
    pub int8: Int8Source,
    /// Graph inputs (name, dims; 0 or negative = dynamic).
    pub inputs: Vec<(String, Vec<i64>)>,
    /// Layers (ONNX node names) the precision plan keeps in FP16 on the calibrator path.
    pub fp16_layers: Vec<String>,
    /// TensorRT 11 fp16/best: the FP16 rewrite of the model the parser reads instead
    /// (written by the build before TensorRT runs).
    pub fp16_model: Option<PathBuf>,
    /// What the build asks TensorRT for, decided for the recipe's `target.tensorrt` (the
    /// build decides again for the loaded library).
    pub settings: Option<EngineSettings>,
    /// CPU steps done, in order, for the report.
    pub steps: Vec<String>,
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Fp32 => "fp32",
        Precision::Fp16 => "fp16",
        Precision::Int8 => "int8",
        Precision::Best => "best",
    }
}

impl BuildPlan {
    pub fn precision_name(&self) -> &'static str {
        precision_name(self.precision)
    }
}

/// Validate and plan; every error names the recipe field or file and the fix.
pub fn plan(job: &BuildJob) -> Result<BuildPlan> {
    let origin = &job.origin;
    let mut steps = vec![format!("recipe {} validated", origin.path.display())];
    let model = job.model.path.clone();
    let onnx_sha256 = crate::util::sha256_file(&model)?;
    let graph = Graph::new(&job.model);
    let inputs: Vec<(String, Vec<i64>)> = graph
        .real_inputs()
        .into_iter()
        .map(|i| {
            let dims = i
                .type_
                .get_or_default()
                .tensor_type()
                .shape
                .get_or_default()
                .dim
                .iter()
                .map(|d| if d.has_dim_value() { d.dim_value() } else { -1 })
                .collect();
            (i.name.clone(), dims)
        })
        .collect();
    let qdq_nodes = graph
        .nodes()
        .filter(|(_, n)| n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear")
        .count();
    steps.push(format!(
        "model {} read: sha256 {}, {} nodes, {qdq_nodes} Q/DQ",
        model.display(),
        &onnx_sha256[..12],
        graph.len()
    ));
    let version = job.target.tensorrt;
    let int8 = match (job.precision, qdq_nodes > 0) {
        // Q/DQ nodes quantize whatever the precision: TensorRT runs them in INT8.
        (_, true) => Int8Source::ExplicitQdq,
        (Precision::Fp32 | Precision::Fp16, false) => Int8Source::None,
        (_, false) if !version.has_calibrator() => {
            return Err(origin.field_error(
                "precision",
                format!(
                    "TensorRT {version} has no calibrator: INT8 needs a Q/DQ model (export one with `trtforge quantize`)"
                ),
            ))
        }
        (_, false) if job.calibration.is_none() => {
            return Err(origin.field_error(
                "calibration",
                "INT8 without Q/DQ nodes needs a calibration section (images, batch_size)",
            ))
        }
        (_, false) => Int8Source::Calibrator,
    };
    steps.push(format!("INT8 source: {int8:?}"));
    if int8 == Int8Source::ExplicitQdq && matches!(job.precision, Precision::Fp32 | Precision::Fp16)
    {
        steps.push(format!(
            "the model's Q/DQ nodes run INT8; precision {} applies to the other layers",
            precision_name(job.precision)
        ));
    }
    let fp16_layers = precision_plan_layers(job, &graph, int8, &mut steps)?;
    let fp16_model = (version.always_strongly_typed()
        && matches!(job.precision, Precision::Fp16 | Precision::Best))
    .then(|| fp16_model_path(&job.engine));
    let mut p = BuildPlan {
        recipe: origin.path.clone(),
        model,
        engine: job.engine.clone(),
        onnx_sha256,
        recipe_sha256: origin.sha256(),
        precision: job.precision,
        tensorrt: version.to_string(),
        qdq_nodes,
        int8,
        inputs,
        fp16_layers,
        fp16_model,
        settings: None,
        steps,
    };
    // Every builder field is checked here, without TensorRT, for the recipe's version.
    p.settings = Some(super::settings::settings(job, &p, version)?);
    Ok(p)
}

/// `<engine stem>.fp16.onnx` beside the engine.
pub fn fp16_model_path(engine: &std::path::Path) -> PathBuf {
    let stem = engine
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    engine.with_file_name(format!("{stem}.fp16.onnx"))
}

/// `builder.precision_plan` and the layers it keeps in FP16, checked against the model's
/// nodes; `None` when the recipe names no plan.
fn read_precision_plan(
    job: &BuildJob,
    graph: &Graph,
) -> Result<Option<(PathBuf, std::collections::BTreeSet<String>)>> {
    let Some(path) = job.builder.precision_plan.clone() else {
        return Ok(None);
    };
    if !path.is_file() {
        return Err(job.origin.field_error(
            "builder.precision_plan",
            format!(
                "{} does not exist; write it with `trtforge quantize` or fix the path",
                path.display()
            ),
        ));
    }
    let keep = crate::quant::PrecisionPlan::read(&path)?.keep_set();
    // Layers are matched by the name TensorRT's parser gives them (node_key).
    let nodes: std::collections::HashSet<String> =
        graph.nodes().map(|(id, _)| graph.key(id)).collect();
    if let Some(missing) = keep.iter().find(|k| !nodes.contains(*k)) {
        return Err(Error::Invalid(format!(
            "{}: layer '{missing}' is not a node of {}; the plan was made for another model: rerun `trtforge quantize` for this recipe",
            path.display(),
            job.model.path.display()
        )));
    }
    Ok(Some((path, keep)))
}

/// What `trtforge check` verifies of a build before any build: the precision plan the
/// recipe names exists, parses and fits the model.
pub fn check_precision_plan(job: &BuildJob) -> Result<()> {
    read_precision_plan(job, &Graph::new(&job.model)).map(|_| ())
}

/// The layers `builder.precision_plan` keeps in FP16, checked against the model's nodes.
/// Only the calibrator path applies them: a Q/DQ model already leaves them unquantized, and
/// FP32/FP16 builds have no INT8 layer to keep out.
fn precision_plan_layers(
    job: &BuildJob,
    graph: &Graph,
    int8: Int8Source,
    steps: &mut Vec<String>,
) -> Result<Vec<String>> {
    let Some((path, keep)) = read_precision_plan(job, graph)? else {
        return Ok(vec![]);
    };
    if int8 != Int8Source::Calibrator {
        steps.push(format!(
            "precision plan {} not applied: {}",
            path.display(),
            match int8 {
                Int8Source::ExplicitQdq => "the Q/DQ model already keeps its layers unquantized",
                _ => "no INT8 layers in this build",
            }
        ));
        return Ok(vec![]);
    }
    steps.push(format!(
        "precision plan {}: {} layers pinned to FP16 ({})",
        path.display(),
        keep.len(),
        keep.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    Ok(keep.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shared_model() -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/models/yolox_nano/yolox_nano.onnx");
        if p.exists() {
            return Some(p.canonicalize().unwrap());
        }
        assert!(!crate::env::in_ci(), "{} is missing (CI=true)", p.display());
        eprintln!("skipping: {} not found", p.display());
        None
    }

    fn job(dir: &Path, model: &Path, extra: &str) -> Result<BuildJob> {
        recipe(dir, model, extra).build_job()
    }

    fn recipe(dir: &Path, model: &Path, extra: &str) -> crate::recipe::LoadedRecipe {
        let text = format!(
            "model: {}\ninput:\n  tensor: images\n  shape: [1, 3, 416, 416]\n  channel_order: bgr\n  resize: letterbox-top-left\n  pad_value: 114\n{extra}",
            model.display()
        );
        let path = dir.join("yolox.yaml");
        std::fs::write(&path, &text).unwrap();
        crate::recipe::LoadedRecipe::load(&path).unwrap()
    }

    #[test]
    fn plans_the_real_yolox_model() {
        let Some(model) = shared_model() else { return };
        let dir = tempfile::tempdir().unwrap();
        let p = plan(&job(dir.path(), &model, "precision: fp16\n").unwrap()).unwrap();
        assert_eq!(p.int8, Int8Source::None);
        assert_eq!(p.qdq_nodes, 0);
        assert_eq!(p.inputs, vec![("images".to_string(), vec![1, 3, 416, 416])]);
        assert_eq!(
            p.onnx_sha256,
            crate::util::sha256_hex(&std::fs::read(&model).unwrap())
        );
        assert!(p.engine.ends_with("yolox.engine"));
    }

    #[test]
    fn int8_needs_calibration_or_qdq() {
        let Some(model) = shared_model() else { return };
        let dir = tempfile::tempdir().unwrap();
        let e = plan(&job(dir.path(), &model, "precision: int8\n").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("calibration") && e.contains("yolox.yaml"), "{e}");
        let e = plan(
            &job(
                dir.path(),
                &model,
                "precision: int8\ntarget:\n  tensorrt: '11.0'\n",
            )
            .unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no calibrator") && e.contains("Q/DQ"), "{e}");
        let ok = plan(
            &job(
                dir.path(),
                &model,
                "precision: int8\ncalibration:\n  images: imgs\n",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(ok.int8, Int8Source::Calibrator);
    }

    #[test]
    fn wrong_input_name_names_the_field_and_the_real_inputs() {
        let Some(model) = shared_model() else { return };
        let dir = tempfile::tempdir().unwrap();
        let mut r = recipe(dir.path(), &model, "");
        r.recipe.input.tensor = "input.1".into();
        let e = r.build_job().unwrap_err().to_string();
        assert!(e.contains("input.tensor") && e.contains("images"), "{e}");
    }

    fn write_plan(dir: &Path, nodes: &[&str]) -> PathBuf {
        let plan = crate::quant::PrecisionPlan {
            model: "yolox_nano.onnx".into(),
            keep_precision: "fp16".into(),
            keep: nodes
                .iter()
                .enumerate()
                .map(|(rank, n)| crate::quant::plan::KeptLayer {
                    node: n.to_string(),
                    op: "Conv".into(),
                    macs: 0,
                    rank,
                    gain: 0.1,
                    why: "test".into(),
                })
                .collect(),
            max_map_drop: 0.015,
            gate_met: true,
            int8_mac_share: 0.99,
        };
        let p = dir.join("precision_plan.json");
        std::fs::write(&p, serde_json::to_string(&plan).unwrap()).unwrap();
        p
    }

    #[test]
    fn precision_plan_pins_its_layers_on_the_calibrator_path_only() {
        let Some(model) = shared_model() else { return };
        let dir = tempfile::tempdir().unwrap();
        write_plan(dir.path(), &["Conv_44", "Conv_70"]);
        let int8 = "precision: int8
calibration:
  images: imgs
builder:
  precision_plan: precision_plan.json
";
        let p = plan(&job(dir.path(), &model, int8).unwrap()).unwrap();
        assert_eq!(p.fp16_layers, ["Conv_44", "Conv_70"]);
        assert!(
            p.steps
                .iter()
                .any(|s| s.contains("2 layers pinned to FP16")),
            "{:?}",
            p.steps
        );
        // FP16 builds have nothing to keep out of INT8.
        let fp16 = "precision: fp16
builder:
  precision_plan: precision_plan.json
";
        let p = plan(&job(dir.path(), &model, fp16).unwrap()).unwrap();
        assert!(p.fp16_layers.is_empty());
        assert!(
            p.steps.iter().any(|s| s.contains("not applied")),
            "{:?}",
            p.steps
        );
        // A plan naming a node this model lacks was made for another model.
        write_plan(dir.path(), &["Conv_44", "Conv_9999"]);
        let e = plan(&job(dir.path(), &model, int8).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Conv_9999") && e.contains("precision_plan.json"),
            "{e}"
        );
        // A corrupt plan names the file and what it should be.
        std::fs::write(dir.path().join("precision_plan.json"), "{\"keep\": [").unwrap();
        let e = plan(&job(dir.path(), &model, int8).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("precision_plan.json") && e.contains("written by `trtforge quantize`"),
            "{e}"
        );
        // A missing plan names the recipe field.
        std::fs::remove_file(dir.path().join("precision_plan.json")).unwrap();
        let e = plan(&job(dir.path(), &model, int8).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("builder.precision_plan") && e.contains("trtforge quantize"),
            "{e}"
        );
    }
}
