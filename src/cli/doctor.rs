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
    let line = |name: &str, ok: bool, detail: &str, fix: Option<&str>| {
        let mark = if ok { "ok     " } else { "MISSING" };
        println!("{name:<14} {mark} {detail}");
        if let Some(f) = fix {
            println!("{:<14}         fix: {f}", "");
        }
    };
    let lib = |name: &str, l: &trtforge::dylib::LibStatus| {
        let detail = match &l.version {
            Some(v) => format!("{v} ({})", l.detail),
            None => l.detail.clone(),
        };
        line(name, l.available, &detail, l.fix.as_deref());
    };
    println!("{:<14}         {}", "trtforge", d.trtforge);
    let features = if d.features.is_empty() {
        "default (no GPU code compiled in)".to_string()
    } else {
        d.features.join(", ")
    };
    println!("{:<14}         {features}", "features");
    lib("onnxruntime", &d.onnxruntime);
    lib("libnvinfer", &d.tensorrt.library);
    match &d.tensorrt.compiled_against {
        Some(v) => println!("{:<14}         compiled against TensorRT {v}", "tensorrt"),
        None => println!(
            "{:<14}         not compiled in (feature `tensorrt` off)",
            "tensorrt"
        ),
    }
    lib("cuda driver", &d.cuda.driver);
    lib("cuda runtime", &d.cuda.runtime);
    let dev = &d.device;
    println!("{:<14}         {}", "device", dev.device_model);
    if let Some(l4t) = &dev.l4t_release {
        println!(
            "{:<14}         L4T {l4t}, nvpmodel {}",
            "jetson",
            dev.nvpmodel.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}
