//! The timing-cache file, shared by every build that names it (the nightly matrix builds
//! several engines against one cache at once). trtexec's rules (samples/utils/timingCache.cpp):
//! a missing file starts a new cache; after the build the file is re-read under a lock and
//! this build's entries are combined into what is there now, so concurrent builds add to each
//! other instead of the last one winning. Unlike trtexec, a file that exists but cannot be read
//! is an error, not a silent fresh start that later overwrites it.
//!
//! The merge itself (ITimingCache::combine) is TensorRT's; this module is the file side and is
//! always compiled, so the locking is tested here.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The file's bytes for the build, `None` when there is no file yet.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match crate::util::input::read(path, crate::util::input::CACHE) {
        Ok(b) => Ok(Some(b)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(Error::Io { path, source }) => Err(Error::Io {
            path,
            source: std::io::Error::new(
                source.kind(),
                format!("{source}; fix its permissions or point builder.timing_cache elsewhere"),
            ),
        }),
        Err(e) => Err(e),
    }
}

/// `<cache>.lock`, the file builds lock while they merge.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Store this build's cache: under an exclusive lock, re-read the file as it is now, `merge`
/// it with this build's entries, and replace the file atomically.
pub fn store(path: &Path, merge: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>>) -> Result<()> {
    let lock = lock_path(path);
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| Error::io(&lock, e))?;
    // Released when `file` drops, on every path.
    file.lock().map_err(|e| Error::io(&lock, e))?;
    let now = read(path)?;
    let merged = merge(now.as_deref())?;
    crate::util::write_atomic(path, &merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A stand-in for combine(): the union of newline-separated entries.
    fn union(file: Option<&[u8]>, ours: &str) -> Vec<u8> {
        let mut set: BTreeSet<String> = file
            .map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        set.insert(ours.to_string());
        set.into_iter().collect::<Vec<_>>().join("\n").into_bytes()
    }

    #[test]
    fn concurrent_builds_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caches/timing.cache");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    store(&path, |file| {
                        // Widen the window in which an unlocked writer would lose entries.
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(union(file, &format!("engine-{i}")))
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 8, "{text}");
    }

    #[test]
    fn missing_is_new_unreadable_is_an_error_and_a_failed_merge_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timing.cache");
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, b"old").unwrap();
        let e = store(&path, |_| Err(Error::Invalid("corrupt".into()))).unwrap_err();
        assert!(e.to_string().contains("corrupt"));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        // A folder where the file should be cannot be read: named, with the fix.
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&dir.path().display().to_string()) && e.contains("builder.timing_cache"),
            "{e}"
        );
    }
}
