//! `trtforge doctor`: report what is available and how to fix what is not.

use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let d = trtforge::doctor::run();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let line = |name: &str, p: &trtforge::doctor::Probe| {
        let mark = if p.available { "ok     " } else { "MISSING" };
        println!("{name:<14} {mark} {}", p.detail);
        if let Some(f) = &p.fix {
            println!("{:<14}         fix: {f}", "");
        }
    };
    println!("{:<14}         {}", "trtforge", d.trtforge);
    line("onnxruntime", &d.onnxruntime);
    println!("{:<14}         {}", "features", if d.features.is_empty() { "(default: no GPU code)".to_string() } else { d.features.join(", ") });
    match &d.jetson {
        Some(j) => println!(
            "{:<14}         {} / {}",
            "jetson",
            j.model.as_deref().unwrap_or("?"),
            j.l4t.as_deref().unwrap_or("no /etc/nv_tegra_release")
        ),
        None => println!("{:<14}         not a Jetson", "jetson"),
    }
    Ok(ExitCode::SUCCESS)
}
