//! YAML recipes: parse with exact error locations, resolve relative paths, validate.

mod check;
mod jobs;
mod schema;

pub use check::{check, check_contract, check_input_name, check_model, load_model, CheckReport};
pub use jobs::*;

pub use crate::trt::TrtVersion;
pub use schema::*;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A parsed recipe with the file it came from (relative paths resolve against its folder).
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub recipe: Recipe,
    pub path: PathBuf,
    pub text: String,
}

impl LoadedRecipe {
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::util::input::read_text(path, crate::util::input::TEXT)?;
        Self::parse(path, text)
    }

    /// Parse recipe text; `path` is used for messages and relative paths.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let recipe: Recipe = parse_yaml(path, &text)?;
        let loaded = LoadedRecipe {
            recipe,
            path: path.to_path_buf(),
            text,
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// The recipe's folder, against which relative paths resolve.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            normalize(&self.dir().join(p))
        }
    }

    pub fn model_path(&self) -> PathBuf {
        self.resolve(&self.recipe.model)
    }

    pub fn output_dir(&self) -> PathBuf {
        self.resolve(&self.recipe.output)
    }

    /// An error pointing at `field` (dotted path) with the location found in the text.
    pub fn field_error(&self, field: &str, msg: impl Into<String>) -> Error {
        field_error(&self.path, &self.text, field, msg)
    }

    /// Checks that need no model: value ranges and consistency between fields.
    fn validate(&self) -> Result<()> {
        let r = &self.recipe;
        let i = &r.input;
        if i.tensor.is_empty() {
            return Err(self.field_error("input.tensor", "expected the graph input's name"));
        }
        if i.shape.contains(&0) {
            return Err(self.field_error(
                "input.shape",
                "expected four positive dimensions [N, C, H, W]",
            ));
        }
        if i.shape[1] != 3 {
            return Err(self.field_error(
                "input.shape",
                format!(
                    "expected 3 channels (NCHW colour image), got {}",
                    i.shape[1]
                ),
            ));
        }
        // Bounds every later allocation: one input tensor of at most 2^28 floats (1 GiB).
        let elements = i.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if i.shape[0] > 256
            || i.shape[2] > 16384
            || i.shape[3] > 16384
            || elements.is_none_or(|e| e > 1 << 28)
        {
            return Err(self.field_error(
                "input.shape",
                "too large: batch at most 256, height and width at most 16384, 2^28 values in all",
            ));
        }
        // Normal numbers only: a denormal scale or std turns pixels into inf.
        if !(i.scale.is_normal() && i.scale > 0.0 && i.scale <= 1e6) {
            return Err(self.field_error("input.scale", "expected a positive number up to 1e6"));
        }
        if i.std
            .iter()
            .any(|s| !(s.is_normal() && *s > 0.0 && *s <= 1e6))
        {
            return Err(self.field_error("input.std", "expected three positive numbers up to 1e6"));
        }
        if i.mean.iter().any(|m| !(m.is_finite() && m.abs() <= 1e6)) {
            return Err(self.field_error(
                "input.mean",
                "expected three finite numbers (at most 1e6 in size)",
            ));
        }
        if !(i.pad_value.is_finite() && (0.0..=255.0).contains(&i.pad_value)) {
            return Err(self.field_error(
                "input.pad_value",
                "expected a pixel value from 0 to 255 (114 for YOLOX)",
            ));
        }
        if let Some(c) = &r.calibration {
            if !(1..=1024).contains(&c.batch_size) {
                return Err(self.field_error("calibration.batch_size", "expected 1 to 1024"));
            }
            if c.limit == Some(0) {
                return Err(self.field_error("calibration.limit", "expected at least 1"));
            }
            if let Some(p) = c.percentile {
                if !(p > 0.0 && p <= 100.0) {
                    return Err(self.field_error(
                        "calibration.percentile",
                        "expected a percentile in (0, 100], e.g. 99.99",
                    ));
                }
            }
            if let Some(b) = c.bins {
                if !(256..=1 << 20).contains(&b) {
                    return Err(self.field_error(
                        "calibration.bins",
                        "expected 256 to 1048576 bins (entropy needs 128 quantization levels)",
                    ));
                }
            }
            if let Some(s) = c.max_clip_share {
                if !(0.0..=1.0).contains(&s) {
                    return Err(self.field_error(
                        "calibration.max_clip_share",
                        "expected a share between 0 and 1",
                    ));
                }
            }
        }
        if let Some(q) = &r.quantize {
            if let Some(c) = q.validation.as_ref().and_then(|v| v.confirm) {
                if !(0.0..=0.9).contains(&c) {
                    return Err(self.field_error(
                        "quantize.validation.confirm",
                        "expected a share between 0 and 0.9 (0.5 holds out every other image)",
                    ));
                }
            }
            for (field, v) in [
                ("quantize.sensitivity_images", q.sensitivity_images),
                ("quantize.refine_images", q.refine_images),
            ] {
                if v == Some(0) {
                    return Err(self.field_error(field, "expected at least 1 image"));
                }
            }
            if let Some(d) = q.max_map_drop {
                if !(d.is_finite() && d >= 0.0) {
                    return Err(self.field_error(
                        "quantize.max_map_drop",
                        "expected a non-negative mAP drop, e.g. 0.015",
                    ));
                }
            }
        }
        if r.target.dla_core.is_some_and(|c| c > 1) {
            return Err(self.field_error(
                "target.dla_core",
                "expected 0 or 1 (Orin has two DLA cores)",
            ));
        }
        if let Some(w) = r.builder.workspace_mib {
            if !(1..=1 << 20).contains(&w) {
                return Err(self.field_error("builder.workspace_mib", "expected 1 to 1048576 MiB"));
            }
        }
        if let Some(e) = &r.eval {
            if e.iou_threshold.is_some_and(|t| !(t > 0.0 && t <= 1.0)) {
                return Err(
                    self.field_error("eval.iou_threshold", "expected an IoU in (0, 1], e.g. 0.65")
                );
            }
            if e.score_threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
                return Err(self.field_error(
                    "eval.score_threshold",
                    "expected a score from 0 to 1, e.g. 0.001",
                ));
            }
        }
        if let Some(m) = r.quantize.as_ref().and_then(|q| q.min_int8_macs) {
            if !(0.0..=1.0).contains(&m) {
                return Err(self.field_error(
                    "quantize.min_int8_macs",
                    "expected a share from 0 to 1, e.g. 0.9",
                ));
            }
        }
        match (r.target.device, r.target.dla_core) {
            (Device::Dla, None) => {
                return Err(self.field_error(
                    "target.dla_core",
                    "device: dla needs dla_core (0 or 1 on Orin)",
                ))
            }
            (Device::Gpu, Some(_)) => {
                return Err(self.field_error(
                    "target.dla_core",
                    "dla_core is only meaningful with device: dla",
                ))
            }
            _ => {}
        }
        if let Some(level) = r.builder.optimization_level {
            if level > 5 {
                return Err(self.field_error("builder.optimization_level", "expected 0..5"));
            }
        }
        for (name, p) in &r.builder.profiles {
            let field = format!("builder.profiles.{name}");
            if p.min.len() != p.opt.len() || p.opt.len() != p.max.len() {
                return Err(self.field_error(&field, "min, opt and max need the same rank"));
            }
            let ordered = p
                .min
                .iter()
                .zip(&p.opt)
                .zip(&p.max)
                .all(|((a, b), c)| 0 < *a && a <= b && b <= c);
            if !ordered {
                return Err(
                    self.field_error(&field, "expected 0 < min <= opt <= max per dimension")
                );
            }
        }
        Ok(())
    }
}

/// Deserialize YAML `text` (of the file `path`) into `T`; a mistake is an [`Error::Recipe`]
/// with its line, column and dotted field path. Recipes and matrix files share it.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    // The YAML parser takes quadratic time on deep flow nesting ([[[[...), long before serde's
    // recursion limit: no recipe nests more than a few levels, so refuse deep text up front.
    if let Some((line, col)) = too_deep(text, MAX_NESTING) {
        return Err(Error::Recipe {
            location: format!("{}:{line}:{col}", path.display()),
            field: "(top level)".into(),
            msg: format!("nested more than {MAX_NESTING} levels deep; this is not a recipe"),
        });
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let (line, col) = inner
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // serde_yaml_ng appends " at line X column Y"; we print the location up front.
        let msg = inner.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        // ... and prefixes the path of the mapping it was in ("input: unknown field"),
        // which our `field` already says.
        let msg = match msg.split_once(": ") {
            Some((head, rest)) if !head.contains([' ', '`']) => rest,
            _ => msg,
        };
        // serde echoes the offending value: keep a long one from filling the screen.
        let msg = crate::util::clip(msg, 300);
        let field = if field.len() > 200 {
            format!("{}...", &field[..field.floor_char_boundary(200)])
        } else {
            field
        };
        Error::Recipe {
            location: format!("{}:{line}:{col}", path.display()),
            field: if field == "." {
                "(top level)".into()
            } else {
                field
            },
            msg,
        }
    })
}

/// Deepest flow (`[`, `{`) or block (indentation) nesting a recipe or matrix file may have.
pub const MAX_NESTING: usize = 64;

/// Where `text` first nests deeper than `max`: flow brackets outside quotes and comments, or
/// indentation (two columns a level, which is generous for recipes).
fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent / 2 > max {
            return Some((n + 1, indent + 1));
        }
        let mut quote: Option<char> = None;
        for (c, ch) in line.char_indices() {
            match (quote, ch) {
                (None, '#') if c == 0 || line[..c].ends_with([' ', '\t']) => break,
                (None, '\'' | '"') => quote = Some(ch),
                (Some(q), _) if ch == q => quote = None,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > max {
                        return Some((n + 1, c + 1));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

/// An error pointing at `field` (dotted path) of the recipe `path` whose text is `text`.
pub(crate) fn field_error(path: &Path, text: &str, field: &str, msg: impl Into<String>) -> Error {
    let (line, col) = locate(text, field).unwrap_or((0, 0));
    Error::Recipe {
        location: format!("{}:{line}:{col}", path.display()),
        field: field.to_string(),
        msg: msg.into(),
    }
}

/// Remove `.` and `name/..` pairs without touching the file system, so messages show
/// `../shared/models/x.onnx` rather than `engines/../../shared/models/x.onnx`.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Find `line, column` (1-based) of a dotted field path in block-style YAML, by following
/// keys at increasing indentation. Good enough for the recipes we write and document.
pub fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let mut min_indent = 0usize;
    let mut found = None;
    let mut start = 0usize;
    let lines: Vec<&str> = text.lines().collect();
    for key in field.split('.') {
        let mut hit = None;
        for (n, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if found.is_some() && indent < min_indent {
                break; // left the parent mapping
            }
            let k = trimmed.strip_prefix("- ").unwrap_or(trimmed);
            if let Some(rest) = k.strip_prefix(key) {
                if rest.trim_start().starts_with(':') {
                    hit = Some((n, indent));
                    break;
                }
            }
        }
        let (n, indent) = hit?;
        found = Some((n + 1, indent + 1));
        start = n + 1;
        min_indent = indent + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(Path::new("engines/../../shared/m.onnx")),
            PathBuf::from("../shared/m.onnx")
        );
        assert_eq!(normalize(Path::new("./a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("/x/../y")), PathBuf::from("/y"));
    }

    #[test]
    fn locate_follows_nesting() {
        let text =
            "model: a.onnx\ninput:\n  tensor: x\n  shape: [1, 3, 4, 4]\ncalibration:\n  shape: 3\n";
        assert_eq!(locate(text, "input.shape"), Some((4, 3)));
        assert_eq!(locate(text, "calibration.shape"), Some((6, 3)));
        assert_eq!(locate(text, "model"), Some((1, 1)));
    }
}
