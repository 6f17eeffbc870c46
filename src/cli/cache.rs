//! `trtforge cache show FILE` and `trtforge cache diff A B`: decode and compare TensorRT
//! calibration caches (ours or TensorRT's).

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::calib::cache::{scale_hex, CacheEntry, CalibrationCache};

#[derive(Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Decode a calibration cache: header, TensorRT version, algorithm, scale and amax per tensor.
    Show {
        file: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Compare two caches tensor by tensor.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct ShowEntry<'a> {
    tensor: &'a str,
    scale: f32,
    scale_hex: String,
    amax: f32,
}

#[derive(Serialize)]
struct Show<'a> {
    file: String,
    header: String,
    version: u32,
    tensorrt: Option<String>,
    algorithm: &'a str,
    tensors: Vec<ShowEntry<'a>>,
}

#[derive(Serialize)]
struct DiffEntry<'a> {
    tensor: &'a str,
    amax_a: f32,
    amax_b: f32,
    /// |a - b| / max(|a|, |b|); 0 when both are 0.
    rel_diff: f64,
}

#[derive(Serialize)]
struct Diff<'a> {
    a: String,
    b: String,
    header_a: String,
    header_b: String,
    only_in_a: Vec<&'a str>,
    only_in_b: Vec<&'a str>,
    common: Vec<DiffEntry<'a>>,
    max_rel_diff: f64,
    identical_scales: bool,
}

fn header(c: &CalibrationCache) -> String {
    format!("TRT-{}-{}", c.version, c.algorithm)
}

pub fn run(args: CacheArgs) -> Result<ExitCode> {
    match args.command {
        CacheCommand::Show { file, json } => show(file, json),
        CacheCommand::Diff { a, b, json } => diff(a, b, json),
    }
}

fn show(file: PathBuf, json: bool) -> Result<ExitCode> {
    let c = CalibrationCache::read(&file)?;
    let out = Show {
        file: file.display().to_string(),
        header: header(&c),
        version: c.version,
        tensorrt: c.trt_version().map(|v| v.to_string()),
        algorithm: &c.algorithm,
        tensors: c
            .entries
            .iter()
            .map(|e| ShowEntry {
                tensor: &e.tensor,
                scale: e.scale,
                scale_hex: scale_hex(e.scale),
                amax: e.amax(),
            })
            .collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file       {}", out.file);
    println!("header     {}", out.header);
    println!(
        "tensorrt   {}",
        out.tensorrt
            .as_deref()
            .unwrap_or("(unknown version number)")
    );
    println!("algorithm  {}", out.algorithm);
    println!("tensors    {}", out.tensors.len());
    let w = column_width(out.tensors.iter().map(|t| t.tensor));
    println!(
        "{:<w$}  {:>8}  {:>14}  {:>14}",
        "tensor", "hex", "scale", "amax"
    );
    for t in &out.tensors {
        println!(
            "{:<w$}  {:>8}  {:>14.8e}  {:>14.6}",
            t.tensor, t.scale_hex, t.scale, t.amax
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rel(a: f32, b: f32) -> f64 {
    let m = a.abs().max(b.abs()) as f64;
    if m == 0.0 {
        0.0
    } else {
        (a as f64 - b as f64).abs() / m
    }
}

fn diff(pa: PathBuf, pb: PathBuf, json: bool) -> Result<ExitCode> {
    let a = CalibrationCache::read(&pa)?;
    let b = CalibrationCache::read(&pb)?;
    // Looked up by name through maps: caches of 100k+ tensors diff in linear time.
    fn index(c: &CalibrationCache) -> HashMap<&str, &CacheEntry> {
        c.entries.iter().map(|e| (e.tensor.as_str(), e)).collect()
    }
    let (in_a, in_b) = (index(&a), index(&b));
    let only_in_a: Vec<&str> = a
        .entries
        .iter()
        .filter(|e| !in_b.contains_key(e.tensor.as_str()))
        .map(|e| e.tensor.as_str())
        .collect();
    let only_in_b: Vec<&str> = b
        .entries
        .iter()
        .filter(|e| !in_a.contains_key(e.tensor.as_str()))
        .map(|e| e.tensor.as_str())
        .collect();
    let mut identical = only_in_a.is_empty() && only_in_b.is_empty();
    let common: Vec<DiffEntry> = a
        .entries
        .iter()
        .filter_map(|ea| {
            let eb = in_b.get(ea.tensor.as_str())?;
            identical &= ea.scale.to_bits() == eb.scale.to_bits();
            Some(DiffEntry {
                tensor: &ea.tensor,
                amax_a: ea.amax(),
                amax_b: eb.amax(),
                rel_diff: rel(ea.amax(), eb.amax()),
            })
        })
        .collect();
    let out = Diff {
        a: pa.display().to_string(),
        b: pb.display().to_string(),
        header_a: header(&a),
        header_b: header(&b),
        max_rel_diff: common.iter().map(|d| d.rel_diff).fold(0.0, f64::max),
        only_in_a,
        only_in_b,
        common,
        identical_scales: identical,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("A  {}  {}", out.header_a, out.a);
    println!("B  {}  {}", out.header_b, out.b);
    for t in &out.only_in_a {
        println!("only in A: {t}");
    }
    for t in &out.only_in_b {
        println!("only in B: {t}");
    }
    let w = column_width(out.common.iter().map(|t| t.tensor));
    println!(
        "{:<w$}  {:>14}  {:>14}  {:>10}",
        "tensor", "amax A", "amax B", "rel diff"
    );
    for d in &out.common {
        println!(
            "{:<w$}  {:>14.6}  {:>14.6}  {:>9.3}%",
            d.tensor,
            d.amax_a,
            d.amax_b,
            d.rel_diff * 100.0
        );
    }
    println!(
        "{} common, {} only in A, {} only in B, max relative difference {:.3}%{}",
        out.common.len(),
        out.only_in_a.len(),
        out.only_in_b.len(),
        out.max_rel_diff * 100.0,
        if out.identical_scales {
            " (identical scales)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Width of the tensor-name column: the longest name, at least as wide as its header.
fn column_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    // Long names overflow the column rather than widen it past a screen.
    names
        .map(str::len)
        .max()
        .unwrap_or(0)
        .clamp("tensor".len(), 100)
}
