//! The calibration artifact set in an output folder, read and written in one place:
//! `calibration.cache` (TensorRT text format), `ranges.json`, `dynamic_range.txt` and
//! `provenance.json`, the record of the inputs they were made from and of the files written.
//!
//! The invariant both writers (`trtforge calibrate`, and `trtforge build` storing the cache
//! TensorRT's calibrator produced) rely on: the set counts as fresh only when
//! `provenance.json` matches the current inputs *and* every other file still has the sha256
//! provenance recorded for it. Provenance is removed first and written last, so an
//! interrupted write leaves a set whose inputs are unknown (refused as stale), a mixed set
//! fails the hashes, and an edited or emptied file beside intact provenance is stale too.
//! Everything is validated before the first byte is written, so a refused set leaves the
//! previous one untouched.

use super::cache::{dynamic_range_txt, ranges_json, CalibrationCache};
use super::provenance::{sha256_bytes, sha256_file, Provenance};
use crate::error::{Error, Result, StaleFix};
use std::path::Path;

pub const CACHE_FILE: &str = "calibration.cache";
pub const RANGES_FILE: &str = "ranges.json";
pub const DYNAMIC_RANGE_FILE: &str = "dynamic_range.txt";
pub const PROVENANCE_FILE: &str = "provenance.json";

/// Write the set: validate every file's content and stage all four files, then drop the old
/// provenance and rename the range files, the cache and the new provenance (with their
/// hashes) into place, provenance last.
pub fn write(
    out: &Path,
    ranges: &[(String, f32)],
    cache: &[u8],
    provenance: &Provenance,
) -> Result<()> {
    check_ranges(ranges)?;
    let text = std::str::from_utf8(cache).map_err(|_| {
        Error::Invalid(format!(
            "{}: the calibration cache to write is not UTF-8 text; nothing was written",
            out.join(CACHE_FILE).display()
        ))
    })?;
    // The bytes must read back as the cache they claim to be (TensorRT's own, on the build
    // path, included): a cache nobody can read is refused before anything is written.
    CalibrationCache::parse(text, &out.join(CACHE_FILE))?;
    let files = [
        (RANGES_FILE, ranges_json(ranges).into_bytes()),
        (DYNAMIC_RANGE_FILE, dynamic_range_txt(ranges).into_bytes()),
        (CACHE_FILE, cache.to_vec()),
    ];
    let mut record = provenance.clone();
    record.outputs = files
        .iter()
        .map(|(name, bytes)| (name.to_string(), sha256_bytes(bytes)))
        .collect();

    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let prov = out.join(PROVENANCE_FILE);
    let prov_json = record.to_json();
    let paths: Vec<_> = files.iter().map(|(name, _)| out.join(name)).collect();
    let mut set: Vec<(&Path, &[u8])> = paths
        .iter()
        .zip(&files)
        .map(|(p, (_, bytes))| (p.as_path(), bytes.as_slice()))
        .collect();
    set.push((&prov, prov_json.as_bytes()));
    // Everything is on disk before the old set is touched: a refusal or a full disk while
    // staging leaves the previous set as it was, fresh or not.
    let staged = crate::util::stage_set(&set)?;
    if prov.exists() {
        std::fs::remove_file(&prov).map_err(|e| Error::io(&prov, e))?;
    }
    staged.commit()
}

/// Names and amaxes that every file of the set can hold: `dynamic_range.txt` is one
/// `name:amax` line per tensor and the cache one `name: hex` line.
fn check_ranges(ranges: &[(String, f32)]) -> Result<()> {
    for (name, amax) in ranges {
        if name.is_empty() || name.contains(['\n', '\r']) {
            return Err(Error::Invalid(format!(
                "tensor name {:?} cannot be written to {DYNAMIC_RANGE_FILE} or a calibration cache \
                 (empty or has a line break); rename it in the model. Nothing was written",
                crate::util::clip(name, 200)
            )));
        }
        if !(amax.is_finite() && *amax >= 0.0) {
            return Err(Error::Invalid(format!(
                "tensor '{}' has amax {amax}; a range must be finite and >= 0. Nothing was written",
                crate::util::clip(name, 200)
            )));
        }
    }
    Ok(())
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
            let recorded = Provenance::read(&prov)?;
            recorded.check_matches(now, &prov)?;
            verify_outputs(out, &recorded)?;
            Ok(Some(CalibrationCache::read(&cache)?))
        }
    }
}

/// Check that every file of the set in `out` is the one `recorded` hashed when it was
/// written; a stale error names the first file that is missing or differs.
pub fn verify_outputs(out: &Path, recorded: &Provenance) -> Result<()> {
    let stale = |path: &Path, why: String| Error::Stale {
        path: path.to_path_buf(),
        why,
        fix: StaleFix::Recalibrate,
    };
    // Exactly the three files of a set: names come from a file a user can edit, so none
    // may point elsewhere (`../`, absolute) or be missing from the record.
    let names: Vec<&str> = recorded.outputs.keys().map(String::as_str).collect();
    let mut want_names = [CACHE_FILE, DYNAMIC_RANGE_FILE, RANGES_FILE];
    want_names.sort_unstable();
    if names != want_names {
        let why = if names.is_empty() {
            "it records no hashes of the files written with it (written by an older trtforge), so an edited cache would pass".to_string()
        } else {
            format!("its outputs name {names:?}, not the set's {want_names:?}")
        };
        return Err(stale(&out.join(PROVENANCE_FILE), why));
    }
    for (name, want) in &recorded.outputs {
        let path = out.join(name);
        if !path.is_file() {
            return Err(stale(
                &path,
                format!("missing, but {PROVENANCE_FILE} lists it"),
            ));
        }
        let got = sha256_file(&path)?;
        if &got != want {
            return Err(stale(
                &path,
                format!("edited after it was written (sha256 {:.12}.., {PROVENANCE_FILE} recorded {:.12}..)", got, want),
            ));
        }
    }
    Ok(())
}

/// [`verify_outputs`] for a folder that may hold a set: Ok when it has neither a cache nor
/// provenance; a cache without provenance is of unknown origin, hence stale.
pub fn verify_if_present(out: &Path) -> Result<()> {
    let (cache, prov) = (out.join(CACHE_FILE), out.join(PROVENANCE_FILE));
    match (cache.is_file(), prov.is_file()) {
        (false, false) => Ok(()),
        (true, false) => Err(Error::Stale {
            path: cache,
            why: format!("no {PROVENANCE_FILE} beside it, so its inputs are unknown"),
            fix: StaleFix::Recalibrate,
        }),
        _ => verify_outputs(out, &Provenance::read(&prov)?),
    }
}
