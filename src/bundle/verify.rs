//! `trtforge verify BUNDLE`: before an engine is deployed, every file against `bundle.json`
//! (sizes, sha256, nothing missing, nothing extra; for an OCI layout, every blob against its
//! digest as well), then the device's facts against what the bundle was built for. Each
//! mismatch is a refusal naming the field, the bundle's value and the device's. A bundle
//! without an engine, or a device whose facts cannot be read, is never reported as success.

use super::device::{DeviceFacts, Fact};
use super::{oci, BundleInfo, BUNDLE_FILE, OCI_DIR};
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Files intact, device matches: deploy.
    Ok,
    /// A file or a device fact does not match.
    Refused,
    /// Intact, but nothing to deploy (no engine) or the device cannot be checked.
    NotDeployable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub field: String,
    pub bundle: String,
    pub device: String,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub bundle: String,
    /// `folder` or `oci-layout`.
    pub form: String,
    pub manifest_digest: Option<String>,
    pub files: usize,
    /// Files that are missing, changed or extra.
    pub file_problems: Vec<String>,
    pub engine: Option<String>,
    pub no_engine_reason: Option<String>,
    pub checks: Vec<Check>,
    pub status: Status,
}

impl Verdict {
    /// One line per problem, for stderr.
    pub fn refusals(&self) -> Vec<String> {
        let mut v: Vec<String> = self.file_problems.clone();
        for c in self.checks.iter().filter(|c| !c.ok) {
            v.push(format!(
                "{}: the bundle is for {}, this device has {}",
                c.field, c.bundle, c.device
            ));
        }
        v
    }
}

/// Files of a bundle folder other than `bundle.json` and the OCI layout, relative.
fn folder_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, at: &Path, out: &mut Vec<String>) -> Result<()> {
        for e in std::fs::read_dir(at).map_err(|e| crate::Error::io(at, e))? {
            let e = e.map_err(|e| crate::Error::io(at, e))?;
            let p = e.path();
            let rel = p.strip_prefix(root).expect("under root");
            if rel == Path::new(OCI_DIR) || rel == Path::new(BUNDLE_FILE) {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn check_file(problems: &mut Vec<String>, what: &str, p: &Path, sha: &str, bytes: u64) {
    match std::fs::metadata(p) {
        Err(_) => problems.push(format!("{what}: missing")),
        Ok(m) if m.len() != bytes => problems.push(format!(
            "{what}: {} bytes, the bundle says {bytes}",
            m.len()
        )),
        Ok(_) => match crate::util::sha256_file(p) {
            Ok(s) if s == sha => {}
            Ok(s) => problems.push(format!("{what}: sha256 {s}, the bundle says {sha}")),
            Err(e) => problems.push(format!("{what}: {e}")),
        },
    }
}

/// The bundle's description and its file problems, for a folder or an OCI layout.
fn read_and_check(path: &Path) -> Result<(BundleInfo, String, Option<String>, Vec<String>)> {
    let mut problems = Vec::new();
    if path.join("oci-layout").is_file() {
        let layout = oci::read_layout(path)?;
        let mut by_title: BTreeMap<&str, (&Path, &str, u64)> = BTreeMap::new();
        for (title, blob, sha, size) in &layout.layers {
            check_file(&mut problems, &format!("blob of {title}"), blob, sha, *size);
            by_title.insert(title, (blob, sha, *size));
        }
        let Some((b, ..)) = by_title.get(BUNDLE_FILE) else {
            return Err(crate::Error::Invalid(format!(
                "{}: the OCI manifest has no {BUNDLE_FILE} layer: not a trtforge bundle",
                path.display()
            )));
        };
        let info = BundleInfo::read(b)?;
        for f in &info.files {
            match by_title.get(f.path.as_str()) {
                None => problems.push(format!("{}: missing (no layer with this title)", f.path)),
                Some((_, sha, size)) if *sha != f.sha256 || *size != f.bytes => {
                    problems.push(format!(
                        "{}: the layer's sha256 {sha} differs from the bundle's {}",
                        f.path, f.sha256
                    ))
                }
                _ => {}
            }
        }
        for t in by_title.keys() {
            if *t != BUNDLE_FILE && !info.files.iter().any(|f| f.path == *t) {
                problems.push(format!("{t}: extra layer, not in {BUNDLE_FILE}"));
            }
        }
        return Ok((
            info,
            "oci-layout".into(),
            Some(layout.manifest_digest),
            problems,
        ));
    }
    if !path.join(BUNDLE_FILE).is_file() {
        return Err(crate::Error::Invalid(format!(
            "{}: not a bundle (no {BUNDLE_FILE}, no oci-layout); pass a folder `trtforge bundle` wrote, or one pulled with `skopeo copy docker://... oci:DIR`",
            path.display()
        )));
    }
    let info = BundleInfo::read(&path.join(BUNDLE_FILE))?;
    for f in &info.files {
        check_file(
            &mut problems,
            &f.path,
            &path.join(&f.path),
            &f.sha256,
            f.bytes,
        );
    }
    for extra in folder_files(path)? {
        if !info.files.iter().any(|f| f.path == extra) {
            problems.push(format!("{extra}: extra file, not in {BUNDLE_FILE}"));
        }
    }
    // The folder's own layout is what gets pushed: it must be intact too.
    let digest = if path.join(OCI_DIR).is_dir() {
        let (_, _, d, p) = read_and_check(&path.join(OCI_DIR))?;
        problems.extend(p.into_iter().map(|p| format!("{OCI_DIR}/: {p}")));
        d
    } else {
        None
    };
    Ok((info, "folder".into(), digest, problems))
}

fn fact(f: &Fact) -> (String, bool) {
    match f {
        Ok(v) => (v.clone(), true),
        Err(why) => (format!("unknown ({why})"), false),
    }
}

/// `R36.4.3` -> `R36.4`: releases of one L4T minor share the driver TensorRT is built on.
fn l4t_minor(s: &str) -> String {
    s.split('.').take(2).collect::<Vec<_>>().join(".")
}

pub fn verify(path: &Path, device: &DeviceFacts) -> Result<Verdict> {
    let (info, form, manifest_digest, file_problems) = read_and_check(path)?;
    let mut checks = Vec::new();
    if info.engine.is_some() && file_problems.is_empty() {
        let t = &info.target;
        let (trt, known) = fact(&device.tensorrt);
        checks.push(Check {
            field: "tensorrt".into(),
            ok: known && crate::build::manifest::same_trt(&t.tensorrt, &trt),
            bundle: t.tensorrt.clone(),
            device: trt,
        });
        if let Some(cc) = &t.compute_capability {
            let (dev, known) = fact(&device.compute_capability);
            checks.push(Check {
                field: "compute_capability".into(),
                ok: known && dev.trim() == cc.trim(),
                bundle: cc.clone(),
                device: dev,
            });
        }
        if let Some(rel) = &t.l4t_release {
            let (dev, known) = fact(&device.l4t_release);
            checks.push(Check {
                field: "l4t_release".into(),
                ok: known && l4t_minor(&dev) == l4t_minor(rel),
                bundle: rel.clone(),
                device: dev,
            });
        }
        if let Some(core) = t.dla_core {
            let have = device
                .dla_cores
                .iter()
                .map(|c| format!("dla{c}"))
                .collect::<Vec<_>>();
            checks.push(Check {
                field: "dla_core".into(),
                ok: device.dla_cores.contains(&core),
                bundle: format!("dla{core}"),
                device: if have.is_empty() {
                    "no DLA core".into()
                } else {
                    have.join(", ")
                },
            });
        }
    }
    let unknown = |c: &Check| c.device.starts_with("unknown (");
    let unreadable = checks.iter().any(|c| !c.ok && unknown(c));
    let mismatch = checks.iter().any(|c| !c.ok && !unknown(c));
    let status = if !file_problems.is_empty() || mismatch {
        Status::Refused
    } else if info.engine.is_none() || unreadable {
        Status::NotDeployable
    } else {
        Status::Ok
    };
    Ok(Verdict {
        bundle: path.display().to_string(),
        form,
        manifest_digest,
        files: info.files.len(),
        file_problems,
        engine: info.engine.clone(),
        no_engine_reason: info.no_engine_reason.clone(),
        checks,
        status,
    })
}
