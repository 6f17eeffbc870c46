//! A bundle as an OCI image layout (image-layout and image-manifest specs, v1.1 artifact
//! form): `oci-layout`, `index.json`, and `blobs/sha256/<digest>`; the manifest's
//! `artifactType` says it is a trtforge bundle, its config is the empty JSON descriptor, and
//! each file is one layer with its media type and `org.opencontainers.image.title` (its path).
//! `skopeo copy oci:DIR docker://REGISTRY/REPO:TAG` (or `oras`) stores it in any registry; a
//! pull gives back the same blobs. The JSON comes from `oci-spec`'s types, not by hand.

use super::{BundleInfo, BUNDLE_FILE, OCI_DIR};
use crate::error::{Error, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, OciLayoutBuilder, Sha256Digest, ANNOTATION_REF_NAME, ANNOTATION_TITLE,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const ARTIFACT_TYPE: &str = "application/vnd.trtforge.bundle.v1";
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.trtforge.bundle.v1+json";
/// The tag `index.json` names the manifest by.
pub const REF_NAME: &str = "latest";

fn oci_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("OCI {what}: {e}"))
}

/// Put `bytes` (or the file `src`) into the layout's blobs; returns its descriptor.
fn blob(
    layout: &Path,
    media: MediaType,
    src: Option<&Path>,
    bytes: Option<&[u8]>,
    title: Option<&str>,
) -> Result<Descriptor> {
    let (sha, size) = match (src, bytes) {
        (Some(p), _) => (
            crate::util::sha256_file(p)?,
            std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len(),
        ),
        (None, Some(b)) => (crate::util::sha256_hex(b), b.len() as u64),
        _ => return Err(Error::internal("blob without content")),
    };
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let dest = dir.join(&sha);
    if !dest.exists() {
        match (src, bytes) {
            // The bundle's file and its blob are the same bytes: a hard link costs no space.
            (Some(p), _) if std::fs::hard_link(p, &dest).is_err() => {
                std::fs::copy(p, &dest).map_err(|e| Error::io(p, e))?;
            }
            (None, Some(b)) => std::fs::write(&dest, b).map_err(|e| Error::io(&dest, e))?,
            _ => {}
        }
    }
    let digest = Sha256Digest::from_str(&sha).map_err(|e| oci_err("digest", e))?;
    let mut d = DescriptorBuilder::default()
        .media_type(media)
        .size(size)
        .digest(digest);
    if let Some(t) = title {
        d = d.annotations(HashMap::from([(
            ANNOTATION_TITLE.to_string(),
            t.to_string(),
        )]));
    }
    d.build().map_err(|e| oci_err("descriptor", e))
}

/// Write `<bundle>/oci/` for the bundle's files; returns the manifest's digest.
pub fn write_layout(bundle: &Path, info: &BundleInfo) -> Result<String> {
    let layout = bundle.join(OCI_DIR);
    let mut layers = vec![blob(
        &layout,
        MediaType::Other(BUNDLE_MEDIA_TYPE.into()),
        Some(&bundle.join(BUNDLE_FILE)),
        None,
        Some(BUNDLE_FILE),
    )?];
    for f in &info.files {
        layers.push(blob(
            &layout,
            MediaType::Other(f.media_type.clone()),
            Some(&bundle.join(&f.path)),
            None,
            Some(&f.path),
        )?);
    }
    let config = blob(&layout, MediaType::EmptyJSON, None, Some(b"{}"), None)?;
    let t = &info.target;
    let mut notes = HashMap::from([
        ("dev.trtforge.model".to_string(), t.model_name.clone()),
        ("dev.trtforge.precision".to_string(), t.precision.clone()),
        ("dev.trtforge.tensorrt".to_string(), t.tensorrt.clone()),
    ]);
    if let Some(d) = &t.device_class {
        notes.insert("dev.trtforge.device-class".into(), d.clone());
    }
    if let Some(c) = &t.compute_capability {
        notes.insert("dev.trtforge.compute-capability".into(), c.clone());
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(ARTIFACT_TYPE.into()))
        .config(config)
        .layers(layers)
        .annotations(notes)
        .build()
        .map_err(|e| oci_err("manifest", e))?;
    let text = manifest.to_string().map_err(|e| oci_err("manifest", e))?;
    let mut mdesc = blob(
        &layout,
        MediaType::ImageManifest,
        None,
        Some(text.as_bytes()),
        None,
    )?;
    mdesc.set_artifact_type(Some(MediaType::Other(ARTIFACT_TYPE.into())));
    mdesc.set_annotations(Some(HashMap::from([(
        ANNOTATION_REF_NAME.to_string(),
        REF_NAME.to_string(),
    )])));
    let digest = mdesc.digest().to_string();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![mdesc])
        .build()
        .map_err(|e| oci_err("index", e))?;
    let index = index.to_string().map_err(|e| oci_err("index", e))?;
    std::fs::write(layout.join("index.json"), index).map_err(|e| Error::io(&layout, e))?;
    let l = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| oci_err("layout", e))?;
    let l = l.to_string().map_err(|e| oci_err("layout", e))?;
    std::fs::write(layout.join("oci-layout"), l).map_err(|e| Error::io(&layout, e))?;
    Ok(digest)
}

/// A layout read back: the manifest's digest and each titled layer's blob file.
#[derive(Debug)]
pub struct Layout {
    pub manifest_digest: String,
    /// (title, blob path, sha256, size the manifest declares).
    pub layers: Vec<(String, PathBuf, String, u64)>,
}

fn bad(layout: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "{}: not a trtforge bundle layout: {what}; pull it again (skopeo copy docker://... oci:DIR)",
        layout.display()
    ))
}

/// Read an OCI layout folder (as `skopeo copy ... oci:DIR` writes it): the one manifest of
/// `index.json`, which must be a trtforge bundle, and its layers. Blobs are not hashed here.
pub fn read_layout(layout: &Path) -> Result<Layout> {
    let index_path = layout.join("index.json");
    let index = oci_spec::image::ImageIndex::from_file(&index_path)
        .map_err(|e| bad(layout, format!("index.json: {e}")))?;
    let [m] = index.manifests().as_slice() else {
        return Err(bad(
            layout,
            format!(
                "index.json lists {} manifests, expected 1",
                index.manifests().len()
            ),
        ));
    };
    let blob_path = |d: &Descriptor| -> Result<PathBuf> {
        let hex = d
            .as_digest_sha256()
            .ok_or_else(|| bad(layout, format!("digest {} is not sha256", d.digest())))?;
        Ok(layout.join("blobs/sha256").join(hex))
    };
    let mpath = blob_path(m)?;
    let mbytes = crate::error::read_file(&mpath)?;
    let sha = crate::util::sha256_hex(&mbytes);
    if Some(sha.as_str()) != m.as_digest_sha256() {
        return Err(bad(
            layout,
            format!(
                "the manifest blob's sha256 is {sha}, index.json says {}",
                m.digest()
            ),
        ));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&mbytes).map_err(|e| bad(layout, format!("manifest: {e}")))?;
    let kind = manifest.artifact_type().as_ref().map(|t| t.to_string());
    if kind.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(bad(
            layout,
            format!("artifactType {kind:?}, expected {ARTIFACT_TYPE}"),
        ));
    }
    let mut layers = Vec::new();
    for l in manifest.layers() {
        let title = l
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_TITLE))
            .ok_or_else(|| bad(layout, format!("layer {} has no title", l.digest())))?;
        let hex = l.as_digest_sha256().unwrap_or_default().to_string();
        layers.push((title.clone(), blob_path(l)?, hex, l.size()));
    }
    Ok(Layout {
        manifest_digest: m.digest().to_string(),
        layers,
    })
}
