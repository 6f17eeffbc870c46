//! The nightly matrix on real data: the three shared detectors x {fp16, int8, int8-qdq} x two
//! device classes (JetPack 6.2 / TensorRT 10.3 and JetPack 7.2 / TensorRT 11.1, where the
//! calibrator is gone and int8 is excluded). Recipes are written into a temporary folder with
//! small image counts so the night takes seconds; the models, images and labels are the
//! shared ones. This machine has no TensorRT: every cell ends `needs-tensorrt` with real
//! prepared artifacts and ONNX Runtime figures.

mod common;

use common::matrix_fixture::{fixture, Fixture, MODELS};

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trtforge::matrix::store::{Area, State, Store};

fn tf(args: &[&str]) -> (i32, String, String) {
    common::trtforge(args)
}

/// Cell names `plan` lists as still to do.
fn planned(f: &Fixture) -> BTreeSet<String> {
    let (code, out, err) = tf(&["matrix", "plan", &f.matrix()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn all_names() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for m in MODELS.iter().map(|d| d.name) {
        for p in ["fp16", "int8", "int8-qdq"] {
            s.insert(format!("{m}/{p}/orin-nano-8gb/gpu"));
            if p != "int8" {
                s.insert(format!("{m}/{p}/agx-thor/gpu"));
            }
        }
    }
    s
}

/// Every entry of an area, checked against its entry.json.
fn entries(store: &Store, area: Area) -> Vec<trtforge::matrix::store::Entry> {
    let dir = store.root().join(match area {
        Area::Prepared => "prepared",
        Area::Cells => "cells",
    });
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let id = e.unwrap().file_name().to_string_lossy().into_owned();
        match store.state(area, &id) {
            State::Complete(e) => out.push(*e),
            other => panic!("{id}: {other:?}"),
        }
    }
    out
}

fn run_all(f: &Fixture) -> (i32, String, Duration) {
    let t = Instant::now();
    let (code, out, err) = tf(&["matrix", "run", &f.matrix(), "--all", "-j", "2"]);
    (code, format!("{out}{err}"), t.elapsed())
}

/// (a) to (d) and (f) on one store: a night, a second identical night, one image changed, a
/// regression injected and accepted, a corrupted artifact.
#[test]
fn two_nights_of_the_matrix() {
    let Some(f) = fixture() else { return };
    assert_eq!(planned(&f), all_names());

    // (a) The scheduler inputs pass their schemas.
    plan_outputs_pass_their_schemas(&f);

    // (b) A night here: needs-tensorrt cells with real prepared artifacts and figures.
    let (code, log, first) = run_all(&f);
    assert_eq!(code, 3, "{log}");
    let store = f.store();
    let cells = entries(&store, Area::Cells);
    assert_eq!(cells.len(), 15);
    for c in &cells {
        let r = &c.result;
        assert_eq!(r["status"], "needs-tensorrt", "{r}");
        assert!(r["message"].as_str().unwrap().contains("TensorRT"), "{r}");
        let refs = &r["reference"];
        assert!(refs["latency_p50_ms"].as_f64().unwrap() > 0.0, "{r}");
        let fp32 = refs["fp32_map50_95"].as_f64().unwrap();
        assert!(fp32 > 0.05 && fp32 <= 1.0, "{r}");
        assert!(r["engine"].is_null());
        if r["precision"] == "int8-qdq" {
            assert_eq!(refs["model"], "qdq");
            let m = refs["map50_95"].as_f64().unwrap();
            assert!(m > 0.0 && m != fp32, "{r}");
        }
    }
    let prepared = entries(&store, Area::Prepared);
    let kinds: Vec<&str> = prepared.iter().map(|e| e.kind.as_str()).collect();
    // One FP32 reference per model; calibrations for TensorRT 10.3 only (the Q/DQ models of
    // both targets share them; TensorRT 11.1 has no int8 cell); one Q/DQ model per model.
    for (kind, n) in [("reference", 3), ("calibration", 3), ("qdq", 3)] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), n, "{kinds:?}");
    }
    for e in &prepared {
        let files: Vec<&str> = e.files.iter().map(|x| x.path.as_str()).collect();
        assert!(files.contains(&"bench/bench.json") || e.kind == "calibration");
        match e.kind.as_str() {
            "calibration" => assert!(
                files.iter().any(|p| p.ends_with(".cache")) && files.contains(&"ranges.json"),
                "{files:?}"
            ),
            "qdq" => {
                assert!(files.contains(&"model.qdq.onnx") && files.contains(&"eval.json"));
                let m = trtforge::onnx::Model::load(&store.file(
                    Area::Prepared,
                    &e.id,
                    "model.qdq.onnx",
                ))
                .unwrap();
                trtforge::exec::check_loads(&m).unwrap();
            }
            _ => assert!(files.contains(&"eval.json"), "{files:?}"),
        }
    }

    // (c) Nothing changed: nothing to plan, nothing computed.
    assert!(planned(&f).is_empty());
    let (code, log, second) = run_all(&f);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("every cell already has a result"), "{log}");
    assert!(!log.contains("computed"), "{log}");
    println!(
        "run --all: first night {:.1} s, second (nothing changed) {:.2} s",
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    // One calibration image changed: exactly the cells that read calib-a.
    let a = f.path("calib-a");
    let mut imgs: Vec<PathBuf> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    imgs.sort();
    let spare = f.path("calib-b").join(
        std::fs::read_dir(f.path("calib-b"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    std::fs::copy(&spare, &imgs[0]).unwrap();
    let expect: BTreeSet<String> = all_names()
        .into_iter()
        .filter(|n| {
            !n.starts_with("fastestdet/") && (n.contains("/int8/") || n.contains("/int8-qdq/"))
        })
        .collect();
    assert_eq!(expect.len(), 6);
    assert_eq!(planned(&f), expect);
    let (code, log, _) = run_all(&f);
    assert_eq!(code, 3, "{log}");
    assert!(planned(&f).is_empty());

    // (d) Night 1 is accepted; night 2 switches YOLOX to a worse range algorithm.
    let (code, out, err) = tf(&["matrix", "collect", &f.matrix(), "--accept"]);
    assert_eq!(code, 0, "{out}{err}");
    let night1 = std::fs::read_to_string(f.path("store/accepted.json")).unwrap();
    let yolox = f.path("recipes/yolox.yaml");
    let text = std::fs::read_to_string(&yolox).unwrap();
    std::fs::write(
        &yolox,
        text.replace(
            "  batch_size: 3\n",
            "  batch_size: 3\n  algorithm: minmax\n",
        ),
    )
    .unwrap();
    let (code, log, _) = run_all(&f);
    assert_eq!(code, 3, "{log}");
    let (code, out, err) = tf(&["matrix", "collect", &f.matrix()]);
    assert_eq!(code, 1, "{out}{err}");
    for target in ["orin-nano-8gb", "agx-thor"] {
        let line = format!("regression: yolox/int8-qdq/{target}/gpu map50_95:");
        assert!(err.contains(&line), "{err}");
    }
    assert!(
        !err.contains("nanodet") && !err.contains("fastestdet"),
        "{err}"
    );
    let report = f.path("store/report");
    let md = std::fs::read_to_string(report.join("nightly.md")).unwrap();
    assert!(md.contains("FAILED") && md.contains("| yolox/int8-qdq/agx-thor/gpu | map50_95 |"));
    let trend = std::fs::read_to_string(report.join("trend_map.svg")).unwrap();
    assert!(trend.contains("<svg") && trend.contains("yolox/int8-qdq/orin-nano-8gb/gpu"));
    let (code, out, err) = tf(&["matrix", "collect", &f.matrix(), "--accept"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("accepted"), "{out}");
    let (code, out, err) = tf(&["matrix", "collect", &f.matrix()]);
    assert_eq!(code, 0, "{out}{err}");
    // The explicit baseline is the same night 1: still a regression.
    let old = f.path("night1.json");
    std::fs::write(&old, night1).unwrap();
    let (code, _, err) = tf(&[
        "matrix",
        "collect",
        &f.matrix(),
        "--baseline",
        old.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");

    // (f) A corrupted artifact is detected and rebuilt, the rest reused.
    let cell = entries(&store, Area::Cells)
        .into_iter()
        .find(|e| e.result["name"] == "nanodet/int8/orin-nano-8gb/gpu")
        .unwrap();
    let victim = cell
        .files
        .iter()
        .find(|x| x.path.ends_with(".cache"))
        .unwrap();
    flip_a_byte(&store.file(Area::Cells, &cell.id, &victim.path));
    assert!(matches!(
        store.state(Area::Cells, &cell.id),
        State::Corrupt(_)
    ));
    assert_eq!(
        planned(&f),
        BTreeSet::from(["nanodet/int8/orin-nano-8gb/gpu".to_string()])
    );
    let (code, log, _) = run_all(&f);
    assert_eq!(code, 3, "{log}");
    assert!(matches!(
        store.state(Area::Cells, &cell.id),
        State::Complete(_)
    ));
    assert!(planned(&f).is_empty());
    let qdq = entries(&store, Area::Prepared)
        .into_iter()
        .find(|e| e.kind == "qdq")
        .unwrap();
    flip_a_byte(&store.file(Area::Prepared, &qdq.id, "model.qdq.onnx"));
    let (code, out, err) = tf(&["matrix", "prepare", &f.matrix()]);
    assert_eq!(code, 0, "{err}");
    let computed: Vec<&str> = out.lines().filter(|l| l.ends_with("computed")).collect();
    assert_eq!(computed.len(), 1, "{out}");
    assert!(computed[0].contains(&qdq.id[..12]), "{out}");
    assert!(matches!(
        store.state(Area::Prepared, &qdq.id),
        State::Complete(_)
    ));
    assert!(
        std::fs::read_dir(store.root().join("trash"))
            .unwrap()
            .count()
            >= 2
    );
}

fn flip_a_byte(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x5a;
    std::fs::write(p, b).unwrap();
}

fn plan_outputs_pass_their_schemas(f: &Fixture) {
    let tool = common::crate_root().join(".venv/bin/check-jsonschema");
    if !tool.exists() {
        assert!(
            !trtforge::env::in_ci(),
            "{} missing under CI",
            tool.display()
        );
        eprintln!("SKIP: schema validators not installed (scripts/setup.sh)");
        return;
    }
    let out_of = |format: &str| {
        let (code, out, err) = tf(&["matrix", "plan", &f.matrix(), "--format", format]);
        assert_eq!(code, 0, "{err}");
        out
    };
    // GitHub: the object goes into a workflow's strategy.matrix as fromJSON would put it.
    let gh: Value = serde_json::from_str(&out_of("github")).unwrap();
    assert_eq!(gh["include"].as_array().unwrap().len(), 15);
    assert_eq!(
        gh["include"][0]["runs-on"],
        serde_json::json!(["self-hosted", "jetson", "orin-nano-8gb"])
    );
    let workflow = serde_json::json!({
        "name": "cells", "on": {"workflow_dispatch": {}},
        "jobs": {"cell": {
            "strategy": {"fail-fast": false, "matrix": gh},
            "runs-on": "${{ matrix.runs-on }}",
            "steps": [{"run": "trtforge matrix run ci/matrix.yaml --cell ${{ matrix.cell }}"}],
        }},
    });
    let files = [
        (
            "github-workflow",
            "workflow.yml",
            serde_yaml_ng::to_string(&workflow).unwrap(),
        ),
        ("gitlab-ci", "cells.yml", out_of("gitlab")),
        ("k8s", "cells.k8s.yaml", out_of("k8s")),
    ];
    for (kind, name, text) in files {
        let p = f.path(name);
        std::fs::write(&p, &text).unwrap();
        let out = Command::new("bash")
            .arg("scripts/validate-ci.sh")
            .arg(kind)
            .arg(&p)
            .current_dir(common::crate_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the Kubernetes schemas do not check: enum values and the index-to-cell mapping.
    let k8s = out_of("k8s");
    let jobs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&k8s)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "one Job per device class");
    for j in &jobs {
        let spec = &j["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        let t = &spec["template"]["spec"];
        assert_eq!(t["restartPolicy"], "Never");
        assert_eq!(t["runtimeClassName"], "nvidia");
        let class = t["nodeSelector"]["trtforge.dev/device-class"]
            .as_str()
            .unwrap();
        let ids = t["containers"][0]["env"][0]["value"].as_str().unwrap();
        let n = ids.split(' ').count();
        assert_eq!(spec["completions"].as_u64().unwrap() as usize, n);
        assert_eq!(n, if class == "agx-thor" { 6 } else { 9 });
    }
    let gl: Value = serde_yaml_ng::from_str(&out_of("gitlab")).unwrap();
    let jobs = gl
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("cell-"));
    assert_eq!(jobs.count(), 15);
}

/// (e) A runner killed at any point leaves no partial result, and the rerun's artifacts are
/// those of an uninterrupted run; two runners racing on one cell leave one complete result.
#[test]
fn a_killed_runner_and_two_racing_runners() {
    let Some(f) = fixture() else { return };
    let (code, out, err) = tf(&["matrix", "plan", &f.matrix()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let id_of = |name: &str| {
        v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["cell"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let qdq = id_of("nanodet/int8-qdq/orin-nano-8gb/gpu");
    let store = f.store();
    // Kill at several points of the same cell's work (stages, then the cell itself).
    for delay_ms in [300, 1500, 3000] {
        let mut child = Command::new(common::bin())
            .args(["matrix", "run", &f.matrix(), "--cell", &qdq])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever is visible is complete.
        entries(&store, Area::Prepared);
        entries(&store, Area::Cells);
    }
    let (code, out, err) = tf(&["matrix", "run", &f.matrix(), "--cell", &qdq]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(matches!(store.state(Area::Cells, &qdq), State::Complete(_)));
    // Killed workspaces are gone once a later run starts one.
    let left: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Same artifacts as an uninterrupted run into a second store (bench timings aside).
    let clean = f.path("clean-store");
    let (code, _, err) = tf(&[
        "matrix",
        "run",
        &f.matrix(),
        "--cell",
        &qdq,
        "--store",
        clean.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{err}");
    let clean = Store::open(&clean).unwrap();
    // Artifacts by hash; the JSON reports by content without their timings (eval's `timing`,
    // quantize's `seconds`); the bench reports are timings.
    let hashes = |s: &Store, area| {
        let mut v: Vec<(String, String, String)> = Vec::new();
        for e in entries(s, area) {
            for x in e.files.iter().filter(|x| !x.path.starts_with("bench/")) {
                let what = if x.path == "eval.json" || x.path == "report.json" {
                    let text = std::fs::read_to_string(s.file(area, &e.id, &x.path)).unwrap();
                    let mut j: Value = serde_json::from_str(&text).unwrap();
                    let o = j.as_object_mut().unwrap();
                    o.remove("timing");
                    o.remove("seconds");
                    j.to_string()
                } else {
                    x.sha256.clone()
                };
                v.push((e.id.clone(), x.path.clone(), what));
            }
        }
        v.sort();
        v
    };
    for area in [Area::Prepared, Area::Cells] {
        assert_eq!(hashes(&store, area), hashes(&clean, area));
    }

    // Two runners on one cell at once: both finish, one complete result.
    let fp16 = id_of("yolox/fp16/agx-thor/gpu");
    let spawn = || {
        Command::new(common::bin())
            .args(["matrix", "run", &f.matrix(), "--cell", &fp16])
            .output_async()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
    }
    assert!(matches!(
        store.state(Area::Cells, &fp16),
        State::Complete(_)
    ));
    let tmp: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Mistakes in matrix.yaml are one-line errors with the file, line and field.
#[test]
fn matrix_yaml_mistakes_are_located_errors() {
    // The last case hashes the recipe's model.
    let Some(_) = common::yolox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engines = common::crate_root().join("engines");
    let good = format!(
        "recipes: [{}/yolox-nano-qdq.yaml]\nprecisions: [fp16]\ntargets:\n  - device: orin-nano-8gb\n    jetpack: \"6.2\"\n    tensorrt: \"10.3\"\n    runner: [self-hosted]\n",
        engines.display()
    );
    let cases = [
        (
            good.replace("precisions:", "precision:"),
            "unknown field `precision`",
        ),
        (
            good.replace("[fp16]", "[fp16, fp16]"),
            "precisions: a precision is listed twice",
        ),
        (good.replace("[fp16]", "[fp8]"), "precisions"),
        (good.replace("orin-nano-8gb", "Orin Nano"), "targets.device"),
        (good.replace("[self-hosted]", "[]"), "targets.runner"),
        (
            good.replace("yolox-nano-qdq.yaml", "nothing-*.yaml"),
            "names no recipe file",
        ),
        (
            format!("{good}exclude:\n  - {{target: agx-thor}}\n"),
            "exclude.target: exclusion 1: no target 'agx-thor'",
        ),
        (
            format!("{good}exclude:\n  - {{recipe: yolo-*}}\n"),
            "exclude.recipe: exclusion 1: 'yolo-*' names none of the recipes",
        ),
        (
            format!("{good}gates:\n  max_map_drop: -1\n"),
            "gates.max_map_drop",
        ),
        (
            good.replace("[fp16]", "[int8]")
                .replace("\"10.3\"", "\"11.1\""),
            "no longer has",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("m{i}.yaml"));
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = tf(&["matrix", "plan", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{want}: {err}");
        let line = err.trim();
        assert!(
            line.starts_with(&format!("error: {}:", p.display())) && line.contains(want),
            "{want}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
    }
}
