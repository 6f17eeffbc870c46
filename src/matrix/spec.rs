//! `matrix.yaml`: which recipes, precisions and targets make the night's cells, which cells
//! to leave out, and the gates. Parsed like recipes (unknown keys refused, every mistake a
//! located one-line error). Recipes stay the only source of a cell's settings: the matrix
//! overrides precision and target, nothing else.

use crate::error::{Error, Result};
use crate::measure::power::PowerChoice;
use crate::recipe::{field_error, normalize, parse_yaml, LoadedRecipe};
use crate::trt::TrtVersion;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A cell's precision: how its engine gets INT8, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellPrecision {
    Fp16,
    /// INT8 through the calibrator (the recipe's calibration section, cache computed on CPU).
    Int8,
    /// INT8 from the Q/DQ model `trtforge quantize` writes (the recipe's quantize section).
    Int8Qdq,
    /// FP16 and INT8 (calibrator), TensorRT picks per layer.
    Best,
}

impl CellPrecision {
    pub fn name(self) -> &'static str {
        match self {
            CellPrecision::Fp16 => "fp16",
            CellPrecision::Int8 => "int8",
            CellPrecision::Int8Qdq => "int8-qdq",
            CellPrecision::Best => "best",
        }
    }

    /// Whether the cell needs the calibrator's cache (built on CPU in `prepare`).
    pub fn needs_calibration(self) -> bool {
        matches!(
            self,
            CellPrecision::Int8 | CellPrecision::Best | CellPrecision::Int8Qdq
        )
    }
}

/// Where on the Jetson the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    Gpu,
    Dla0,
    Dla1,
}

impl Accelerator {
    pub fn name(self) -> &'static str {
        match self {
            Accelerator::Gpu => "gpu",
            Accelerator::Dla0 => "dla0",
            Accelerator::Dla1 => "dla1",
        }
    }

    pub fn dla_core(self) -> Option<u32> {
        match self {
            Accelerator::Gpu => None,
            Accelerator::Dla0 => Some(0),
            Accelerator::Dla1 => Some(1),
        }
    }
}

fn gpu_only() -> Vec<Accelerator> {
    vec![Accelerator::Gpu]
}

/// One kind of device the fleet has, as its runners are labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Device class, e.g. `orin-nano-8gb`, `orin-nx-16gb`, `agx-orin-64gb`, `agx-thor`.
    pub device: String,
    /// JetPack release of those devices, e.g. "6.2".
    pub jetpack: String,
    /// TensorRT version of that JetPack (engines and calibration caches are specific to it).
    pub tensorrt: TrtVersion,
    /// nvpmodel power mode the runners are set to (e.g. "MAXN"); nights are only compared
    /// within one power mode.
    #[serde(default)]
    pub power_mode: Option<String>,
    /// Labels (GitHub `runs-on`) or tags (GitLab) that select such a runner.
    pub runner: Vec<String>,
    #[serde(default = "gpu_only")]
    pub accelerators: Vec<Accelerator>,
}

/// Cells to leave out: every field given must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// A recipe name (file name without `.yaml`) or a pattern (`*`, `?`).
    #[serde(default)]
    pub recipe: Option<String>,
    #[serde(default)]
    pub precision: Option<CellPrecision>,
    /// A device class.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub accelerator: Option<Accelerator>,
}

/// Limits `collect` enforces. Drops are absolute mAP@0.5:0.95; regressions and growth are
/// relative to the last accepted night (0.10 = 10 % worse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Cell mAP below the same model's FP32 reference.
    #[serde(default)]
    pub max_map_drop: Option<f64>,
    /// Cell mAP below the same cell last accepted night.
    #[serde(default)]
    pub max_map_regression: Option<f64>,
    #[serde(default)]
    pub max_latency_p50_regression: Option<f64>,
    #[serde(default)]
    pub max_latency_p99_regression: Option<f64>,
    /// Joules per inference.
    #[serde(default)]
    pub max_energy_regression: Option<f64>,
    #[serde(default)]
    pub max_engine_size_growth: Option<f64>,
}

fn default_iterations() -> u64 {
    200
}
fn default_warmup() -> u64 {
    20
}

/// How each cell is measured (part of the cell's id: other settings, other figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSpec {
    #[serde(default = "default_iterations")]
    pub iterations: u64,
    #[serde(default = "default_warmup")]
    pub warmup: u64,
    /// Power source on the device (`auto`, `off`, `ina3221`, `ina238`, `tegrastats`, `nvml`).
    #[serde(default = "auto_power")]
    pub power: PowerChoice,
}

fn auto_power() -> PowerChoice {
    PowerChoice::Auto
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec {
            iterations: default_iterations(),
            warmup: default_warmup(),
            power: auto_power(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// Recipe files or patterns (`engines/*-qdq.yaml`), relative to the matrix file.
    pub recipes: Vec<String>,
    pub precisions: Vec<CellPrecision>,
    pub targets: Vec<TargetSpec>,
    #[serde(default)]
    pub exclude: Vec<Exclusion>,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub bench: BenchSpec,
    /// Artifact store, relative to the matrix file (default `../build/matrix-store`); `--store`
    /// overrides it.
    #[serde(default)]
    pub store: Option<PathBuf>,
}

/// A parsed matrix with the file it came from and its recipes, loaded.
#[derive(Debug, Clone)]
pub struct LoadedMatrix {
    pub spec: MatrixSpec,
    pub path: PathBuf,
    text: String,
    /// Every recipe the patterns name, sorted, loaded and validated.
    pub recipes: Vec<LoadedRecipe>,
}

impl LoadedMatrix {
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::util::input::read_text(path, crate::util::input::TEXT)?;
        let spec: MatrixSpec = parse_yaml(path, &text)?;
        let mut m = LoadedMatrix {
            spec,
            path: path.to_path_buf(),
            text,
            recipes: Vec::new(),
        };
        m.validate()?;
        m.recipes = m.load_recipes()?;
        m.validate_exclusions()?;
        Ok(m)
    }

    pub fn field_error(&self, field: &str, msg: impl Into<String>) -> Error {
        field_error(&self.path, &self.text, field, msg)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The store: `--store`, else the file's `store`, else `../build/matrix-store`.
    pub fn store_dir(&self, flag: Option<&Path>) -> PathBuf {
        match flag {
            Some(p) => p.to_path_buf(),
            None => {
                let p = self
                    .spec
                    .store
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("../build/matrix-store"));
                normalize(&self.dir().join(p))
            }
        }
    }

    fn validate(&self) -> Result<()> {
        let s = &self.spec;
        for (field, empty) in [
            ("recipes", s.recipes.is_empty()),
            ("precisions", s.precisions.is_empty()),
            ("targets", s.targets.is_empty()),
        ] {
            if empty {
                return Err(self.field_error(field, "expected at least one entry"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &s.targets {
            let ok = !t.device.is_empty()
                && t.device
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(self.field_error(
                    "targets.device",
                    format!("'{}': expected a device class of lowercase letters, digits and '-', e.g. orin-nano-8gb", t.device),
                ));
            }
            if !seen.insert(t.device.clone()) {
                return Err(self.field_error(
                    "targets.device",
                    format!("device class '{}' is listed twice", t.device),
                ));
            }
            if t.runner.is_empty() || t.runner.iter().any(|l| l.trim().is_empty()) {
                return Err(self.field_error(
                    "targets.runner",
                    format!("{}: expected the runner labels that select such a device, e.g. [self-hosted, {}]", t.device, t.device),
                ));
            }
            if t.accelerators.is_empty() {
                return Err(self.field_error(
                    "targets.accelerators",
                    format!("{}: expected gpu, dla0 and/or dla1", t.device),
                ));
            }
        }
        let mut ps = s.precisions.clone();
        ps.sort();
        ps.dedup();
        if ps.len() != s.precisions.len() {
            return Err(self.field_error("precisions", "a precision is listed twice"));
        }
        for t in &s.targets {
            let mut a = t.accelerators.clone();
            a.sort();
            a.dedup();
            if a.len() != t.accelerators.len() {
                return Err(self.field_error(
                    "targets.accelerators",
                    format!("{}: an accelerator is listed twice", t.device),
                ));
            }
        }
        let g = &s.gates;
        for (field, v) in [
            ("gates.max_map_drop", g.max_map_drop),
            ("gates.max_map_regression", g.max_map_regression),
            (
                "gates.max_latency_p50_regression",
                g.max_latency_p50_regression,
            ),
            (
                "gates.max_latency_p99_regression",
                g.max_latency_p99_regression,
            ),
            ("gates.max_energy_regression", g.max_energy_regression),
            ("gates.max_engine_size_growth", g.max_engine_size_growth),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                    return Err(self.field_error(
                        field,
                        "expected a non-negative number (0.10 = 10 % for regressions)",
                    ));
                }
            }
        }
        if s.bench.iterations == 0 || s.bench.iterations > 1_000_000 {
            return Err(self.field_error("bench.iterations", "expected 1 to 1000000"));
        }
        if s.bench.warmup > 1_000_000 {
            return Err(self.field_error("bench.warmup", "expected 0 to 1000000"));
        }
        Ok(())
    }

    /// An exclusion that can match nothing is a mistake (a typo would silently keep cells).
    fn validate_exclusions(&self) -> Result<()> {
        let names: Vec<String> = self.recipes.iter().map(recipe_name).collect();
        for (i, x) in self.spec.exclude.iter().enumerate() {
            if let Some(p) = &x.recipe {
                let pat = glob::Pattern::new(p).map_err(|e| {
                    self.field_error("exclude.recipe", format!("exclusion {}: '{p}': {e}", i + 1))
                })?;
                if !names.iter().any(|n| pat.matches(n)) {
                    return Err(self.field_error(
                        "exclude.recipe",
                        format!(
                            "exclusion {}: '{p}' names none of the recipes ({})",
                            i + 1,
                            names.join(", ")
                        ),
                    ));
                }
            }
            if let Some(t) = &x.target {
                if !self.spec.targets.iter().any(|d| &d.device == t) {
                    return Err(self.field_error(
                        "exclude.target",
                        format!("exclusion {}: no target '{t}' in targets", i + 1),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The recipe files the patterns name, sorted and without duplicates, each loaded.
    fn load_recipes(&self) -> Result<Vec<LoadedRecipe>> {
        let mut paths = std::collections::BTreeSet::new();
        for pattern in &self.spec.recipes {
            let full = normalize(&self.dir().join(pattern));
            let text = full.to_string_lossy().into_owned();
            let matched: Vec<PathBuf> = match glob::glob(&text) {
                Ok(it) => it.filter_map(|p| p.ok()).filter(|p| p.is_file()).collect(),
                Err(e) => {
                    return Err(self.field_error("recipes", format!("'{pattern}': {e}")));
                }
            };
            if matched.is_empty() {
                return Err(self.field_error(
                    "recipes",
                    format!(
                        "'{pattern}' names no recipe file ({} does not exist)",
                        full.display()
                    ),
                ));
            }
            paths.extend(matched);
        }
        let mut names = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        for p in paths {
            let r = LoadedRecipe::load(&p)?;
            let name = recipe_name(&r);
            if let Some(other) = names.insert(name.clone(), p.clone()) {
                return Err(self.field_error(
                    "recipes",
                    format!(
                        "{} and {} are both named '{name}': cells are named after the recipe file; rename one",
                        other.display(),
                        p.display()
                    ),
                ));
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Whether an exclusion leaves this combination out.
    pub fn excluded(
        &self,
        recipe: &str,
        precision: CellPrecision,
        target: &str,
        acc: Accelerator,
    ) -> bool {
        self.spec.exclude.iter().any(|x| {
            x.recipe.as_ref().is_none_or(|p| {
                glob::Pattern::new(p)
                    .map(|pat| pat.matches(recipe))
                    .unwrap_or(false)
            }) && x.precision.is_none_or(|p| p == precision)
                && x.target.as_ref().is_none_or(|t| t == target)
                && x.accelerator.is_none_or(|a| a == acc)
        })
    }
}

/// A recipe's name in the matrix: its file name without the extension.
pub fn recipe_name(r: &LoadedRecipe) -> String {
    r.path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recipe".into())
}
