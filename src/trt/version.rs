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
        if it.next().is_some() || !(8..=11).contains(&major) {
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
    fn cache_numbers_follow_nv_tensorrt_version() {
        assert_eq!(TrtVersion::parse("8.5.2").unwrap().cache_number(), 8502);
        assert_eq!(TrtVersion::parse("8.6.2").unwrap().cache_number(), 8602);
        assert_eq!(TrtVersion::parse("10.3").unwrap().cache_number(), 100300);
        assert!(TrtVersion::parse("7.1").is_none());
        assert!(TrtVersion::parse("ten").is_none());
    }
}
