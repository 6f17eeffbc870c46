//! `<engine>.manifest.json`: what an engine was built from and for, and the load-time check
//! that refuses an engine made for another TensorRT version or GPU. Always compiled.

use crate::error::{Error, Result, StaleFix};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One engine input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorDesc {
    pub name: String,
    /// -1 marks a dynamic dimension.
    pub shape: Vec<i64>,
    pub dtype: String,
}

/// Where the engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDesc {
    /// `gpu` or `dla`.
    pub device: String,
    pub dla_core: Option<u32>,
    pub gpu_fallback: bool,
}

/// Layer counts per precision and per device, from the engine inspector: where layers
/// really run, not what the recipe asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerSummary {
    pub layers: usize,
    pub by_precision: std::collections::BTreeMap<String, usize>,
    pub by_device: std::collections::BTreeMap<String, usize>,
    /// DLA builds: the layers that fell back to the GPU, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_fallback: Vec<String>,
}

/// Summarize the engine inspector's JSON (`IEngineInspector::getEngineInformation(kJSON)`,
/// detailed verbosity). A layer's precision is its first output's `Format/Datatype`
/// ("unknown" when the verbosity hides it). On a DLA build, a layer runs on the DLA when its
/// type or name says DLA, or when it is a foreign node (`{ForeignNode[...]}`: TensorRT hands
/// each DLA subgraph over as one); every other layer is a GPU fallback. GPU builds run every
/// layer on the GPU. `None` when the JSON has no `Layers` list.
pub fn summarize_layers(json: &str, dla_build: bool) -> Option<LayerSummary> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let layers = v.get("Layers")?.as_array()?;
    let mut s = LayerSummary::default();
    for l in layers {
        s.layers += 1;
        // Layer names only: the list holds names as strings.
        let (name, kind) = match l {
            serde_json::Value::String(n) => (n.as_str(), ""),
            _ => (
                l.get("Name").and_then(|x| x.as_str()).unwrap_or(""),
                l.get("LayerType").and_then(|x| x.as_str()).unwrap_or(""),
            ),
        };
        let prec = l
            .pointer("/Outputs/0/Format~1Datatype")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown");
        *s.by_precision.entry(prec.to_string()).or_default() += 1;
        let on_dla = dla_build
            && (kind.contains("DLA") || name.contains("DLA") || name.starts_with("{ForeignNode["));
        if dla_build && !on_dla {
            s.gpu_fallback.push(name.to_string());
        }
        let dev = if on_dla { "dla" } else { "gpu" };
        *s.by_device.entry(dev.to_string()).or_default() += 1;
    }
    Some(s)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool_version: String,
    pub onnx_sha256: String,
    pub recipe_sha256: String,
    /// fp32, fp16, int8, best.
    pub precision: String,
    pub target: TargetDesc,
    /// `major.minor.patch` of the TensorRT library that built the engine.
    pub tensorrt: String,
    pub cuda_runtime: Option<String>,
    pub cuda_driver: Option<String>,
    pub gpu_name: String,
    /// `major.minor`, 8.7 on Orin.
    pub compute_capability: String,
    /// Jetson only: `R36 (release), REVISION: 4.3` from /etc/nv_tegra_release.
    pub l4t_release: Option<String>,
    /// Jetson only: /proc/device-tree/model.
    pub module_model: Option<String>,
    pub inputs: Vec<TensorDesc>,
    pub outputs: Vec<TensorDesc>,
    pub layers: Option<LayerSummary>,
    /// What TensorRT was asked for (flags, pools, DLA core, pins, profiles).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    pub calibration_cache_sha256: Option<String>,
    pub build_seconds: f64,
    pub engine_sha256: String,
}

/// The manifest path for an engine: `<engine>.manifest.json`.
pub fn manifest_path(engine: &Path) -> PathBuf {
    let mut s = engine.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

use crate::util::{sha256_hex, write_atomic};

/// What the loading machine has; compared with the manifest before deserializing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub tensorrt: String,
    pub compute_capability: String,
}

/// Major.minor.patch must match: TensorRT refuses other versions' engines (and a mismatch
/// crashes some releases), so we refuse first, with both values in the message.
pub fn same_trt(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let mut p: Vec<&str> = s.trim().split('.').collect();
        p.resize(3, "0");
        p.truncate(3);
        p.join(".")
    };
    norm(a) == norm(b)
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::util::input::read(path, crate::util::input::TEXT)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a trtforge engine manifest ({e}); rebuild the engine with `trtforge build`",
                path.display()
            ))
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = crate::error::to_json_pretty(self)? + "\n";
        write_atomic(path, text.as_bytes())
    }

    /// Refuse an engine made for another TensorRT version or compute capability.
    pub fn check_loadable(&self, engine: &Path, rt: &Runtime) -> Result<()> {
        if !same_trt(&self.tensorrt, &rt.tensorrt) {
            return Err(Error::Stale {
                path: engine.to_path_buf(),
                why: format!(
                    "built with TensorRT {} but this machine has TensorRT {}",
                    self.tensorrt, rt.tensorrt
                ),
                fix: StaleFix::RebuildHere,
            });
        }
        if self.compute_capability.trim() != rt.compute_capability.trim() {
            return Err(Error::Stale {
                path: engine.to_path_buf(),
                why: format!(
                    "built for compute capability {} ({}) but this GPU is compute capability {}",
                    self.compute_capability, self.gpu_name, rt.compute_capability
                ),
                fix: StaleFix::RebuildOnTarget,
            });
        }
        Ok(())
    }
}

/// Read `<engine>.manifest.json`, check it against `rt` and that the engine bytes are the
/// ones it describes; returns the engine bytes.
pub fn load_checked_engine(engine: &Path, rt: &Runtime) -> Result<(Manifest, Vec<u8>)> {
    let mpath = manifest_path(engine);
    if !mpath.exists() {
        return Err(Error::Invalid(format!(
            "{}: no manifest next to the engine (expected {}); rebuild it with `trtforge build`",
            engine.display(),
            mpath.display()
        )));
    }
    let m = Manifest::read(&mpath)?;
    m.check_loadable(engine, rt)?;
    let bytes = crate::error::read_file(engine)?;
    let sha = sha256_hex(&bytes);
    if sha != m.engine_sha256 {
        return Err(Error::Stale {
            path: engine.to_path_buf(),
            why: format!(
                "engine sha256 {sha} differs from its manifest's {}",
                m.engine_sha256
            ),
            fix: StaleFix::Rebuild,
        });
    }
    Ok((m, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(engine: &[u8]) -> Manifest {
        Manifest {
            tool_version: crate::TOOL_VERSION.into(),
            onnx_sha256: sha256_hex(b"onnx"),
            recipe_sha256: sha256_hex(b"recipe"),
            precision: "int8".into(),
            target: TargetDesc {
                device: "gpu".into(),
                dla_core: None,
                gpu_fallback: true,
            },
            tensorrt: "8.6.2".into(),
            cuda_runtime: Some("12.2".into()),
            cuda_driver: Some("12.2".into()),
            gpu_name: "Orin".into(),
            compute_capability: "8.7".into(),
            l4t_release: Some("R36 (release), REVISION: 3.0".into()),
            module_model: Some("NVIDIA Jetson AGX Orin Developer Kit".into()),
            inputs: vec![TensorDesc {
                name: "images".into(),
                shape: vec![1, 3, 416, 416],
                dtype: "float32".into(),
            }],
            outputs: vec![],
            layers: None,
            settings: None,
            calibration_cache_sha256: None,
            build_seconds: 1.5,
            engine_sha256: sha256_hex(engine),
        }
    }

    fn rt(trt: &str, cc: &str) -> Runtime {
        Runtime {
            tensorrt: trt.into(),
            compute_capability: cc.into(),
        }
    }

    #[test]
    fn manifest_path_appends_suffix() {
        assert_eq!(
            manifest_path(Path::new("out/yolox.engine")),
            PathBuf::from("out/yolox.engine.manifest.json")
        );
    }

    #[test]
    fn other_tensorrt_version_is_refused_with_both_values() {
        let m = manifest(b"x");
        let e = m
            .check_loadable(Path::new("y.engine"), &rt("10.3.0", "8.7"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("y.engine") && e.contains("8.6.2") && e.contains("10.3.0"),
            "{e}"
        );
        assert!(m
            .check_loadable(Path::new("y.engine"), &rt("8.6.2", "8.7"))
            .is_ok());
        assert!(manifest(b"x")
            .check_loadable(Path::new("e"), &rt("8.6.2.3", "8.7"))
            .is_ok());
    }

    #[test]
    fn other_compute_capability_is_refused_with_both_values() {
        let e = manifest(b"x")
            .check_loadable(Path::new("y.engine"), &rt("8.6.2", "8.9"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("8.7") && e.contains("8.9") && e.contains("Orin"),
            "{e}"
        );
    }

    #[test]
    fn write_read_and_load_checked() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("m.engine");
        let bytes = b"serialized engine bytes".to_vec();
        write_atomic(&engine, &bytes).unwrap();
        let m = manifest(&bytes);
        m.write(&manifest_path(&engine)).unwrap();
        assert_eq!(Manifest::read(&manifest_path(&engine)).unwrap(), m);
        let (_, got) = load_checked_engine(&engine, &rt("8.6.2", "8.7")).unwrap();
        assert_eq!(got, bytes);
        // no temporary files are left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // a changed engine no longer matches its manifest
        write_atomic(&engine, b"other").unwrap();
        let e = load_checked_engine(&engine, &rt("8.6.2", "8.7"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sha256"), "{e}");
    }

    #[test]
    fn layers_are_counted_where_the_inspector_says_they_run() {
        let json = r#"{"Layers": [
            {"Name": "{ForeignNode[stem...head]}", "LayerType": "DLA",
             "Outputs": [{"Format/Datatype": "Half"}]},
            {"Name": "{ForeignNode[neck]}", "LayerType": "ForeignNode",
             "Outputs": [{"Format/Datatype": "Int8"}]},
            {"Name": "decode_sigmoid", "LayerType": "PointWise",
             "Outputs": [{"Format/Datatype": "Float"}]}
        ], "Bindings": ["images", "output"]}"#;
        let dla = summarize_layers(json, true).unwrap();
        assert_eq!(dla.layers, 3);
        assert_eq!(dla.by_device["dla"], 2);
        assert_eq!(dla.by_device["gpu"], 1);
        assert_eq!(dla.gpu_fallback, ["decode_sigmoid"]);
        assert_eq!(dla.by_precision["Half"], 1);
        // A GPU build's foreign nodes are Myelin's, on the GPU.
        let gpu = summarize_layers(json, false).unwrap();
        assert_eq!(gpu.by_device["gpu"], 3);
        assert!(gpu.gpu_fallback.is_empty());
        // Layer names only (ProfilingVerbosity::kLAYER_NAMES_ONLY): counted, precision unknown.
        let names = summarize_layers(r#"{"Layers": ["a", "b"]}"#, false).unwrap();
        assert_eq!((names.layers, names.by_precision["unknown"]), (2, 2));
        assert!(summarize_layers("not json", false).is_none());
    }

    #[test]
    fn missing_manifest_says_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("m.engine");
        std::fs::write(&engine, b"x").unwrap();
        let e = load_checked_engine(&engine, &rt("8.6.2", "8.7"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("manifest") && e.contains("trtforge build"),
            "{e}"
        );
    }
}
