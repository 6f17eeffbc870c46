//! Cells and the stages they share, content-addressed. An id is the sha256 of a JSON document
//! of everything the artifacts depend on: the effective recipe with its paths replaced by the
//! content hashes of what they name (model, images, labels), the ids of the stages it builds
//! on, the target, the bench settings and trtforge's version. Equal inputs give equal ids on
//! any runner and any checkout folder; a changed image changes exactly the ids that read it.
//!
//! Stages run once per id in `prepare` (any x86 runner), cells on their device:
//! - `reference`: FP32 mAP on the recipe's eval set and an ONNX Runtime CPU bench;
//! - `calibration`: the calibrator's cache and ranges (per TensorRT version: the header);
//! - `qdq`: `trtforge quantize` on that calibration, and the Q/DQ model's mAP and CPU bench.

use super::spec::{recipe_name, Accelerator, CellPrecision, LoadedMatrix, TargetSpec};
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::eval::labels::label_path;
use crate::recipe::{Device, LoadedRecipe, Precision};
use crate::trt::TrtVersion;
use crate::util::{sha256_file, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the id documents and the store's JSON: a change re-plans every cell.
pub const SCHEMA_VERSION: u32 = 1;

pub fn tool_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Reference,
    Calibration,
    Qdq,
}

impl StageKind {
    /// The name the store records (`entry.json`'s `kind`), as serde writes it.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Reference => "reference",
            StageKind::Calibration => "calibration",
            StageKind::Qdq => "qdq",
        }
    }
}

/// A device-independent stage, shared by every cell that names its id.
#[derive(Debug, Clone)]
pub struct Stage {
    pub kind: StageKind,
    pub id: String,
    /// The document the id hashes.
    pub inputs: Value,
    /// The recipe it runs (a cell's effective recipe).
    pub recipe: LoadedRecipe,
    /// Stages whose files it starts from (qdq: its calibration).
    pub needs: Vec<String>,
}

impl Stage {
    fn new(kind: StageKind, inputs: Value, recipe: LoadedRecipe, needs: Vec<String>) -> Stage {
        Stage {
            kind,
            id: id_of(&inputs),
            inputs,
            recipe,
            needs,
        }
    }
}

/// One (recipe, precision, target, accelerator).
#[derive(Debug, Clone)]
pub struct Cell {
    pub id: String,
    /// `recipe/precision/device-class/accelerator`: stable across nights, the key nights are
    /// compared by (the id changes whenever an input does).
    pub name: String,
    pub recipe_name: String,
    pub precision: CellPrecision,
    pub target: TargetSpec,
    pub accelerator: Accelerator,
    /// The recipe with the matrix's precision and target applied.
    pub recipe: LoadedRecipe,
    pub reference: String,
    /// The calibration stage (int8, best) or the qdq stage (int8-qdq).
    pub int8_stage: Option<String>,
    pub inputs: Value,
}

/// Every cell of a matrix and the stages they need.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cells: Vec<Cell>,
    pub stages: BTreeMap<String, Stage>,
}

impl Plan {
    pub fn cell(&self, id: &str) -> Result<&Cell> {
        let hits: Vec<&Cell> = self.cells.iter().filter(|c| c.id.starts_with(id)).collect();
        match hits.as_slice() {
            [c] if !id.is_empty() => Ok(c),
            [] | [_] => Err(Error::Invalid(format!(
                "no cell '{id}' in this matrix (ids change when an input changes): run `trtforge matrix plan` for the current ids"
            ))),
            _ => Err(Error::Invalid(format!(
                "'{id}' is the start of {} cell ids; give more of it",
                hits.len()
            ))),
        }
    }

    /// Stages in an order where each comes after those it needs.
    pub fn stages_in_order(&self) -> Vec<&Stage> {
        let mut v: Vec<&Stage> = self.stages.values().collect();
        v.sort_by_key(|s| (s.kind, s.id.clone()));
        v
    }
}

/// The id of a document: sha256 of its compact JSON (serde_json keeps key order as written,
/// and every document here is built in one fixed order).
fn id_of(doc: &Value) -> String {
    sha256_hex(doc.to_string().as_bytes())
}

/// Hashes of a set's images, in the set's order.
fn images_doc(set: &ImageSet) -> Result<Value> {
    let mut v = Vec::with_capacity(set.len());
    for p in set.paths() {
        v.push(Value::String(crate::util::image_content_id(p)?));
    }
    Ok(Value::Array(v))
}

/// Hashes of the label file of each image (`null` where an image has none).
fn labels_doc(set: &ImageSet, labels: &Path) -> Result<Value> {
    let mut v = Vec::with_capacity(set.len());
    for p in set.paths() {
        let l = label_path(labels, p);
        v.push(if l.is_file() {
            Value::String(sha256_file(&l)?)
        } else {
            Value::Null
        });
    }
    Ok(Value::Array(v))
}

/// The recipe as JSON without the fields that name files (their content is hashed
/// separately) or only say where outputs go.
fn normalized(r: &LoadedRecipe) -> Result<Value> {
    let mut v = serde_json::to_value(&r.recipe)
        .map_err(|e| Error::internal(format!("recipe to JSON: {e}")))?;
    let drop = [
        &["model"][..],
        &["output"],
        &["calibration", "images"],
        &["eval", "images"],
        &["eval", "labels"],
        &["quantize", "validation", "images"],
        &["quantize", "validation", "labels"],
        &["builder", "timing_cache"],
        &["builder", "precision_plan"],
        &["builder", "engine"],
    ];
    for path in drop {
        let (last, parents) = path.split_last().expect("non-empty");
        let parent = parents.iter().try_fold(&mut v, |at, p| at.get_mut(*p));
        if let Some(o) = parent.and_then(Value::as_object_mut) {
            o.remove(*last);
        }
    }
    Ok(v)
}

/// The recipe as a cell of this precision and target runs it.
fn effective(
    base: &LoadedRecipe,
    p: CellPrecision,
    t: &TargetSpec,
    a: Accelerator,
) -> LoadedRecipe {
    let mut e = base.clone();
    let r = &mut e.recipe;
    r.precision = match p {
        CellPrecision::Fp16 => Precision::Fp16,
        CellPrecision::Int8 | CellPrecision::Int8Qdq => Precision::Int8,
        CellPrecision::Best => Precision::Best,
    };
    r.target.device = match a {
        Accelerator::Gpu => Device::Gpu,
        _ => Device::Dla,
    };
    r.target.dla_core = a.dla_core();
    r.target.tensorrt = t.tensorrt;
    // What a precision does not read is not part of its cell.
    if !matches!(p, CellPrecision::Int8 | CellPrecision::Best) {
        r.calibration = None;
    }
    if p != CellPrecision::Int8Qdq {
        r.quantize = None;
    }
    // A timing cache is runner-local state outside the id (and shared by parallel cells):
    // cells build without one, so an engine depends only on what the id hashes.
    r.builder.timing_cache = None;
    e
}

/// The model's content hash: the file's sha256, or, when its weights live in external data
/// files, the sha256 of the model with that data inlined (new weights, new id).
fn model_digest(path: &Path) -> Result<String> {
    let file = sha256_file(path)?;
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let m = crate::onnx::Model::load(path)?;
    let bytes = m.to_bytes()?;
    Ok(if bytes.len() as u64 > size {
        sha256_hex(&bytes)
    } else {
        file
    })
}

/// Expand the matrix into cells (exclusions applied) and the stages they need.
pub fn expand(m: &LoadedMatrix) -> Result<Plan> {
    let mut stages = BTreeMap::new();
    let mut cells = Vec::new();
    for base in &m.recipes {
        let name = recipe_name(base);
        let model_sha = model_digest(&base.model_path())?;
        // One calibration (and Q/DQ) stage per TensorRT version, whatever the cells using it.
        let mut int8_stages: BTreeMap<(TrtVersion, bool), String> = BTreeMap::new();
        let reference = reference_stage(base, &model_sha, m)?;
        let reference_id = reference.id.clone();
        stages.entry(reference.id.clone()).or_insert(reference);
        for t in &m.spec.targets {
            for &a in &t.accelerators {
                for &p in &m.spec.precisions {
                    if m.excluded(&name, p, &t.device, a) {
                        continue;
                    }
                    check_recipe_supports(m, base, &name, p)?;
                    if matches!(p, CellPrecision::Int8 | CellPrecision::Best)
                        && !t.tensorrt.has_calibrator()
                    {
                        return Err(m.field_error(
                            "precisions",
                            format!(
                                "precision {} uses the INT8 calibrator, which TensorRT {} (target {}) no longer has; use int8-qdq there, or exclude {{precision: {}, target: {}}}",
                                p.name(), t.tensorrt, t.device, p.name(), t.device
                            ),
                        ));
                    }
                    let recipe = effective(base, p, t, a);
                    let int8_stage = if p.needs_calibration() {
                        // The calibrator's cache carries the target's TensorRT version; the
                        // Q/DQ model does not, so every target shares one, quantized from a
                        // calibration for the recipe's own version.
                        let version = match p {
                            CellPrecision::Int8Qdq => base.recipe.target.tensorrt,
                            _ => t.tensorrt,
                        };
                        let qdq = p == CellPrecision::Int8Qdq;
                        let cal_id = match int8_stages.get(&(version, false)) {
                            Some(id) => id.clone(),
                            None => {
                                let cal = calibration_stage(base, &model_sha, version)?;
                                let id = cal.id.clone();
                                stages.entry(id.clone()).or_insert(cal);
                                int8_stages.insert((version, false), id.clone());
                                id
                            }
                        };
                        if qdq {
                            match int8_stages.get(&(version, true)) {
                                Some(id) => Some(id.clone()),
                                None => {
                                    let q = qdq_stage(&stages[&cal_id], m)?;
                                    let id = q.id.clone();
                                    stages.entry(id.clone()).or_insert(q);
                                    int8_stages.insert((version, true), id.clone());
                                    Some(id)
                                }
                            }
                        } else {
                            Some(cal_id)
                        }
                    } else {
                        None
                    };
                    let plan_sha = match &recipe.recipe.builder.precision_plan {
                        Some(pp) => Some(sha256_file(&recipe.resolve(pp))?),
                        None => None,
                    };
                    let inputs = json!({
                        "schema_version": SCHEMA_VERSION,
                        "trtforge": tool_version(),
                        "cell": {"recipe": name, "precision": p, "device": t.device, "accelerator": a},
                        "recipe": normalized(&recipe)?,
                        "model_sha256": model_sha,
                        "precision_plan_sha256": plan_sha,
                        "stages": [reference_id, int8_stage],
                        "target": {"device": t.device, "jetpack": t.jetpack, "tensorrt": t.tensorrt, "power_mode": t.power_mode, "accelerator": a},
                        "bench": m.spec.bench,
                    });
                    cells.push(Cell {
                        id: id_of(&inputs),
                        name: format!("{name}/{}/{}/{}", p.name(), t.device, a.name()),
                        recipe_name: name.clone(),
                        precision: p,
                        target: t.clone(),
                        accelerator: a,
                        recipe,
                        reference: reference_id.clone(),
                        int8_stage,
                        inputs,
                    });
                }
            }
        }
    }
    // Stages nobody needs (every cell of a recipe excluded) are not run.
    let used: std::collections::BTreeSet<&String> = cells
        .iter()
        .flat_map(|c| std::iter::once(&c.reference).chain(&c.int8_stage))
        .collect();
    let mut needed: BTreeMap<String, Stage> = BTreeMap::new();
    for id in used {
        let s = &stages[id];
        for n in &s.needs {
            needed.insert(n.clone(), stages[n].clone());
        }
        needed.insert(id.clone(), s.clone());
    }
    Ok(Plan {
        cells,
        stages: needed,
    })
}

/// A precision the recipe cannot do is a matrix error naming both and the two fixes.
fn check_recipe_supports(
    m: &LoadedMatrix,
    r: &LoadedRecipe,
    name: &str,
    p: CellPrecision,
) -> Result<()> {
    let missing = match p {
        CellPrecision::Int8 | CellPrecision::Best if r.recipe.calibration.is_none() => {
            Some("a calibration section")
        }
        CellPrecision::Int8Qdq if r.recipe.calibration.is_none() => Some("a calibration section"),
        CellPrecision::Int8Qdq
            if r.recipe
                .quantize
                .as_ref()
                .and_then(|q| q.validation.as_ref())
                .is_none() =>
        {
            Some("quantize.validation")
        }
        CellPrecision::Int8Qdq if r.recipe.decoder.is_none() => Some("a decoder"),
        _ => None,
    };
    match missing {
        Some(what) => Err(m.field_error(
            "precisions",
            format!(
                "{}: precision {} needs {what} in the recipe; add it, or exclude {{recipe: {name}, precision: {}}}",
                r.path.display(),
                p.name(),
                p.name()
            ),
        )),
        None => Ok(()),
    }
}

fn eval_doc(r: &LoadedRecipe) -> Result<Value> {
    Ok(match &r.recipe.eval {
        Some(_) => {
            let job = r.eval_job(&Default::default())?;
            json!({
                "images": images_doc(&job.set)?,
                "labels": labels_doc(&job.set, &job.labels)?,
            })
        }
        None => Value::Null,
    })
}

fn reference_stage(base: &LoadedRecipe, model_sha: &str, m: &LoadedMatrix) -> Result<Stage> {
    let r = &base.recipe;
    let inputs = json!({
        "schema_version": SCHEMA_VERSION,
        "trtforge": tool_version(),
        "stage": StageKind::Reference,
        "model_sha256": model_sha,
        "input": r.input,
        "decoder": r.decoder,
        "eval": r.eval.as_ref().map(|e| json!({"limit": e.limit, "score_threshold": e.score_threshold, "iou_threshold": e.iou_threshold})),
        "eval_data": eval_doc(base)?,
        "bench": {"iterations": m.spec.bench.iterations, "warmup": m.spec.bench.warmup},
    });
    Ok(Stage::new(
        StageKind::Reference,
        inputs,
        base.clone(),
        Vec::new(),
    ))
}

fn calibration_stage(base: &LoadedRecipe, model_sha: &str, tensorrt: TrtVersion) -> Result<Stage> {
    let mut recipe = base.clone();
    recipe.recipe.target.tensorrt = tensorrt;
    let job = recipe.calibration_job(&Default::default())?;
    let mut section =
        serde_json::to_value(&job.calibration).map_err(|e| Error::internal(e.to_string()))?;
    if let Some(o) = section.as_object_mut() {
        o.remove("images");
    }
    let inputs = json!({
        "schema_version": SCHEMA_VERSION,
        "trtforge": tool_version(),
        "stage": StageKind::Calibration,
        "model_sha256": model_sha,
        "input": recipe.recipe.input,
        "calibration": section,
        "images": images_doc(&job.image_set()?)?,
        "tensorrt": tensorrt,
    });
    Ok(Stage::new(
        StageKind::Calibration,
        inputs,
        recipe,
        Vec::new(),
    ))
}

/// Quantization on `cal`'s files, with its recipe (the cache header's TensorRT version is part
/// of the calibration's provenance, which quantize checks).
fn qdq_stage(cal: &Stage, m: &LoadedMatrix) -> Result<Stage> {
    let base = &cal.recipe;
    let calibration = cal.id.as_str();
    let mut n = normalized(base)?;
    let keep = ["input", "decoder", "eval", "quantize"];
    if let Some(o) = n.as_object_mut() {
        o.retain(|k, _| keep.contains(&k.as_str()));
    }
    let v = base.validation_job()?;
    let inputs = json!({
        "schema_version": SCHEMA_VERSION,
        "trtforge": tool_version(),
        "stage": StageKind::Qdq,
        "calibration": calibration,
        "recipe": n,
        "validation": {"images": images_doc(&v.set)?, "labels": labels_doc(&v.set, &v.labels)?},
        "eval_data": eval_doc(base)?,
        "bench": {"iterations": m.spec.bench.iterations, "warmup": m.spec.bench.warmup},
    });
    Ok(Stage::new(
        StageKind::Qdq,
        inputs,
        base.clone(),
        vec![calibration.to_string()],
    ))
}

/// A stage or cell's working copy of the recipe: outputs go to `out`.
pub fn with_output(r: &LoadedRecipe, out: &Path) -> LoadedRecipe {
    let mut e = r.clone();
    e.recipe.output = PathBuf::from(out);
    e
}
