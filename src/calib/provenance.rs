//! `provenance.json`: everything a calibration result depends on, so that a cache made from
//! other inputs is refused as stale (TensorRT itself silently accepts stale caches).
//!
//! Recorded and compared, in this order (the first difference is reported):
//! `tool_version` (our algorithms may change between versions), `tensorrt` (the cache header
//! number depends on it), `model.sha256`, `input.*` (the contract: preprocessing changes every
//! value), `calibration.*` (algorithm and the parameters that change an amax), `images`.
//!
//! Deliberately not compared, because the result provably does not depend on them (histograms
//! are order- and batch-independent, see `histogram`): batch size, image order, the shuffle seed
//! and file names. Images are compared as a multiset of content hashes: the same files renamed or
//! reordered give the byte-identical cache. `max_clip_share` only sets report flags, not amaxes,
//! so it is recorded but not compared. The model's and images' paths are informational.

use super::range::RangeParams;
use crate::error::{Error, Result, StaleFix};
use crate::recipe::{Algorithm, InputContract};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::util::{sha256_file, sha256_hex as sha256_bytes};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// As given (informational, not compared).
    pub path: String,
    pub sha256: String,
}

impl FileRecord {
    pub fn of(path: &Path) -> Result<Self> {
        Ok(FileRecord {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
        })
    }
}

/// The calibration parameters that change a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub algorithm: Algorithm,
    pub input_algorithm: Algorithm,
    pub percentile: f64,
    pub bins: usize,
    /// Recorded for the report; not compared (it only sets flags).
    pub max_clip_share: f64,
    pub drop_nonfinite: bool,
    /// Fine bins of the streaming histogram (our method's resolution).
    pub histogram_bins: usize,
}

impl CalibrationRecord {
    pub fn new(p: &RangeParams, drop_nonfinite: bool) -> Self {
        CalibrationRecord {
            algorithm: p.algorithm,
            input_algorithm: p.input_algorithm,
            percentile: p.percentile,
            bins: p.bins,
            max_clip_share: p.max_clip_share,
            drop_nonfinite,
            histogram_bins: super::histogram::FINE_BINS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// trtforge::TOOL_VERSION of the run.
    pub tool_version: String,
    /// Targeted TensorRT version, `major.minor.patch`.
    pub tensorrt: String,
    pub model: FileRecord,
    pub input: InputContract,
    pub calibration: CalibrationRecord,
    /// Images in the order they were used.
    pub images: Vec<FileRecord>,
    /// sha256 of each file of the artifact set as written (file name -> hash), so that an
    /// edited or emptied cache or range file beside intact provenance is refused as stale.
    /// A result, not an input: never compared by [`Provenance::first_difference`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + if s.len() > 12 { ".." } else { "" }
}

impl Provenance {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::util::input::read(path, crate::util::input::TEXT)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Stale {
            path: path.to_path_buf(),
            why: format!("unreadable provenance ({e})"),
            fix: StaleFix::Recalibrate,
        })
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data");
        s.push('\n');
        s
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()).map_err(|e| Error::io(path, e))
    }

    /// The first field (dotted name) where `self` (from the cache at `path`) and `now` differ,
    /// as `Error::Stale`; Ok when the cache can be reused.
    pub fn check_matches(&self, now: &Provenance, path: &Path) -> Result<()> {
        match self.first_difference(now) {
            None => Ok(()),
            Some(why) => Err(Error::Stale {
                path: path.to_path_buf(),
                why,
                fix: StaleFix::Recalibrate,
            }),
        }
    }

    /// Description of the first difference, e.g. `model sha256 differs (cache: ab12.., now: cd34..)`.
    pub fn first_difference(&self, now: &Provenance) -> Option<String> {
        let diff = |field: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            Some(format!("{field} differs (cache: {a}, now: {b})"))
        };
        if self.tool_version != now.tool_version {
            return diff("tool_version", &self.tool_version, &now.tool_version);
        }
        if self.tensorrt != now.tensorrt {
            return diff("tensorrt", &self.tensorrt, &now.tensorrt);
        }
        if self.model.sha256 != now.model.sha256 {
            return diff(
                "model sha256",
                &short(&self.model.sha256),
                &short(&now.model.sha256),
            );
        }
        if let Some(d) = first_json_difference("input", &self.input, &now.input) {
            return Some(d);
        }
        let (a, b) = (&self.calibration, &now.calibration);
        // Compare all but max_clip_share (flags only).
        let strip = |c: &CalibrationRecord| CalibrationRecord {
            max_clip_share: 0.0,
            ..c.clone()
        };
        if let Some(d) = first_json_difference("calibration", &strip(a), &strip(b)) {
            return Some(d);
        }
        if self.images.len() != now.images.len() {
            return diff("images count", &self.images.len(), &now.images.len());
        }
        let mut old: Vec<&str> = self.images.iter().map(|i| i.sha256.as_str()).collect();
        old.sort_unstable();
        // The first image (in the current order) whose content the cache did not see.
        let mut remaining = old.clone();
        for img in &now.images {
            match remaining.binary_search(&img.sha256.as_str()) {
                Ok(i) => {
                    remaining.remove(i);
                }
                Err(_) => {
                    return Some(format!(
                        "images differ: {} (sha256 {}) was not in the calibration set",
                        img.path,
                        short(&img.sha256)
                    ))
                }
            }
        }
        None
    }
}

/// First differing leaf between two serialisable values, named `prefix.field`.
fn first_json_difference<T: Serialize>(prefix: &str, a: &T, b: &T) -> Option<String> {
    let a = serde_json::to_value(a).expect("plain data");
    let b = serde_json::to_value(b).expect("plain data");
    json_diff(prefix, &a, &b)
}

fn json_diff(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = json_diff(&p, va, vb) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{p} differs (cache: {va}, now: absent)")),
                }
            }
            y.iter()
                .find(|(k, _)| !x.contains_key(*k))
                .map(|(k, vb)| format!("{path}.{k} differs (cache: absent, now: {vb})"))
        }
        _ if a == b => None,
        _ => Some(format!("{path} differs (cache: {a}, now: {b})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{ChannelOrder, InputDtype, Interpolation, ResizeMode};

    fn sample() -> Provenance {
        Provenance {
            tool_version: crate::TOOL_VERSION.into(),
            tensorrt: "10.3.0".into(),
            model: FileRecord {
                path: "m.onnx".into(),
                sha256: sha256_bytes(b"model"),
            },
            input: InputContract {
                tensor: "images".into(),
                shape: [1, 3, 416, 416],
                dtype: InputDtype::Float32,
                channel_order: ChannelOrder::Bgr,
                scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
                resize: ResizeMode::LetterboxTopLeft,
                pad_value: 114.0,
                interpolation: Interpolation::Linear,
            },
            calibration: CalibrationRecord::new(&RangeParams::default(), false),
            images: ["a", "b", "c"]
                .iter()
                .map(|n| FileRecord {
                    path: format!("{n}.jpg"),
                    sha256: sha256_bytes(n.as_bytes()),
                })
                .collect(),
            outputs: Default::default(),
        }
    }

    fn stale(cache: &Provenance, now: &Provenance) -> String {
        cache
            .check_matches(now, Path::new("out/provenance.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn identical_and_harmless_changes_match() {
        let a = sample();
        a.check_matches(&a.clone(), Path::new("p")).unwrap();
        let mut b = a.clone();
        b.images.reverse(); // order does not change the result
        b.images[0].path = "renamed.jpg".into(); // nor do names
        b.model.path = "elsewhere/m.onnx".into();
        b.calibration.max_clip_share = 0.5; // flags only
        a.check_matches(&b, Path::new("p")).unwrap();
        let back: Provenance = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(back, a);
    }

    /// One stale case per compared field; the message names the field.
    #[test]
    fn each_field_makes_the_cache_stale() {
        let base = sample();
        type Edit = fn(&mut Provenance);
        let cases: Vec<(&str, Edit)> = vec![
            ("tool_version", |p| p.tool_version = "0.0.0-other".into()),
            ("tensorrt", |p| p.tensorrt = "8.6.2".into()),
            ("model sha256", |p| p.model.sha256 = sha256_bytes(b"other")),
            ("input.tensor", |p| p.input.tensor = "x".into()),
            ("input.shape", |p| p.input.shape = [1, 3, 320, 320]),
            ("input.dtype", |p| p.input.dtype = InputDtype::Float16),
            ("input.channel_order", |p| {
                p.input.channel_order = ChannelOrder::Rgb
            }),
            ("input.scale", |p| p.input.scale = 1.0 / 255.0),
            ("input.mean", |p| p.input.mean = [1.0, 2.0, 3.0]),
            ("input.std", |p| p.input.std = [2.0; 3]),
            ("input.resize", |p| p.input.resize = ResizeMode::Stretch),
            ("input.pad_value", |p| p.input.pad_value = 0.0),
            ("input.interpolation", |p| {
                p.input.interpolation = Interpolation::Nearest
            }),
            ("calibration.algorithm", |p| {
                p.calibration.algorithm = Algorithm::Minmax
            }),
            ("calibration.input_algorithm", |p| {
                p.calibration.input_algorithm = Algorithm::Entropy
            }),
            ("calibration.percentile", |p| {
                p.calibration.percentile = 99.9
            }),
            ("calibration.bins", |p| p.calibration.bins = 4096),
            ("calibration.drop_nonfinite", |p| {
                p.calibration.drop_nonfinite = true
            }),
            ("calibration.histogram_bins", |p| {
                p.calibration.histogram_bins = 1
            }),
            ("images count", |p| {
                p.images.pop();
            }),
            ("images differ: b.jpg", |p| {
                p.images[1].sha256 = sha256_bytes(b"edited")
            }),
        ];
        for (field, edit) in cases {
            let mut now = base.clone();
            edit(&mut now);
            let msg = stale(&base, &now);
            assert!(
                msg.contains(field) && msg.contains("--force") && msg.contains("provenance.json"),
                "{field}: {msg}"
            );
        }
        let mut now = base.clone();
        now.model.sha256 = sha256_bytes(b"other");
        let msg = stale(&base, &now);
        assert!(
            msg.contains(&format!("cache: {}..", &base.model.sha256[..12])),
            "{msg}"
        );
    }

    #[test]
    fn hashes_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(sha256_file(&d.path().join("missing")).is_err());
    }
}
