//! A matrix cell as a deployment bundle: the files of its store entry, what its result says
//! (target, figures, why there is no engine), and the id document as the recipe applied.
//! `matrix run` writes one per cell into `STORE/bundles/<id>`; `collect` lists their digests.

use super::run::CellResult;
use super::store::{Area, Entry, Store};
use crate::build::{manifest_path, Manifest};
use crate::bundle::source::{apply_manifest, onnx_outputs, skeleton, Contents};
use crate::bundle::{Figures, Target, Written};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where a cell's bundle goes.
pub fn bundle_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("bundles").join(id)
}

/// Write (or rewrite) the bundle of a cell whose entry is complete.
pub fn write_for_cell(store: &Store, id: &str) -> Result<Written> {
    crate::bundle::write(
        &contents(&store.entry_dir(Area::Cells, id))?,
        &bundle_dir(store, id),
    )
}

/// The OCI manifest digest of a cell's bundle, if it has one.
pub fn digest(store: &Store, id: &str) -> Option<String> {
    crate::bundle::oci::read_layout(&bundle_dir(store, id).join(crate::bundle::OCI_DIR))
        .ok()
        .map(|l| l.manifest_digest)
}

/// A matrix cell's entry folder (`STORE/cells/<id>`), checked against its `entry.json`.
pub fn contents(dir: &Path) -> Result<Contents> {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entry: Entry = crate::matrix::store::verify(dir, &id).map_err(|why| {
        Error::Invalid(format!(
            "{}: not a complete matrix cell ({why}); rerun it with `trtforge matrix run --cell {id}`",
            dir.display()
        ))
    })?;
    let r: CellResult = serde_json::from_value(entry.result.clone())
        .map_err(|e| Error::Invalid(format!("{}: not a cell result ({e})", dir.display())))?;
    let recipe = &entry.inputs["recipe"];
    let mut target = Target {
        model_name: r.recipe.clone(),
        model_sha256: entry.inputs["model_sha256"].as_str().map(str::to_string),
        input: serde_json::from_value(recipe["input"].clone()).ok(),
        outputs: Vec::new(),
        decoder: recipe["decoder"].as_str().map(str::to_string),
        precision: r.precision.name().into(),
        device_class: Some(r.device_class.clone()),
        jetpack: Some(r.jetpack.clone()),
        tensorrt: r.tensorrt.to_string(),
        compute_capability: None,
        l4t_release: None,
        dla_core: r.accelerator.dla_core(),
    };
    let copies: Vec<(PathBuf, String)> = entry
        .files
        .iter()
        .map(|f| (dir.join(&f.path), f.path.clone()))
        .collect();
    let engine = entry
        .files
        .iter()
        .find(|f| f.path.ends_with(".engine"))
        .map(|f| f.path.clone());
    match &engine {
        Some(e) => apply_manifest(&mut target, &Manifest::read(&manifest_path(&dir.join(e)))?),
        None => {
            if let Some(q) = entry.files.iter().find(|f| f.path.ends_with(".onnx")) {
                target.outputs = onnx_outputs(&dir.join(&q.path));
            }
        }
    }
    let mut info = skeleton(format!("cell {id}"), target);
    info.no_engine_reason = match &engine {
        Some(_) => None,
        None => Some(format!(
            "the cell is {}: {}",
            r.status.name(),
            r.message.as_deref().unwrap_or("no engine was built")
        )),
    };
    info.engine = engine;
    if let Some(e) = &r.engine {
        info.figures = Figures {
            engine_bytes: Some(e.engine_bytes),
            latency_p50_ms: e.latency_p50_ms,
            latency_p99_ms: e.latency_p99_ms,
            j_per_inference: e.j_per_inference,
            map50_95: e.map50_95,
            map_drop_from_fp32: e
                .map50_95
                .zip(r.reference.fp32_map50_95)
                .map(|(m, f)| f - m),
        };
    }
    info.reference = serde_json::to_value(&r.reference).ok();
    let applied = crate::error::to_json_pretty(&entry.inputs)?;
    Ok(Contents {
        copies,
        made: vec![("recipe.json".into(), applied.into_bytes())],
        info,
    })
}
