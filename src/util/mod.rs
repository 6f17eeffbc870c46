//! Small helpers shared by every module: atomic artifact writes, content hashes, progress
//! bars.

pub mod input;
pub mod memory;
mod progress;

pub use progress::progress_bar;

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Write a file atomically: temporary file in the same folder, fsync, rename. A crash or
/// Ctrl-C leaves either the old file or none, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage(path, bytes)?
        .persist(path)
        .map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// `s` cut after `max` characters, with the total said, so a hostile value cannot fill an
/// error line.
pub fn clip(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n > max {
        format!(
            "{}... ({n} characters in all)",
            s.chars().take(max).collect::<String>()
        )
    } else {
        s.to_string()
    }
}

/// Write several files as a set: every content goes to a temporary file beside its target
/// (and a target that is a folder or other non-file is refused) before the first rename, so
/// a failure while writing leaves none of them changed. Only a rename failing midway,
/// after all the data is on disk, can leave part of the set replaced.
pub fn write_set_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    stage_set(files)?.commit()
}

/// A set of files written to temporary files beside their targets, renamed into place by
/// [`StagedSet::commit`] in the order given (dropped uncommitted: nothing changes).
pub struct StagedSet<'a> {
    files: Vec<(&'a Path, tempfile::NamedTempFile)>,
}

impl StagedSet<'_> {
    /// Rename every file into place, in order.
    pub fn commit(self) -> Result<()> {
        for (path, tmp) in self.files {
            tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        }
        Ok(())
    }
}

/// Stage `files` (see [`write_set_atomic`]) without touching any target yet.
pub fn stage_set<'a>(files: &[(&'a Path, &[u8])]) -> Result<StagedSet<'a>> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if !m.is_file() {
                return Err(Error::Invalid(format!(
                    "{}: exists and is not a regular file; remove it or choose another output folder. Nothing was written",
                    path.display()
                )));
            }
        }
        staged.push((*path, stage(path, bytes)?));
    }
    Ok(StagedSet { files: staged })
}

/// `bytes` in a synced temporary file beside `path`, mode 0644.
fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    // tempfile creates 0600; artifacts are meant to be shared (CI uploads, other users).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perms)
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    Ok(tmp)
}

/// Seconds since the Unix epoch (0 on a clock set before it): reports' `created_unix_s`.
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Lowercase hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex sha256 of a file's content, streamed (model files can be large).
/// The content id of an image in a record (provenance, matrix cell ids): its sha256, or for
/// a file over the image size limit, which is never decoded (refused or skipped), its size,
/// so a 3 GiB file named `.jpg` costs a `stat`, not seconds of reading.
pub fn image_content_id(path: &Path) -> Result<String> {
    let limit = input::IMAGE.max_bytes;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() > limit => Ok(format!(
            "not read: {} bytes, over the {limit}-byte image limit",
            m.len()
        )),
        _ => sha256_file(path),
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = input::open(path, input::BINARY)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
