//! What goes into a bundle: the files of a recipe's output folder (or, through
//! `matrix::bundle`, of a matrix cell's store entry), and what `bundle.json` says about them. Nothing is invented: a figure not measured
//! is absent, and a bundle without an engine says why.

use super::{media_type, BundleFile, BundleInfo, Figures, Target, BUNDLE_FILE, SCHEMA_VERSION};
use crate::build::{manifest_path, Manifest};
use crate::error::{Error, Result};
use crate::recipe::LoadedRecipe;
use std::path::{Path, PathBuf};

/// The files of a bundle-to-be and its description (`files` is filled in when written).
#[derive(Debug, Clone)]
pub struct Contents {
    /// (source file, path inside the bundle).
    pub copies: Vec<(PathBuf, String)>,
    /// (path inside the bundle, bytes): files made for the bundle (the recipe as applied).
    pub made: Vec<(String, Vec<u8>)>,
    pub info: BundleInfo,
}

pub(crate) fn skeleton(source: String, target: Target) -> BundleInfo {
    BundleInfo {
        schema_version: SCHEMA_VERSION,
        trtforge: env!("CARGO_PKG_VERSION").into(),
        created_unix_s: crate::util::unix_now_s(),
        source,
        engine: None,
        no_engine_reason: None,
        target,
        figures: Figures::default(),
        reference: None,
        files: Vec::new(),
    }
}

/// What an engine's manifest says about its target.
pub(crate) fn apply_manifest(t: &mut Target, m: &Manifest) {
    t.tensorrt = m.tensorrt.clone();
    t.compute_capability = Some(m.compute_capability.clone());
    t.l4t_release = m.l4t_release.clone();
    t.outputs = m.outputs.iter().map(|o| o.name.clone()).collect();
    t.dla_core = m.target.dla_core;
}

/// Output names of an ONNX model, for bundles without an engine manifest.
pub(crate) fn onnx_outputs(p: &Path) -> Vec<String> {
    crate::onnx::Model::load(p)
        .map(|m| {
            m.proto
                .graph
                .output
                .iter()
                .map(|o| o.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

impl Contents {
    /// A recipe's output folder: the engine and manifest `trtforge build` wrote, the
    /// calibration and quantization artifacts, `bench/` and `eval.json` when present.
    pub fn from_recipe(r: &LoadedRecipe, device_class: Option<String>) -> Result<Contents> {
        let out = r.output_dir();
        let job = r.build_job()?;
        let model_sha = crate::util::sha256_file(&r.model_path())?;
        let precision = serde_json::to_value(r.recipe.precision)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut target = Target {
            model_name: r
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "recipe".into()),
            model_sha256: Some(model_sha),
            input: Some(r.recipe.input.clone()),
            outputs: Vec::new(),
            decoder: r
                .recipe
                .decoder
                .and_then(|d| serde_json::to_value(d).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            precision,
            device_class,
            jetpack: None,
            tensorrt: r.recipe.target.tensorrt.to_string(),
            compute_capability: None,
            l4t_release: None,
            dla_core: r.recipe.target.dla_core,
        };
        // A calibration set edited after it was written is refused, not shipped.
        crate::calib::artifacts::verify_if_present(&out)?;
        let mut copies = Vec::new();
        let mut add = |p: PathBuf, rel: String| {
            if p.is_file() {
                copies.push((p, rel));
            }
        };
        use crate::calib::artifacts::{
            CACHE_FILE, DYNAMIC_RANGE_FILE, PROVENANCE_FILE, RANGES_FILE,
        };
        for f in [
            CACHE_FILE,
            RANGES_FILE,
            DYNAMIC_RANGE_FILE,
            PROVENANCE_FILE,
            crate::quant::QDQ_MODEL_FILE,
            crate::quant::plan::PLAN_FILE,
            crate::quant::REPORT_FILE,
            crate::quant::REPORT_MD_FILE,
            "eval.json",
        ] {
            add(out.join(f), f.to_string());
        }
        if let Ok(rd) = std::fs::read_dir(out.join("bench")) {
            let mut names: Vec<String> = rd
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                add(out.join("bench").join(&n), format!("bench/{n}"));
            }
        }
        let engine_name = job
            .engine
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model.engine".into());
        let has_engine = job.engine.is_file();
        if has_engine {
            let m = Manifest::read(&manifest_path(&job.engine))?;
            apply_manifest(&mut target, &m);
            add(job.engine.clone(), engine_name.clone());
            add(
                manifest_path(&job.engine),
                format!("{engine_name}.manifest.json"),
            );
            let mut layers = job.engine.as_os_str().to_owned();
            layers.push(".layers.json");
            add(PathBuf::from(layers), format!("{engine_name}.layers.json"));
        } else {
            let qdq = out.join(crate::quant::QDQ_MODEL_FILE);
            target.outputs = onnx_outputs(if qdq.is_file() { &qdq } else { &job.model.path });
        }
        let mut info = skeleton(format!("recipe {}", r.path.display()), target);
        if has_engine {
            info.engine = Some(engine_name);
            info.figures.engine_bytes = std::fs::metadata(&job.engine).ok().map(|m| m.len());
            if let Ok(b) = crate::report::BenchReport::load(&out.join("bench/bench.json")) {
                info.figures.latency_p50_ms = b.latency.percentile(50.0);
                info.figures.latency_p99_ms = b.latency.percentile(99.0);
                info.figures.j_per_inference =
                    b.power.as_ref().map(|p| p.energy.j_per_inference_gross);
            }
        } else {
            info.no_engine_reason = Some(format!(
                "{} does not exist: build it with `trtforge build {}` on the target",
                job.engine.display(),
                r.path.display()
            ));
        }
        Ok(Contents {
            copies,
            made: vec![("recipe.yaml".into(), r.text.clone().into_bytes())],
            info,
        })
    }

    /// Copy and write every file into `dir`, then `bundle.json` listing them.
    pub fn write_into(&self, dir: &Path) -> Result<BundleInfo> {
        let mut info = self.info.clone();
        let mut files = Vec::new();
        let mut put = |rel: &str, src: Option<&Path>, bytes: Option<&[u8]>| -> Result<()> {
            let dest = dir.join(rel);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
            }
            match (src, bytes) {
                (Some(s), _) => {
                    std::fs::copy(s, &dest).map_err(|e| Error::io(s, e))?;
                }
                (None, Some(b)) => std::fs::write(&dest, b).map_err(|e| Error::io(&dest, e))?,
                _ => {}
            }
            let f = std::fs::File::open(&dest).map_err(|e| Error::io(&dest, e))?;
            f.sync_all().map_err(|e| Error::io(&dest, e))?;
            files.push(BundleFile {
                path: rel.to_string(),
                sha256: crate::util::sha256_file(&dest)?,
                bytes: f.metadata().map_err(|e| Error::io(&dest, e))?.len(),
                media_type: media_type(rel).into(),
            });
            Ok(())
        };
        for (src, rel) in &self.copies {
            put(rel, Some(src), None)?;
        }
        for (rel, bytes) in &self.made {
            put(rel, None, Some(bytes))?;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        info.files = files;
        let text = crate::error::to_json_pretty(&info)?;
        crate::util::write_atomic(&dir.join(BUNDLE_FILE), text.as_bytes())?;
        Ok(info)
    }
}
