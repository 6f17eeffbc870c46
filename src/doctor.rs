//! `trtforge doctor`: what this machine can do, and how to fix what is missing.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Probe {
    pub available: bool,
    /// Version or location when available, the reason when not.
    pub detail: String,
    /// What to do when not available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Probe {
    pub fn ok(detail: impl Into<String>) -> Self {
        Probe { available: true, detail: detail.into(), fix: None }
    }
    pub fn missing(detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Probe { available: false, detail: detail.into(), fix: Some(fix.into()) }
    }
}

#[derive(Debug, Serialize)]
pub struct Doctor {
    pub trtforge: String,
    pub onnxruntime: Probe,
    pub features: Vec<&'static str>,
    pub jetson: Option<JetsonFacts>,
}

#[derive(Debug, Serialize)]
pub struct JetsonFacts {
    /// /proc/device-tree/model, e.g. "NVIDIA Jetson AGX Orin Developer Kit".
    pub model: Option<String>,
    /// First line of /etc/nv_tegra_release, e.g. "# R36 (release), REVISION: 4.0, ...".
    pub l4t: Option<String>,
}

fn read_trim(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    (!s.is_empty()).then_some(s)
}

pub fn jetson_facts() -> Option<JetsonFacts> {
    let l4t = read_trim("/etc/nv_tegra_release").map(|s| s.lines().next().unwrap_or_default().to_string());
    let model = read_trim("/proc/device-tree/model");
    let is_jetson = l4t.is_some() || model.as_deref().is_some_and(|m| m.contains("Jetson") || m.contains("Orin"));
    is_jetson.then_some(JetsonFacts { model, l4t })
}

pub fn onnxruntime() -> Probe {
    match crate::exec::ort_version() {
        Ok((v, _)) => Probe::ok(format!(
            "{v} ({})",
            crate::exec::ort_library_path().map(|p| p.display().to_string()).unwrap_or_default()
        )),
        Err(e) => Probe::missing(e.to_string(), "bash scripts/setup.sh && source scripts/env.sh (or set ORT_DYLIB_PATH)"),
    }
}

pub fn features() -> Vec<&'static str> {
    let mut f = vec![];
    if cfg!(feature = "cuda") {
        f.push("cuda");
    }
    if cfg!(feature = "tensorrt") {
        f.push("tensorrt");
    }
    f
}

pub fn run() -> Doctor {
    Doctor {
        trtforge: crate::TOOL_VERSION.to_string(),
        onnxruntime: onnxruntime(),
        features: features(),
        jetson: jetson_facts(),
    }
}
