//! The artifact store: a folder any runner can read and write (a CI artifact, a network
//! share), one entry per id.
//!
//! ```text
//! STORE/prepared/<stage id>/   device-independent stages (reference, calibration, qdq)
//! STORE/cells/<cell id>/       one cell's result on its device
//! STORE/tmp/                   work in progress; never read as a result
//! STORE/trash/                 corrupt entries moved aside before they are rebuilt
//! STORE/accepted.json          the last accepted night (`collect --accept`)
//! ```
//!
//! Invariant: an entry folder that exists under `prepared/` or `cells/` was complete when it
//! appeared. Work happens in a folder under `tmp/`; `entry.json` (every other file's path,
//! size and sha256) is written last; then the folder is renamed into place, which is atomic
//! on one file system. A runner killed at any point leaves only a folder under `tmp/`, whose
//! `.lock` the kernel unlocks when the process dies: a later runner removes workspaces whose
//! lock it can take (never a live one, on this host or another sharing the store). Two
//! runners racing on one id both finish, the first rename wins and the second, finding a
//! complete entry in place, discards its own. An entry whose files no longer match
//! `entry.json` is corrupt: it counts as missing, is moved to `trash/` and rebuilt.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const ENTRY_FILE: &str = "entry.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Prepared,
    Cells,
}

impl Area {
    fn dir(self) -> &'static str {
        match self {
            Area::Prepared => "prepared",
            Area::Cells => "cells",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative to the entry folder, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// `entry.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub schema_version: u32,
    /// `reference`, `calibration`, `qdq` or `cell`.
    pub kind: String,
    pub id: String,
    pub trtforge: String,
    pub created_unix_s: u64,
    /// The document the id hashes.
    pub inputs: Value,
    /// Every other file of the entry, sorted by path.
    pub files: Vec<FileEntry>,
    /// What the stage or cell found (its figures, its status).
    pub result: Value,
}

#[derive(Debug)]
pub enum State {
    Missing,
    Complete(Box<Entry>),
    /// Present but not what `entry.json` says (or no `entry.json`): why.
    Corrupt(String),
}

pub struct Store {
    root: PathBuf,
}

const LOCK_FILE: &str = ".lock";

/// A folder under `tmp/` to work in, locked while it lives; removed when dropped unless
/// published.
pub struct Workspace {
    pub dir: PathBuf,
    published: bool,
    _lock: std::fs::File,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What [`Store::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Ours is the entry now.
    Written,
    /// Another runner's complete entry was already there; ours was discarded.
    AlreadyThere,
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "host".into())
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}.{}.{nanos:09}-{:08x}",
        hostname(),
        std::process::id(),
        fastrand::u32(..)
    )
}

/// Every file under `dir` except `entry.json`, relative and sorted.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(root: &Path, at: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for e in std::fs::read_dir(at).map_err(|e| Error::io(at, e))? {
            let e = e.map_err(|e| Error::io(at, e))?;
            let p = e.path();
            let ft = e.file_type().map_err(|e| Error::io(&p, e))?;
            if ft.is_dir() {
                walk(root, &p, out)?;
            } else if ft.is_file() {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                if rel != Path::new(ENTRY_FILE) && rel != Path::new(LOCK_FILE) {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["prepared", "cells", "tmp"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        // Absolute: stages and cells run recipes whose relative paths resolve against the
        // recipe's folder, so a relative workspace would land beside the recipe.
        let root = std::fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry_dir(&self, area: Area, id: &str) -> PathBuf {
        self.root.join(area.dir()).join(id)
    }

    /// Whether `id` has a complete entry, checking every file's size and hash.
    pub fn state(&self, area: Area, id: &str) -> State {
        let dir = self.entry_dir(area, id);
        if !dir.exists() {
            return State::Missing;
        }
        match verify(&dir, id) {
            Ok(e) => State::Complete(Box::new(e)),
            Err(why) => State::Corrupt(why),
        }
    }

    /// A fresh folder to work in, after removing what killed runners left.
    pub fn workspace(&self, id: &str) -> Result<Workspace> {
        self.remove_abandoned();
        let dir = self.root.join("tmp").join(format!(
            "{}.{}",
            id.get(..16).unwrap_or(id),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        Ok(Workspace {
            dir,
            published: false,
            _lock: lock,
        })
    }

    /// Workspaces whose lock nobody holds (their runner died). One without a lock file is
    /// being created, unless it is an hour old.
    fn remove_abandoned(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in rd.flatten() {
            let dir = e.path();
            let abandoned = match std::fs::File::open(dir.join(LOCK_FILE)) {
                Ok(f) => f.try_lock().is_ok(),
                Err(_) => e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(3600)),
            };
            if abandoned {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }

    /// Hash the workspace's files, write `entry.json`, rename the folder into place.
    pub fn publish(
        &self,
        mut ws: Workspace,
        area: Area,
        id: &str,
        kind: &str,
        inputs: &Value,
        result: Value,
    ) -> Result<Published> {
        relativize(&ws.dir)?;
        let mut files = Vec::new();
        for rel in list_files(&ws.dir)? {
            let p = ws.dir.join(&rel);
            // Durable before the rename makes the entry visible.
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
            let bytes = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
            files.push(FileEntry {
                path: rel_string(&rel),
                sha256: crate::util::sha256_file(&p)?,
                bytes,
            });
        }
        let entry = Entry {
            schema_version: super::cell::SCHEMA_VERSION,
            kind: kind.into(),
            id: id.into(),
            trtforge: super::cell::tool_version().into(),
            created_unix_s: crate::util::unix_now_s(),
            inputs: inputs.clone(),
            files,
            result,
        };
        let text = serde_json::to_string_pretty(&entry)
            .map_err(|e| Error::internal(format!("entry.json: {e}")))?;
        crate::util::write_atomic(&ws.dir.join(ENTRY_FILE), text.as_bytes())?;
        let dest = self.entry_dir(area, id);
        // The lock file stays behind in tmp's view only: the entry has none (the open handle
        // keeps the lock until the workspace is dropped).
        let _ = std::fs::remove_file(ws.dir.join(LOCK_FILE));
        for _ in 0..3 {
            match std::fs::rename(&ws.dir, &dest) {
                Ok(()) => {
                    ws.published = true;
                    return Ok(Published::Written);
                }
                // Another runner's entry is in place (a rename never replaces a full folder).
                Err(_) if dest.exists() => match verify(&dest, id) {
                    Ok(_) => return Ok(Published::AlreadyThere),
                    Err(why) => {
                        log::warn!("{}: corrupt ({why}); replacing it", dest.display());
                        self.discard(&dest)?;
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                    return Err(Error::Invalid(format!(
                        "{}: cannot rename {} into place: {}/tmp and {} must be on one file system (do not mount or link them separately)",
                        dest.display(),
                        ws.dir.display(),
                        self.root.display(),
                        dest.parent().unwrap_or(&dest).display()
                    )))
                }
                Err(e) => return Err(Error::io(&dest, e)),
            }
        }
        Err(Error::Invalid(format!(
            "{}: another runner keeps replacing this entry; run again",
            dest.display()
        )))
    }

    /// Move a corrupt entry aside (not deleted: someone may want to see what broke).
    pub fn discard(&self, dir: &Path) -> Result<()> {
        let trash = self.root.join("trash");
        std::fs::create_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = trash.join(format!("{name}.{}", unique_suffix()));
        match std::fs::rename(dir, &to) {
            Ok(()) => Ok(()),
            // Another runner moved it first.
            Err(_) if !dir.exists() => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Read a complete entry's file.
    pub fn file(&self, area: Area, id: &str, rel: &str) -> PathBuf {
        self.entry_dir(area, id).join(rel)
    }
}

/// Reports name the files they were written beside by their workspace path, which is gone
/// once the entry is in place and differs from runner to runner: in text reports (JSON,
/// Markdown, text) it becomes `.`, so an entry is the same wherever it was computed.
fn relativize(ws: &Path) -> Result<()> {
    let prefix = ws.display().to_string();
    for rel in list_files(ws)? {
        let text_like = matches!(
            rel.extension().and_then(|e| e.to_str()),
            Some("json" | "md" | "txt")
        );
        if !text_like {
            continue;
        }
        let p = ws.join(&rel);
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        if text.contains(&prefix) {
            crate::util::write_atomic(&p, text.replace(&prefix, ".").as_bytes())?;
        }
    }
    Ok(())
}

/// Check an entry folder against its `entry.json`.
pub fn verify(dir: &Path, id: &str) -> std::result::Result<Entry, String> {
    let path = dir.join(ENTRY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{ENTRY_FILE}: {e}"))?;
    let e: Entry = serde_json::from_str(&text).map_err(|e| format!("{ENTRY_FILE}: {e}"))?;
    if e.id != id {
        return Err(format!("{ENTRY_FILE} is for id {}", e.id));
    }
    if e.schema_version != super::cell::SCHEMA_VERSION {
        return Err(format!("schema version {}", e.schema_version));
    }
    for f in &e.files {
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("file '{}' is outside the entry", f.path));
        }
        let p = dir.join(rel);
        let bytes = std::fs::metadata(&p)
            .map_err(|_| format!("{} is missing", f.path))?
            .len();
        if bytes != f.bytes {
            return Err(format!("{}: {bytes} bytes, expected {}", f.path, f.bytes));
        }
        let sha = crate::util::sha256_file(&p).map_err(|e| e.to_string())?;
        if sha != f.sha256 {
            return Err(format!("{}: sha256 {sha}, expected {}", f.path, f.sha256));
        }
    }
    Ok(e)
}

/// Copy every file of a complete entry (but `entry.json`) into `to`.
pub fn copy_entry(store: &Store, area: Area, entry: &Entry, to: &Path) -> Result<()> {
    for f in &entry.files {
        let from = store.file(area, &entry.id, &f.path);
        let dest = to.join(&f.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::copy(&from, &dest).map_err(|e| Error::io(&from, e))?;
    }
    Ok(())
}
