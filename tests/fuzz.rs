//! The hostile-input harness: seeded mutation of real seeds (models, models with external
//! data and their data files, recipes, matrix files, images, caches, provenance, tegrastats
//! lines, the Orin NX, AGX Orin and AGX Thor sysfs trees, bench reports), driven in-process under
//! `catch_unwind` for every parser family, plus a subprocess mode through the CLI for what
//! only a process shows (aborts, hangs, memory). Every case is classified:
//! - `ok`: accepted, and the family's oracle holds (no garbage accepted);
//! - `error`: refused with an error (the message is checked in the subprocess mode);
//! - `panic`, `garbage`, `slow` (in-process over 5 s), `crash`/`hang` (subprocess): failures.
//!
//! Stable Rust, no `cargo fuzz` (that needs nightly). Counts: `TRTFORGE_FUZZ_CASES` per
//! in-process family (default 10000), `TRTFORGE_FUZZ_PROCS` subprocess cases (default 300),
//! `TRTFORGE_FUZZ_SEED` (default 1). A failing case is written to `target/fuzz-failures/`.
//! The table of counts is printed (`cargo test --release --test fuzz -- --nocapture`).

mod common;
mod measure_support;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trtforge::measure::power::PowerSource;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1e308",
    "-1e308",
    "NaN",
    "nan",
    ".inf",
    "-.inf",
    "inf",
    "1e-45",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "-0",
    "1.5",
    "",
    "0x10",
    "1e38",
];

fn mutate_bytes(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len().max(1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0u8, 0xff, 0x7f, 0x80, 0x0a][rng.below(5)];
            }
            2 => {
                let i = rng.below(len);
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i.min(v.len())..i.min(v.len()), junk);
            }
            3 if v.len() > 1 => {
                let i = rng.below(v.len());
                let j = (i + 1 + rng.below(64)).min(v.len());
                v.drain(i..j);
            }
            4 if v.len() > 1 => {
                let i = rng.below(v.len());
                let j = (i + 1 + rng.below(256)).min(v.len());
                let chunk = v[i..j].to_vec();
                v.splice(i..i, chunk);
            }
            5 => v.truncate(rng.below(len)),
            6 => {
                // A huge varint: lengths and counts that claim gigabytes.
                let i = rng.below(len).min(v.len());
                v.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    v
}

fn mutate_text(rng: &mut Rng, seed: &str) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                // Replace the first number of a line with a hostile one.
                let l = &lines[i];
                if let Some(start) = l.find(|c: char| c.is_ascii_digit()) {
                    let end = l[start..]
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .map_or(l.len(), |e| start + e);
                    let n = HOSTILE_NUMBERS[rng.below(HOSTILE_NUMBERS.len())];
                    lines[i] = format!("{}{n}{}", &l[..start], &l[end..]);
                }
            }
            1 => {
                lines.remove(i);
            }
            2 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            3 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            4 => {
                let depth = 1 + rng.below(300);
                lines.insert(i, format!("x: {}{}", "[".repeat(depth), "]".repeat(depth)));
            }
            5 => {
                let b = mutate_bytes(rng, lines[i].as_bytes());
                lines[i] = String::from_utf8_lossy(&b).into_owned();
            }
            _ => {
                let n = 1 + rng.below(70_000);
                lines[i] = format!("{}{}", lines[i], "a".repeat(n));
            }
        }
    }
    lines.join("\n")
}

#[derive(Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
    fn failures(&self) -> usize {
        ["panic", "garbage", "slow", "crash", "hang", "noisy"]
            .iter()
            .map(|k| self.0.get(k).copied().unwrap_or(0))
            .sum()
    }
    fn line(&self, family: &str) -> String {
        let g = |k: &str| self.0.get(k).copied().unwrap_or(0);
        format!(
            "| {family} | {} | {} | {} | {} | {} | {} |",
            self.0.values().sum::<usize>(),
            g("ok"),
            g("error"),
            g("panic") + g("crash"),
            g("slow") + g("hang"),
            g("garbage") + g("noisy"),
        )
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn save_failure(family: &str, i: usize, bytes: &[u8]) -> PathBuf {
    let dir = common::crate_root().join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{family}-{i}.bin"));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Run `cases` mutations of `seeds` through `check`, which returns Ok(true) for an accepted
/// input whose oracle holds, Ok(false) for accepted garbage, Err for a refusal.
fn family(
    name: &'static str,
    seeds: &[Vec<u8>],
    cases: usize,
    rng: &mut Rng,
    text: bool,
    mut check: impl FnMut(&[u8]) -> Result<bool, String>,
) -> Tally {
    let mut t = Tally::default();
    for i in 0..cases {
        let seed = &seeds[rng.below(seeds.len())];
        let input = if text {
            mutate_text(rng, &String::from_utf8_lossy(seed)).into_bytes()
        } else {
            mutate_bytes(rng, seed)
        };
        let started = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let outcome = match r {
            Ok(Ok(true)) => "ok",
            Ok(Ok(false)) => "garbage",
            Ok(Err(_)) => "error",
            Err(_) => "panic",
        };
        let outcome = if started.elapsed() > Duration::from_secs(5) {
            "slow"
        } else {
            outcome
        };
        if !matches!(outcome, "ok" | "error") {
            let p = save_failure(name, i, &input);
            eprintln!("{name} case {i}: {outcome} ({})", p.display());
        }
        t.add(outcome);
    }
    t
}

/// A small generated image in `format` (greyscale when `gray`).
fn tiny_image(format: image::ImageFormat, gray: bool) -> Vec<u8> {
    let img = if gray {
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(24, 16, |x, y| {
            image::Luma([(x * 9 + y) as u8])
        }))
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(24, 16, |x, y| {
            image::Rgb([x as u8 * 10, y as u8 * 15, 7])
        }))
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

const CACHE_SEED: &str = "TRT-100300-EntropyCalibration2\nimages: 3c010a14\nstem.out: 3d2a9c1e\n\
head.out: 3e0000ff\nscores: 3c800000\n";

const TEGRASTATS_SEED: &str = "12-01-2026 10:00:01 RAM 2000/7000MB CPU [5%@1510,2%@1510] \
VDD_IN 5160mW/5100mW VDD_CPU_GPU_CV 800mW/790mW VDD_SOC 1440mW/1400mW\n";

/// The synth model with every initializer moved to `w.bin` (location, offset, length), and
/// that file's bytes.
fn external_data_model() -> (Vec<u8>, Vec<u8>) {
    use onnx_protobuf::{tensor_proto::DataLocation, StringStringEntryProto};
    let mut m = trtforge::onnx::synth::tiny_detector(16);
    let mut data = Vec::new();
    for t in m.proto.graph.as_mut().unwrap().initializer.iter_mut() {
        let bytes = if t.raw_data.is_empty() {
            t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            std::mem::take(&mut t.raw_data)
        };
        t.float_data.clear();
        let entry = |k: &str, v: String| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v;
            e
        };
        t.external_data = vec![
            entry("location", "w.bin".into()),
            entry("offset", data.len().to_string()),
            entry("length", bytes.len().to_string()),
        ];
        t.data_location = DataLocation::EXTERNAL.into();
        data.extend(bytes);
    }
    (m.to_bytes().unwrap(), data)
}

#[test]
fn every_parser_family_survives_mutation() {
    std::panic::set_hook(Box::new(|_| {}));
    let cases = env_count("TRTFORGE_FUZZ_CASES", 10_000);
    let mut rng = Rng(env_count("TRTFORGE_FUZZ_SEED", 1) as u64 | 1);
    let mut rows = Vec::new();
    let tmp = tempfile::tempdir().unwrap();

    // ONNX load, then the graph view and inspection (no runtime).
    let tiny = trtforge::onnx::synth::tiny_detector(32).to_bytes().unwrap();
    let t = family("onnx", &[tiny], cases, &mut rng, false, |b| {
        let m = trtforge::onnx::Model::from_bytes(b, Path::new("fuzz.onnx"))
            .map_err(|e| e.to_string())?;
        let _ = trtforge::onnx::inspect(&m);
        let g = trtforge::onnx::Graph::new(&m);
        let sane = g.nodes().all(|(id, _)| g.key(id).len() < 1 << 20);
        Ok(sane)
    });
    rows.push(t.line("ONNX load"));
    let mut fails = t.failures();

    // Recipes: parse and validate; an accepted one keeps every bound.
    let seeds: Vec<Vec<u8>> = [
        "engines/yolox-nano-qdq.yaml",
        "engines/nanodet-m-320-int8.yaml",
        "engines/fastestdet-dla-fp16.yaml",
    ]
    .iter()
    .map(|p| std::fs::read(common::crate_root().join(p)).unwrap())
    .collect();
    let path = common::crate_root().join("engines/fuzz.yaml");
    let t = family("recipe", &seeds, cases, &mut rng, true, |b| {
        let text = String::from_utf8_lossy(b).into_owned();
        let r = trtforge::recipe::LoadedRecipe::parse(&path, text).map_err(|e| e.to_string())?;
        let i = &r.recipe.input;
        let n: usize = i.shape.iter().product();
        Ok(n <= 1 << 28
            && i.scale.is_normal()
            && i.std.iter().all(|s| s.is_normal())
            && i.mean.iter().all(|m| m.is_finite()))
    });
    rows.push(t.line("recipe"));
    fails += t.failures();

    // Images: decode and preprocess; an accepted one gives finite values.
    let contract: trtforge::recipe::InputContract = serde_yaml_ng::from_str(
        "{tensor: images, shape: [1, 3, 32, 32], channel_order: bgr, resize: letterbox-top-left, pad_value: 114}",
    )
    .unwrap();
    let t = family(
        "image",
        &[
            tiny_image(image::ImageFormat::Png, false),
            tiny_image(image::ImageFormat::Png, true),
            tiny_image(image::ImageFormat::Jpeg, false),
        ],
        cases,
        &mut rng,
        false,
        |b| {
            let (x, _) =
                trtforge::data::preprocess::preprocess_bytes(b, Path::new("fuzz.jpg"), &contract)
                    .map_err(|e| e.to_string())?;
            Ok(x.iter().all(|v| v.is_finite()))
        },
    );
    rows.push(t.line("image decode"));
    fails += t.failures();

    // Calibration caches: an accepted one has unique names and finite, non-negative scales.
    let t = family(
        "cache",
        &[CACHE_SEED.as_bytes().to_vec()],
        cases,
        &mut rng,
        true,
        |b| {
            let text = String::from_utf8_lossy(b);
            let c = trtforge::calib::cache::CalibrationCache::parse(&text, Path::new("fuzz.cache"))
                .map_err(|e| e.to_string())?;
            let mut names = std::collections::HashSet::new();
            Ok(c.entries.iter().all(|e| {
                e.scale.is_finite()
                    && e.scale >= 0.0
                    && !e.tensor.is_empty()
                    && names.insert(e.tensor.clone())
            }))
        },
    );
    rows.push(t.line("cache"));
    fails += t.failures();

    // Provenance: JSON into the typed record and back.
    let prov =
        std::fs::read(common::crate_root().join("tests/fuzz_seeds/provenance.json")).unwrap();
    let t = family("provenance", &[prov], cases, &mut rng, true, |b| {
        let p: trtforge::calib::provenance::Provenance =
            serde_json::from_slice(b).map_err(|e| e.to_string())?;
        Ok(!p.to_json().is_empty())
    });
    rows.push(t.line("provenance"));
    fails += t.failures();

    // tegrastats lines: accepted rails are finite, non-negative and below a megawatt.
    let t = family(
        "tegrastats",
        &[TEGRASTATS_SEED.as_bytes().to_vec()],
        cases,
        &mut rng,
        true,
        |b| {
            let text = String::from_utf8_lossy(b);
            let mut good = true;
            for line in text.lines() {
                if let Some(l) = trtforge::measure::power::tegrastats::parse_line(line) {
                    good &= l.rails.iter().all(|r| {
                        [Some(r.cur_mw), Some(r.avg_mw), r.third_mw]
                            .iter()
                            .flatten()
                            .all(|v| v.is_finite() && (0.0..1e9).contains(v))
                    });
                }
            }
            Ok(good)
        },
    );
    rows.push(t.line("tegrastats"));
    fails += t.failures();

    // sysfs: an Orin NX INA3221 tree whose attribute values are mutated as they are read.
    let sys = tmp.path().join("sys");
    measure_support::orin_nx(&sys, 2);
    let t = family(
        "sysfs",
        &[b"5160".to_vec(), b"1010".to_vec(), b"VDD_IN".to_vec()],
        cases,
        &mut rng,
        false,
        |b| {
            let value = String::from_utf8_lossy(b).into_owned();
            let target = ["in1_input", "curr1_input", "in1_label", "in2_input"][b.len() % 4];
            let reader: trtforge::measure::power::ina3221::ReadFn =
                std::sync::Arc::new(move |p: &Path| {
                    if p.file_name().is_some_and(|f| f == target) {
                        Ok(value.clone())
                    } else {
                        std::fs::read_to_string(p)
                    }
                });
            let mut s = trtforge::measure::power::ina3221::Ina3221::discover_with(&sys, reader)
                .map_err(|e| e.to_string())?;
            let r = s.read().map_err(|e| e.to_string());
            if std::env::var("FUZZ_DEBUG").is_ok() {
                eprintln!(
                    "sysfs {target} {:?} -> {:?}",
                    String::from_utf8_lossy(b),
                    r.as_ref().map(|r| r.rails_mw.clone())
                );
            }
            let r = r?;
            // VDD_IN is the total: it may only go when its label was what changed.
            let total_kept = target == "in1_label" || s.rails().iter().any(|n| n == "VDD_IN");
            Ok(total_kept && r.rails_mw.iter().all(|v| v.is_finite() && *v >= 0.0))
        },
    );
    rows.push(t.line("sysfs (INA3221)"));
    fails += t.failures();

    // Other sysfs trees: the AGX Orin's two INA3221 chips (unconnected channels read as
    // ENODATA) and the AGX Thor's INA238, their values mutated as they are read.
    let orin = tmp.path().join("sys-agx-orin");
    measure_support::agx_orin(&orin);
    let thor = tmp.path().join("sys-agx-thor");
    measure_support::agx_thor(&thor);
    let t = family(
        "sysfs-trees",
        &[
            b"5088".to_vec(),
            b"550".to_vec(),
            b"28812500".to_vec(),
            b"VDD_GPU_SOC".to_vec(),
        ],
        cases,
        &mut rng,
        false,
        |b| {
            let value = String::from_utf8_lossy(b).into_owned();
            let targets = [
                "in1_input",
                "curr1_input",
                "in1_label",
                "power1_input",
                "in2_input",
            ];
            let target = targets[b.len() % targets.len()];
            let base = measure_support::enodata_reader();
            let reader: trtforge::measure::power::ina3221::ReadFn =
                std::sync::Arc::new(move |p: &Path| {
                    if p.file_name().is_some_and(|f| f == target) {
                        Ok(value.clone())
                    } else {
                        base(p)
                    }
                });
            let reading = if b.len() % 2 == 0 {
                let mut s =
                    trtforge::measure::power::ina3221::Ina3221::discover_with(&orin, reader)
                        .map_err(|e| e.to_string())?;
                s.read().map_err(|e| e.to_string())?
            } else {
                let mut s = trtforge::measure::power::ina238::Ina238::discover_with(&thor, reader)
                    .map_err(|e| e.to_string())?;
                s.read().map_err(|e| e.to_string())?
            };
            Ok(!reading.rails_mw.is_empty()
                && reading.rails_mw.iter().all(|v| v.is_finite() && *v >= 0.0))
        },
    );
    rows.push(t.line("sysfs (AGX Orin, Thor)"));
    fails += t.failures();

    // Matrix files: ci/matrix.yaml with its recipe globs made absolute, loaded as `plan` does.
    let matrix_seed = std::fs::read_to_string(common::crate_root().join("ci/matrix.yaml"))
        .unwrap()
        .replace(
            "../engines",
            &common::crate_root().join("engines").display().to_string(),
        );
    let matrix_file = tmp.path().join("matrix.yaml");
    let t = family(
        "matrix",
        &[matrix_seed.into_bytes()],
        cases,
        &mut rng,
        true,
        |b| {
            std::fs::write(&matrix_file, b).unwrap();
            let m = trtforge::matrix::spec::LoadedMatrix::load(&matrix_file)
                .map_err(|e| e.to_string())?;
            Ok(!m.recipes.is_empty())
        },
    );
    rows.push(t.line("matrix file"));
    fails += t.failures();

    // External data: the synth model with every initializer in `w.bin`. One run mutates the
    // model (its locations, offsets and lengths), one the data file. An accepted model must
    // hold exactly the bytes its dims declare.
    let ext = tmp.path().join("ext");
    std::fs::create_dir_all(&ext).unwrap();
    let (ext_model, ext_data) = external_data_model();
    for (label, mutate_model) in [
        ("external data (model)", true),
        ("external data (file)", false),
    ] {
        let seed = if mutate_model { &ext_model } else { &ext_data };
        let t = family(
            label,
            std::slice::from_ref(seed),
            cases / 2,
            &mut rng,
            false,
            |b| {
                let (model, data) = if mutate_model {
                    (b, ext_data.as_slice())
                } else {
                    (ext_model.as_slice(), b)
                };
                std::fs::write(ext.join("m.onnx"), model).unwrap();
                std::fs::write(ext.join("w.bin"), data).unwrap();
                let m =
                    trtforge::onnx::Model::load(&ext.join("m.onnx")).map_err(|e| e.to_string())?;
                let graph = m.proto.graph.as_ref().unwrap();
                Ok(graph.initializer.iter().all(|t| {
                    let n: i64 = t.dims.iter().product();
                    t.raw_data.len() as i64 == 4 * n || t.float_data.len() as i64 == n
                }))
            },
        );
        rows.push(t.line(label));
        fails += t.failures();
    }

    // Bench reports for `compare`: load, then compare with the original.
    let report = common::crate_root().join("tests/fuzz_seeds/bench.json");
    let seed = std::fs::read(&report).unwrap();
    let original = trtforge::report::BenchReport::load(&report).unwrap();
    let file = tmp.path().join("new.json");
    let t = family("compare", &[seed], cases, &mut rng, true, |b| {
        std::fs::write(&file, b).unwrap();
        let new = trtforge::report::BenchReport::load(&file).map_err(|e| e.to_string())?;
        let c = trtforge::report::compare::compare(&original, &new, Default::default(), true)
            .map_err(|e| e.to_string())?;
        let _ = c.has_regression();
        Ok(true)
    });
    rows.push(t.line("compare JSON"));
    fails += t.failures();

    let _ = std::panic::take_hook();
    println!("| family | cases | ok | error | panic/crash | slow/hang | garbage |\n|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    assert_eq!(
        fails,
        0,
        "failures above; inputs in target/fuzz-failures/\n{}",
        rows.join("\n")
    );
}

/// One CLI run under a 20 s timeout and a 4 GiB address-space cap.
fn run_limited(args: &[&str]) -> (&'static str, String) {
    use std::os::unix::process::ExitStatusExt;
    let (status, err) = common::run_bounded(args, Duration::from_secs(20), Some(4 << 30), &[]);
    let outcome = match status {
        None => "hang",
        Some(s) if s.signal().is_some() => "crash",
        Some(s) => match s.code() {
            Some(0) => "ok",
            Some(101) => "panic",
            Some(1..=3) => {
                // A refusal is one `error:` line (warnings may come before it), no panic text.
                let errors = err.lines().filter(|l| l.starts_with("error:")).count();
                if errors == 1 && !err.contains("panicked") {
                    "error"
                } else {
                    "noisy"
                }
            }
            _ => "crash",
        },
    };
    (outcome, err)
}

#[test]
fn the_cli_survives_mutated_inputs_in_subprocesses() {
    let total = env_count("TRTFORGE_FUZZ_PROCS", 300);
    let mut rng = Rng(env_count("TRTFORGE_FUZZ_SEED", 1) as u64 | 7);
    let tmp = tempfile::tempdir().unwrap();
    let recipe =
        std::fs::read_to_string(common::crate_root().join("engines/yolox-nano-qdq.yaml")).unwrap();
    let tiny = trtforge::onnx::synth::tiny_detector(32).to_bytes().unwrap();
    let mut tally = Tally::default();
    for i in 0..total {
        // Recipes live in engines/ so that their relative paths still resolve.
        let (args, file, bytes): (Vec<String>, PathBuf, Vec<u8>) = match i % 4 {
            0 => {
                let p = common::crate_root().join(format!("engines/.fuzz-{i}.yaml"));
                (
                    vec!["check".into(), p.display().to_string()],
                    p,
                    mutate_text(&mut rng, &recipe).into_bytes(),
                )
            }
            1 => {
                let p = tmp.path().join(format!("m{i}.onnx"));
                (
                    vec!["inspect".into(), p.display().to_string()],
                    p,
                    mutate_bytes(&mut rng, &tiny),
                )
            }
            2 => {
                let p = tmp.path().join(format!("c{i}.cache"));
                (
                    vec!["cache".into(), "show".into(), p.display().to_string()],
                    p,
                    mutate_text(&mut rng, CACHE_SEED).into_bytes(),
                )
            }
            _ => {
                let p = tmp.path().join(format!("t{i}.log"));
                let log = TEGRASTATS_SEED.repeat(3);
                (
                    vec![
                        "power".into(),
                        "parse-tegrastats".into(),
                        p.display().to_string(),
                    ],
                    p,
                    mutate_text(&mut rng, &log).into_bytes(),
                )
            }
        };
        std::fs::write(&file, &bytes).unwrap();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (outcome, err) = run_limited(&argv);
        if file.starts_with(common::crate_root().join("engines")) {
            let _ = std::fs::remove_file(&file);
        }
        if !matches!(outcome, "ok" | "error") {
            let p = save_failure(&format!("cli-{}", args[0]), i, &bytes);
            eprintln!(
                "cli case {i} ({}): {outcome} ({}): {}",
                args.join(" "),
                p.display(),
                err.lines().last().unwrap_or("")
            );
        }
        tally.add(outcome);
    }
    println!("| family | cases | ok | error | panic/crash | slow/hang | garbage/noisy |\n|---|---|---|---|---|---|---|\n{}", tally.line("CLI (check, inspect, cache show, parse-tegrastats)"));
    assert_eq!(tally.failures(), 0, "{}", tally.line("CLI"));
}
