//! `trtforge inspect MODEL`: graph summary, MACs, alignment lint, support warnings.

use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::onnx::{self, Model};

#[derive(clap::Args)]
pub struct Args {
    /// ONNX model.
    model: PathBuf,
    /// Concrete input shape for MACs, e.g. `images:1x3x640x640` (repeatable).
    #[arg(long = "shape", value_parser = parse_shape)]
    shapes: Vec<(String, Vec<usize>)>,
    /// Print JSON (stable keys, see README) instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn parse_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected NAME:1x3x640x640, got '{s}'"))?;
    let dims = dims
        .split(['x', ','])
        .map(|d| d.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("expected positive dimensions like 1x3x640x640, got '{dims}'"))?;
    Ok((name.to_string(), dims))
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = Model::load(&a.model)?;
    let overrides: BTreeMap<String, Vec<usize>> = a.shapes.into_iter().collect();
    let ins = match onnx::inspect_with_shapes(&model, &overrides, &trtforge::exec::OrtShapes) {
        Ok(i) => i,
        // Only a missing ONNX Runtime is a warning: a model it refuses (a cycle, an unknown
        // op, a bad initializer, a kernel larger than its input) is an error, as it would be
        // in every later step.
        Err(e @ trtforge::Error::Unavailable { .. }) => {
            log::warn!("MACs not computed: {e}");
            let mut i = onnx::inspect(&model);
            i.shape_source = format!("unavailable: {e}");
            i
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ins)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("model      {}", ins.model);
    println!("producer   {}", ins.producer);
    println!(
        "ir_version {}   opset {}   nodes {}",
        ins.ir_version, ins.opset, ins.nodes
    );
    for (kind, list) in [("input ", &ins.inputs), ("output", &ins.outputs)] {
        for t in list {
            let dims: Vec<String> = t
                .shape
                .iter()
                .map(|d| d.to_string().replace('"', ""))
                .collect();
            println!(
                "{kind}     {} {} [{}]{}",
                t.name,
                t.dtype,
                dims.join(", "),
                if t.dynamic { " (dynamic)" } else { "" }
            );
        }
    }
    println!(
        "params     {} ({:.2} MiB)",
        ins.params,
        ins.param_bytes as f64 / (1 << 20) as f64
    );
    match ins.macs {
        Some(m) => println!(
            "MACs       {} ({:.3} G) at {:?}",
            m,
            m as f64 / 1e9,
            ins.input_shapes
        ),
        None => println!("MACs       not computed ({})", ins.shape_source),
    }
    let ops: Vec<String> = ins.ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("ops        {}", ops.join(", "));
    if !ins.alignment.is_empty() {
        println!("\nchannel alignment (Conv outputs not a multiple of 8 for FP16 / 32 for INT8 tensor cores):");
        println!(
            "  {:<40} {:>6} {:>6} {:>6} {:>14} {:>14}",
            "node", "Cout", "fp16", "int8", "waste fp16", "waste int8"
        );
        for f in &ins.alignment {
            let w = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "  {:<40} {:>6} {:>6} {:>6} {:>14} {:>14}",
                f.node,
                f.out_channels,
                f.fp16_padded,
                f.int8_padded,
                w(f.wasted_macs_fp16),
                w(f.wasted_macs_int8)
            );
        }
    }
    for w in &ins.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
