//! TensorRT calibration cache (text) and the two range files next to it.
//!
//! Cache format: a header line `TRT-<N>-<Algorithm>` (N = NV_TENSORRT_VERSION of the TensorRT
//! that reads it, see [`TrtVersion::cache_number`]), then one `tensor_name: hex` line per
//! tensor, hex being the IEEE-754 float32 bit pattern of scale = amax / 127 (computed in f32),
//! lowercase, without zero padding (a zero scale is `0`). We write a final newline; the parser
//! accepts files with or without one, CRLF line ends, tensor names containing `:` (the hex is
//! after the last `: `), and any algorithm name TensorRT has used (EntropyCalibration2,
//! EntropyCalibration, LegacyCalibration, MinMaxCalibration, ...).
//!
//! `ranges.json` holds `{tensor: amax}` and `dynamic_range.txt` one `name:amax` per line (as
//! TensorRT's sampleINT8API reads for `ITensor::setDynamicRange`), both in graph order with the
//! amax as computed; a cache reader gets `scale * 127`, which may differ from it by one ulp.

use crate::error::{Error, Result};
use crate::recipe::{Algorithm, TrtVersion};
use std::path::Path;

/// One tensor's entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CacheEntry {
    pub tensor: String,
    /// scale = amax / 127, exactly as stored.
    pub scale: f32,
}

impl CacheEntry {
    /// From an amax: scale = amax / 127 in f32.
    pub fn from_amax(tensor: impl Into<String>, amax: f32) -> Self {
        CacheEntry {
            tensor: tensor.into(),
            scale: amax / 127.0,
        }
    }
    /// The dynamic range TensorRT derives from the scale.
    pub fn amax(&self) -> f32 {
        self.scale * 127.0
    }
}

/// A parsed or to-be-written calibration cache.
/// Longest tensor name a cache may hold (ONNX names are short; this bounds every table).
pub const MAX_NAME: usize = 4096;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CalibrationCache {
    /// The number after `TRT-` (NV_TENSORRT_VERSION).
    pub version: u32,
    /// The algorithm name after the version, e.g. `EntropyCalibration2`.
    pub algorithm: String,
    pub entries: Vec<CacheEntry>,
}

/// Header algorithm name for our algorithms: TensorRT knows EntropyCalibration2 and
/// MinMaxCalibration; percentile and MSE ranges are consumed like entropy ones.
pub fn header_algorithm(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Minmax => "MinMaxCalibration",
        Algorithm::Entropy | Algorithm::Percentile | Algorithm::Mse => "EntropyCalibration2",
    }
}

/// Decode a TensorRT version from a cache number (inverse of [`TrtVersion::cache_number`]).
pub fn version_of(n: u32) -> Option<TrtVersion> {
    let (major, rest) = if n >= 100_000 {
        (n / 10_000, n % 10_000)
    } else {
        (n / 1000, n % 1000)
    };
    let v = TrtVersion {
        major,
        minor: rest / 100,
        patch: rest % 100,
    };
    (v.cache_number() == n && (5..=20).contains(&major)).then_some(v)
}

/// f32 bit pattern as TensorRT writes it: lowercase hex, no zero padding.
pub fn scale_hex(scale: f32) -> String {
    format!("{:x}", scale.to_bits())
}

impl CalibrationCache {
    pub fn new(trt: TrtVersion, algorithm: Algorithm) -> Self {
        CalibrationCache {
            version: trt.cache_number(),
            algorithm: header_algorithm(algorithm).into(),
            entries: vec![],
        }
    }

    pub fn push_amax(&mut self, tensor: impl Into<String>, amax: f32) {
        self.entries.push(CacheEntry::from_amax(tensor, amax));
    }

    pub fn trt_version(&self) -> Option<TrtVersion> {
        version_of(self.version)
    }

    /// The cache text. Fails on names TensorRT could not read back (line breaks) and on
    /// negative or non-finite scales.
    pub fn to_text(&self) -> Result<String> {
        let mut s = format!("TRT-{}-{}\n", self.version, self.algorithm);
        for e in &self.entries {
            if e.tensor.contains(['\n', '\r']) || e.tensor.is_empty() {
                return Err(Error::Invalid(format!(
                    "tensor name {:?} cannot be written to a calibration cache (empty or has a line break); rename it in the model",
                    e.tensor
                )));
            }
            if !(e.scale.is_finite() && e.scale >= 0.0) {
                return Err(Error::Invalid(format!(
                    "tensor '{}' has scale {}; a calibration cache needs a finite scale >= 0",
                    e.tensor, e.scale
                )));
            }
            s.push_str(&format!("{}: {}\n", e.tensor, scale_hex(e.scale.abs())));
        }
        Ok(s)
    }

    /// Parse cache text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |line: usize, msg: String| {
            Error::Invalid(format!(
            "{}:{line}: {msg}; expected a TensorRT calibration cache (`TRT-<version>-<Algorithm>` then `tensor: hexscale` lines)",
            path.display()
        ))
        };
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
        let header = header.trim_end_matches('\r').trim();
        let mut parts = header.splitn(3, '-');
        let (Some("TRT"), Some(v), Some(algo)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                1,
                format!("header {header:?} is not TRT-<version>-<Algorithm>"),
            ));
        };
        let version: u32 = v
            .parse()
            .map_err(|_| bad(1, format!("version {v:?} in the header is not a number")))?;
        if algo.is_empty() {
            return Err(bad(1, "the header names no algorithm".into()));
        }
        let mut entries = vec![];
        let mut seen = std::collections::HashSet::new();
        for (n, line) in lines {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (name, hex) = line
                .rsplit_once(':')
                .ok_or_else(|| bad(n + 1, format!("line {line:?} has no `: `")))?;
            let hex = hex.trim();
            let bits = u32::from_str_radix(hex, 16).map_err(|_| {
                bad(
                    n + 1,
                    format!("{hex:?} is not a hexadecimal float32 bit pattern"),
                )
            })?;
            if hex.len() > 8 {
                return Err(bad(n + 1, format!("{hex:?} is longer than 8 hex digits")));
            }
            // TensorRT writes one positive finite scale per named tensor; anything else would
            // calibrate a garbage range (or hide in a diff as 0 %).
            let scale = f32::from_bits(bits);
            if !(scale.is_finite() && scale >= 0.0) {
                return Err(bad(
                    n + 1,
                    format!("tensor {name:?} has scale {scale}, not a finite non-negative number"),
                ));
            }
            if name.is_empty() || name.len() > MAX_NAME {
                return Err(bad(
                    n + 1,
                    format!("a tensor name of {} bytes (1 to {MAX_NAME})", name.len()),
                ));
            }
            if !seen.insert(name) {
                return Err(bad(n + 1, format!("tensor {name:?} appears twice")));
            }
            entries.push(CacheEntry {
                tensor: name.to_string(),
                scale,
            });
        }
        Ok(CalibrationCache {
            version,
            algorithm: algo.to_string(),
            entries,
        })
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::util::input::read(path, crate::util::input::CACHE)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::Invalid(format!(
                "{}: not UTF-8 text; expected a TensorRT calibration cache",
                path.display()
            ))
        })?;
        Self::parse(&text, path)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_text()?).map_err(|e| Error::io(path, e))
    }

    pub fn get(&self, tensor: &str) -> Option<&CacheEntry> {
        self.entries.iter().find(|e| e.tensor == tensor)
    }
}

/// `ranges.json`: `{tensor: amax}` in the given (graph) order.
pub fn ranges_json(ranges: &[(String, f32)]) -> String {
    // Written by hand so each amax prints as the shortest text that reads back as the same
    // f32 (serde_json would widen to f64 first: 0.1 -> 0.10000000149011612).
    let mut s = String::from("{");
    for (i, (name, amax)) in ranges.iter().enumerate() {
        let key = serde_json::to_string(name).expect("string");
        let sep = if i == 0 { "" } else { "," };
        s.push_str(&format!("{sep}\n  {key}: {}", json_f32(*amax)));
    }
    s.push_str(if ranges.is_empty() { "}\n" } else { "\n}\n" });
    s
}

/// JSON number for a finite f32 (`1` -> `1.0` is not needed: JSON numbers are untyped).
fn json_f32(x: f32) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// Parse `ranges.json` back (order kept).
pub fn parse_ranges_json(text: &str, path: &Path) -> Result<Vec<(String, f32)>> {
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "{}: {e}; expected a JSON object {{tensor: amax}}",
                path.display()
            ))
        })?;
    v.into_iter()
        .map(|(k, x)| {
            x.as_f64().map(|a| (k.clone(), a as f32)).ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: tensor '{k}' has a non-numeric amax",
                    path.display()
                ))
            })
        })
        .collect()
}

/// `dynamic_range.txt`: one `name:amax` line per tensor.
pub fn dynamic_range_txt(ranges: &[(String, f32)]) -> String {
    ranges.iter().map(|(n, a)| format!("{n}:{a}\n")).collect()
}

/// Parse `dynamic_range.txt` (the amax is after the last `:`).
pub fn parse_dynamic_range_txt(text: &str, path: &Path) -> Result<Vec<(String, f32)>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let (name, v) = l.rsplit_once(':').ok_or_else(|| {
                Error::Invalid(format!(
                    "{}:{}: expected `tensor_name:amax`",
                    path.display(),
                    n + 1
                ))
            })?;
            let a: f32 = v.trim().parse().map_err(|_| {
                Error::Invalid(format!(
                    "{}:{}: {v:?} is not a number",
                    path.display(),
                    n + 1
                ))
            })?;
            Ok((name.to_string(), a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_tensorrt_format() {
        let mut c = CalibrationCache::new(TrtVersion::parse("8.5.2").unwrap(), Algorithm::Entropy);
        c.push_amax("images", 255.0);
        c.push_amax("zero", 0.0);
        c.push_amax("x:0", 1.0);
        let t = c.to_text().unwrap();
        assert_eq!(
            t,
            format!(
                "TRT-8502-EntropyCalibration2\nimages: {:x}\nzero: 0\nx:0: {:x}\n",
                (255f32 / 127.0).to_bits(),
                (1f32 / 127.0).to_bits()
            )
        );
        let back = CalibrationCache::parse(&t, Path::new("c")).unwrap();
        assert_eq!(back, c);
        let no_nl = CalibrationCache::parse(t.trim_end(), Path::new("c")).unwrap();
        assert_eq!(no_nl, c);
        assert_eq!(back.trt_version(), TrtVersion::parse("8.5.2"));
    }

    #[test]
    fn reads_other_algorithms_and_small_hex() {
        let t = "TRT-100300-LegacyCalibration\r\na: 3c010a14\r\nb: 1\r\n";
        let c = CalibrationCache::parse(t, Path::new("c")).unwrap();
        assert_eq!(c.algorithm, "LegacyCalibration");
        assert_eq!(c.entries[0].scale, f32::from_bits(0x3c010a14));
        assert_eq!(c.entries[1].scale.to_bits(), 1);
        assert_eq!(c.trt_version(), TrtVersion::parse("10.3.0"));
        let e = CalibrationCache::parse("hello\n", Path::new("x.cache")).unwrap_err();
        assert!(e.to_string().contains("x.cache:1"), "{e}");
        let e = CalibrationCache::parse("TRT-8602-Entropy\na: zz\n", Path::new("x")).unwrap_err();
        assert!(e.to_string().contains("x:2"), "{e}");
    }

    #[test]
    fn range_files_round_trip() {
        let r = vec![
            ("b".to_string(), 1.5f32),
            ("a".into(), 0.1),
            ("z".into(), 0.0),
        ];
        let j = ranges_json(&r);
        assert_eq!(parse_ranges_json(&j, Path::new("r")).unwrap(), r);
        let t = dynamic_range_txt(&r);
        assert_eq!(t, "b:1.5\na:0.1\nz:0\n");
        assert_eq!(parse_dynamic_range_txt(&t, Path::new("d")).unwrap(), r);
    }
}
