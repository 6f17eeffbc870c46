//! TensorRT versions: as recipes name them (`major.minor[.patch]`), as `NV_TENSORRT_VERSION`
//! numbers them (calibration cache headers, `getInferLibVersion`), and what each version has.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A TensorRT version as recipes and manifests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrtVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl TrtVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
        let patch = it.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
        // minor and patch are below 100 in every release: larger ones would wrap into the
        // next field of NV_TENSORRT_VERSION (10.42949673 became TRT-100004).
        if it.next().is_some() || !(8..=11).contains(&major) || minor > 99 || patch > 99 {
            return None;
        }
        Some(TrtVersion {
            major,
            minor,
            patch,
        })
    }

    /// NV_TENSORRT_VERSION as TensorRT computes it (the number in calibration cache headers):
    /// before 10 major*1000 + minor*100 + patch, from 10 on major*10000 + minor*100 + patch.
    pub fn cache_number(&self) -> u32 {
        if self.major < 10 {
            self.major * 1000 + self.minor * 100 + self.patch
        } else {
            self.major * 10000 + self.minor * 100 + self.patch
        }
    }

    /// TensorRT 11 removed the calibrator: only explicit (Q/DQ) quantization.
    pub fn has_calibrator(&self) -> bool {
        self.major < 11
    }

    /// TensorRT 11 networks are always strongly typed: no kFP16/kINT8 flags, no per-layer
    /// precision; precision comes from the model.
    pub fn always_strongly_typed(&self) -> bool {
        self.major >= 11
    }

    /// Whether a Jetson with this TensorRT can run DLA engines: JetPack 5 and 6 (up to 10.3)
    /// on Orin. JetPack 7 has none: Thor has no DLA and the 10.16 build has no Orin DLA.
    pub fn has_jetson_dla(&self) -> bool {
        (self.major, self.minor) <= (10, 3)
    }

    /// Decode NV_TENSORRT_VERSION / getInferLibVersion (see [`TrtVersion::cache_number`]).
    pub fn from_number(v: i32) -> Option<Self> {
        let v = u32::try_from(v).ok()?;
        let (major, minor, patch) = if v >= 10000 {
            (v / 10000, (v / 100) % 100, v % 100)
        } else {
            (v / 1000, (v / 100) % 10, v % 100)
        };
        (8..=11).contains(&major).then_some(TrtVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether a shim compiled against `self` (the headers) can drive `library`: the same
    /// major (vtables differ across majors) and a library at least as new within it (a newer
    /// header may call methods an older library lacks). `Err` says why not.
    pub fn can_drive(&self, library: TrtVersion) -> std::result::Result<(), String> {
        if self.major != library.major || library.minor < self.minor {
            return Err(format!(
                "trtforge was compiled against TensorRT {self} headers but the library is TensorRT \
                 {library}; rebuild trtforge against TensorRT {}.{}'s headers \
                 (TENSORRT_INCLUDE_DIR) or load a {}.{}+ library",
                library.major, library.minor, self.major, self.minor
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for TrtVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Recipes write the version as text (`"10.3"`, `8.5.2`); it is parsed once, when the
/// recipe loads, so a bad version is a located recipe error.
impl<'de> Deserialize<'de> for TrtVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TrtVersion::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{s}' is not a TensorRT version: expected one like 8.5.2, 8.6 or 10.3 (8 to 11)"
            ))
        })
    }
}

impl Serialize for TrtVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_decode_and_compatibility_is_same_major_and_not_older() {
        let v = |s: &str| TrtVersion::parse(s).unwrap();
        assert_eq!(TrtVersion::from_number(8502), Some(v("8.5.2")));
        assert_eq!(TrtVersion::from_number(100300), Some(v("10.3")));
        assert_eq!(TrtVersion::from_number(110100), Some(v("11.1")));
        assert_eq!(TrtVersion::from_number(-1), None);
        assert!(v("10.3").can_drive(v("10.3.1")).is_ok());
        assert!(v("10.3").can_drive(v("10.16")).is_ok());
        let e = v("10.16").can_drive(v("10.3")).unwrap_err();
        assert!(e.contains("10.16.0 headers") && e.contains("10.3.0"), "{e}");
        assert!(v("10.3").can_drive(v("11.1")).is_err());
        assert!(v("8.6").can_drive(v("10.3")).is_err());
        assert!(v("10.3").has_jetson_dla() && v("8.5.2").has_jetson_dla());
        assert!(!v("10.16").has_jetson_dla() && !v("11.1").has_jetson_dla());
        assert!(v("11.1").always_strongly_typed() && !v("11.1").has_calibrator());
    }

    #[test]
    fn cache_numbers_follow_nv_tensorrt_version() {
        assert_eq!(TrtVersion::parse("8.5.2").unwrap().cache_number(), 8502);
        assert_eq!(TrtVersion::parse("8.6.2").unwrap().cache_number(), 8602);
        assert_eq!(TrtVersion::parse("10.3").unwrap().cache_number(), 100300);
        assert!(TrtVersion::parse("7.1").is_none());
        assert!(TrtVersion::parse("ten").is_none());
    }
}
