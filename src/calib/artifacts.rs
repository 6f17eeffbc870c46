//! The calibration artifact set in an output folder, read and written in one place:
//! `calibration.cache` (TensorRT text format), `ranges.json`, `dynamic_range.txt` and
//! `provenance.json`, the record of the inputs they were made from.
//!
//! The invariant both writers (`trtforge calibrate`, and `trtforge build` storing the cache
//! TensorRT's calibrator produced) rely on: the set counts as fresh only when
//! `provenance.json` matches the current inputs, and provenance is removed first and
//! written last, so an interrupted write leaves a set whose inputs are unknown (refused as
//! stale), never one that looks fresh.

use super::cache::{dynamic_range_txt, ranges_json, CalibrationCache};
use super::provenance::Provenance;
use crate::error::{Error, Result, StaleFix};
use std::path::Path;

pub const CACHE_FILE: &str = "calibration.cache";
pub const RANGES_FILE: &str = "ranges.json";
pub const DYNAMIC_RANGE_FILE: &str = "dynamic_range.txt";
pub const PROVENANCE_FILE: &str = "provenance.json";

/// Write the set: drop the old provenance, then the range files, the cache bytes and the
/// new provenance, each atomically.
pub fn write(
    out: &Path,
    ranges: &[(String, f32)],
    cache: &[u8],
    provenance: &Provenance,
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let prov = out.join(PROVENANCE_FILE);
    if prov.exists() {
        std::fs::remove_file(&prov).map_err(|e| Error::io(&prov, e))?;
    }
    crate::util::write_atomic(&out.join(RANGES_FILE), ranges_json(ranges).as_bytes())?;
    crate::util::write_atomic(
        &out.join(DYNAMIC_RANGE_FILE),
        dynamic_range_txt(ranges).as_bytes(),
    )?;
    crate::util::write_atomic(&out.join(CACHE_FILE), cache)?;
    crate::util::write_atomic(&prov, provenance.to_json().as_bytes())
}

/// Reuse a fresh cache in `out`, or refuse a stale one. `Ok(None)`: nothing there yet.
pub fn check_existing(out: &Path, now: &Provenance) -> Result<Option<CalibrationCache>> {
    let (cache, prov) = (out.join(CACHE_FILE), out.join(PROVENANCE_FILE));
    match (cache.is_file(), prov.is_file()) {
        (false, false) => Ok(None),
        (true, false) => Err(Error::Stale {
            path: cache,
            why: format!("no {PROVENANCE_FILE} beside it, so its inputs are unknown"),
            fix: StaleFix::Recalibrate,
        }),
        (false, true) => Ok(None),
        (true, true) => {
            Provenance::read(&prov)?.check_matches(now, &prov)?;
            Ok(Some(CalibrationCache::read(&cache)?))
        }
    }
}
