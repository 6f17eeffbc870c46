//! Deployment bundles: one verifiable artifact per (model, precision, device). A bundle is a
//! folder of files (the engine and its manifest when one was built, the calibration cache and
//! ranges, the Q/DQ model and precision plan when used, bench and eval reports, the recipe as
//! applied) and `bundle.json`, which says what the bundle is for, its figures, and every file's
//! size and sha256. The same files are also laid out as an OCI image (`oci/`: artifact
//! manifest, one blob per file), so registries and their tools store and promote it.
//!
//! - [`source`]: what goes into a bundle, from a matrix cell or a recipe's output folder;
//! - [`oci`]: the OCI image layout of those files, and reading one back;
//! - [`verify`]: a bundle's files, then the device's facts against it.

pub mod device;
pub mod oci;
pub mod source;
pub mod verify;

use crate::data::InputContract;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const BUNDLE_FILE: &str = "bundle.json";
pub const OCI_DIR: &str = "oci";
pub const SCHEMA_VERSION: u32 = 1;

/// One file of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub media_type: String,
}

/// What the engine was built from and for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Target {
    pub model_name: String,
    /// sha256 of the ONNX model the recipe names (before any quantization).
    pub model_sha256: Option<String>,
    pub input: Option<InputContract>,
    pub outputs: Vec<String>,
    pub decoder: Option<String>,
    /// fp16, int8, int8-qdq, best, fp32.
    pub precision: String,
    pub device_class: Option<String>,
    pub jetpack: Option<String>,
    /// The engine's (from its manifest), else the TensorRT the recipe targets.
    pub tensorrt: String,
    pub compute_capability: Option<String>,
    pub l4t_release: Option<String>,
    pub dla_core: Option<u32>,
}

/// Figures measured with the engine on its device; None where not measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Figures {
    pub engine_bytes: Option<u64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub j_per_inference: Option<f64>,
    pub map50_95: Option<f64>,
    pub map_drop_from_fp32: Option<f64>,
}

/// `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleInfo {
    pub schema_version: u32,
    pub trtforge: String,
    pub created_unix_s: u64,
    /// Where it came from: `cell <id>` or `recipe <path>`.
    pub source: String,
    /// The engine file, when one was built.
    pub engine: Option<String>,
    /// Why there is no engine (e.g. the cell ran where TensorRT is missing).
    pub no_engine_reason: Option<String>,
    pub target: Target,
    pub figures: Figures,
    /// ONNX Runtime CPU figures of the model the engine is built from, when measured (a
    /// reference, not a device figure).
    pub reference: Option<serde_json::Value>,
    pub files: Vec<BundleFile>,
}

impl BundleInfo {
    pub fn read(path: &Path) -> Result<BundleInfo> {
        let bytes = crate::error::read_file(path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a trtforge bundle.json ({e}); write bundles with `trtforge bundle`",
                path.display()
            ))
        })
    }
}

/// The media type a registry records for a bundle file.
pub fn media_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    if path.ends_with(".manifest.json") {
        return "application/vnd.trtforge.engine-manifest.v1+json";
    }
    match ext {
        "engine" | "plan" => "application/vnd.trtforge.tensorrt-engine",
        "onnx" => "application/vnd.trtforge.onnx-model",
        "cache" => "application/vnd.trtforge.calibration-cache",
        "json" => "application/json",
        "md" => "text/markdown",
        "svg" => "image/svg+xml",
        "yaml" | "yml" => "application/yaml",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// A bundle written: its folder and the OCI manifest's digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Written {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub files: usize,
    pub has_engine: bool,
}

/// Write `contents` as a bundle at `out`: built in a sibling temporary folder, then renamed
/// into place, so `out` is either the previous bundle, nothing, or the complete new one.
pub fn write(contents: &source::Contents, out: &Path) -> Result<Written> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let info = contents.write_into(tmp.path())?;
    let digest = oci::write_layout(tmp.path(), &info)?;
    // Readable by the CI upload and other users (tempdir creates 0700).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755));
    }
    let staged = tmp.keep();
    let placed = (|| {
        if out.exists() {
            let old = parent.join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(out, &old)?;
            let moved = std::fs::rename(&staged, out);
            let _ = std::fs::remove_dir_all(&old);
            moved
        } else {
            std::fs::rename(&staged, out)
        }
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::io(out, e));
    }
    Ok(Written {
        dir: out.to_path_buf(),
        manifest_digest: digest,
        files: info.files.len(),
        has_engine: info.engine.is_some(),
    })
}
