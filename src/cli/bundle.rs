//! `trtforge bundle SOURCE` and `trtforge verify BUNDLE` ([`trtforge::bundle`]).

use super::{EXIT_FAILURE, EXIT_UNAVAILABLE};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::bundle::source::Contents;
use trtforge::bundle::verify::{verify, Status};
use trtforge::measure::context::Roots;
use trtforge::recipe::LoadedRecipe;

#[derive(clap::Args)]
pub struct BundleArgs {
    /// A recipe (.yaml: its output folder) or a matrix cell (STORE/cells/<id>).
    source: PathBuf,
    /// The bundle folder (default: the recipe's output/bundle, or STORE/bundles/<id>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device class the bundle is for (a recipe does not say; a cell does).
    #[arg(long)]
    device_class: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A bundle folder, or an OCI layout pulled from a registry (skopeo copy ... oci:DIR).
    bundle: PathBuf,
    /// Where sysfs is mounted (DLA cores).
    #[arg(long, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Where /etc is (nv_tegra_release: the L4T release).
    #[arg(long, default_value = "/etc")]
    etc_root: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn bundle(a: BundleArgs) -> Result<ExitCode> {
    let is_recipe = matches!(
        a.source.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let (contents, default_out) = if is_recipe {
        let r = LoadedRecipe::load(&a.source)?;
        let out = r.output_dir().join("bundle");
        (Contents::from_recipe(&r, a.device_class.clone())?, out)
    } else {
        let mut c = trtforge::matrix::bundle::contents(&a.source)?;
        if a.device_class.is_some() {
            c.info.target.device_class = a.device_class.clone();
        }
        let id = a.source.file_name().unwrap_or_default();
        let store = a.source.parent().and_then(|p| p.parent());
        let out = store.map(|s| s.join("bundles").join(id));
        (c, out.unwrap_or_else(|| PathBuf::from("bundle")))
    };
    let w = trtforge::bundle::write(&contents, a.out.as_deref().unwrap_or(&default_out))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&w)?);
    } else {
        println!(
            "bundle {} ({} files{}), OCI layout {}/oci, manifest {}",
            w.dir.display(),
            w.files,
            if w.has_engine { "" } else { ", no engine" },
            w.dir.display(),
            w.manifest_digest
        );
    }
    if !w.has_engine {
        eprintln!(
            "warning: no engine in this bundle: {}",
            contents.info.no_engine_reason.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify_cmd(a: VerifyArgs) -> Result<ExitCode> {
    let roots = Roots {
        sysfs: a.sysfs_root.clone(),
        etc: a.etc_root.clone(),
        ..Default::default()
    };
    let facts = trtforge::bundle::device::probe(&roots);
    let v = verify(&a.bundle, &facts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} ({}, {} files{}): {}",
            v.bundle,
            v.form,
            v.files,
            v.manifest_digest
                .as_deref()
                .map(|d| format!(", manifest {d}"))
                .unwrap_or_default(),
            match v.status {
                Status::Ok => "ok: files intact, the device matches",
                Status::Refused => "REFUSED",
                Status::NotDeployable => "not deployable here",
            }
        );
        for c in &v.checks {
            println!(
                "  {} {:<20} bundle {:<14} device {}",
                if c.ok { "ok " } else { "BAD" },
                c.field,
                c.bundle,
                c.device
            );
        }
    }
    for r in v.refusals() {
        eprintln!("refused: {r}");
    }
    match v.status {
        Status::Ok => Ok(ExitCode::SUCCESS),
        Status::Refused => Ok(ExitCode::from(EXIT_FAILURE)),
        Status::NotDeployable => {
            match &v.engine {
                None => eprintln!(
                    "error: no engine in this bundle: {}",
                    v.no_engine_reason.as_deref().unwrap_or("none was built")
                ),
                Some(_) => eprintln!(
                    "error: this device's facts cannot all be read (see 'unknown' above): not verified"
                ),
            }
            Ok(ExitCode::from(EXIT_UNAVAILABLE))
        }
    }
}
