//! `trtforge calibrate` end to end through the CLI: YOLOX-nano on coco128 images (coverage,
//! finiteness, entropy <= minmax, determinism over order and batch size), staleness per
//! provenance field, NaN/Inf handling, `--dump-inputs`, and bad input that must leave no cache.
//! Small synthetic models stand in where the property does not need a real network.

mod common;

use common::{shared, trtforge};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use trtforge::calib::cache::CalibrationCache;
use trtforge::onnx::synth::GraphBuilder;
use trtforge::onnx::Model;
use trtforge::onnx::{float_tensor, node, value_info};

const CACHE: &str = "calibration.cache";

fn coco_images() -> Option<Vec<PathBuf>> {
    let dir = shared("datasets/coco128-train/images")?;
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    assert!(v.len() >= 32, "coco128-train should hold 128 images");
    Some(v)
}

/// A recipe for `model` with a square `size` input, YOLOX preprocessing and the given
/// calibration section (YAML lines, indented by the caller) and TensorRT target.
fn recipe(
    dir: &Path,
    name: &str,
    model: &Path,
    size: usize,
    pad: u8,
    trt: &str,
    calibration: &str,
) -> PathBuf {
    let text = format!(
        "model: {model}\n\
         input:\n  tensor: images\n  shape: [1, 3, {size}, {size}]\n  dtype: float32\n  channel_order: bgr\n  \
         scale: 1.0\n  mean: [0.0, 0.0, 0.0]\n  std: [1.0, 1.0, 1.0]\n  resize: letterbox-top-left\n  \
         pad_value: {pad}\n  interpolation: linear\n\
         {calibration}\
         precision: int8\n\
         target:\n  device: gpu\n  tensorrt: \"{trt}\"\n\
         output: {out}\n",
        model = model.display(),
        out = dir.join("default-out").display(),
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// [`recipe`] for the 64x64 test models: pad 114, TensorRT 10.3.
fn small_recipe(dir: &Path, name: &str, model: &Path, calibration: &str) -> PathBuf {
    recipe(dir, name, model, 64, 114, "10.3", calibration)
}

fn list_file(dir: &Path, name: &str, images: &[PathBuf]) -> PathBuf {
    let p = dir.join(name);
    let text: String = images
        .iter()
        .map(|i| format!("{}\n", i.display()))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

fn calib_section(images: &Path, extra: &str) -> String {
    format!("calibration:\n  images: {}\n{extra}", images.display())
}

/// Run the CLI, asserting success; returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = trtforge(args);
    assert_eq!(code, 0, "trtforge {args:?} failed:\n{out}\n{err}");
    out
}

/// Run the CLI, asserting a one-line error; returns it.
fn fails(args: &[&str]) -> String {
    let (code, out, err) = trtforge(args);
    assert_ne!(code, 0, "trtforge {args:?} should fail:\n{out}\n{err}");
    // Log warnings (a skipped image) may precede it; the error itself is one line.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("[WARN"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected a one-line error from {args:?}, got:\n{err}"
    );
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

fn read_ranges(dir: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(dir.join("ranges.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// `trtforge calibrate RECIPE --out OUT [extra...] --json`, asserting success.
fn calibrate_json(recipe: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "calibrate",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--json");
    json(&ok(&args))
}

/// `provenance.json` of a calibration output folder.
fn provenance(out: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(out.join("provenance.json")).unwrap())
}

/// The float tensors ONNX Runtime produces for `model`: graph inputs plus every node output
/// that comes back as f32 when exposed (shape arithmetic in int64 does not).
fn float_activations(model: &Path, size: usize) -> (Vec<String>, Vec<String>) {
    let m = Model::load(model).unwrap();
    let g = trtforge::onnx::Graph::new(&m);
    let names = g.activation_names();
    let inputs: Vec<String> = g.real_inputs().iter().map(|v| v.name.clone()).collect();
    let extra: Vec<String> = names
        .iter()
        .filter(|n| !inputs.contains(n))
        .cloned()
        .collect();
    let mut s = trtforge::exec::OrtSession::from_model(&m, &extra).unwrap();
    let x = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[1, 3, size, size]), 114.0);
    let floats: HashSet<String> = s
        .run(&[("images", x.view())])
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let (mut f, mut other) = (inputs.clone(), vec![]);
    for n in extra {
        if floats.contains(&n) {
            f.push(n);
        } else {
            other.push(n);
        }
    }
    (f, other)
}

#[test]
fn yolox_64_images_cover_every_float_tensor_with_finite_ranges() {
    let (Some(model), Some(_)) = (common::yolox(), coco_images()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (ent, mm) = (tmp.path().join("entropy"), tmp.path().join("minmax"));
    let r = common::crate_root().join("engines/yolox-nano-int8.yaml");
    let e = calibrate_json(&r, &ent, &[]);
    calibrate_json(&r, &mm, &["--algorithm", "minmax"]);
    assert_eq!(e["images"], 64, "the recipe's limit is 64");

    // Every float tensor TensorRT sees has an entry, in graph order; nothing else does.
    let (floats, non_float) = float_activations(&model, 416);
    let cache = CalibrationCache::read(&ent.join(CACHE)).unwrap();
    let names: Vec<&str> = cache.entries.iter().map(|c| c.tensor.as_str()).collect();
    assert_eq!(names, floats.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        names.len() > 200,
        "YOLOX-nano has hundreds of activations, got {}",
        names.len()
    );
    eprintln!(
        "{} float tensors; non-float node outputs left out: {non_float:?}",
        names.len()
    );
    // Initializers and Constant outputs are not activations.
    let m = Model::load(&model).unwrap();
    let g = &m.proto.graph;
    for t in &g.initializer {
        assert!(
            !names.contains(&t.name.as_str()),
            "initializer {} has a cache entry",
            t.name
        );
    }
    for n in g.node.iter().filter(|n| n.op_type == "Constant") {
        assert!(
            !names.contains(&n.output[0].as_str()),
            "Constant {} has a cache entry",
            n.output[0]
        );
    }
    // Every non-Constant node output is covered unless it is not float.
    for o in g
        .node
        .iter()
        .filter(|n| n.op_type != "Constant")
        .flat_map(|n| n.output.iter())
    {
        assert!(
            names.contains(&o.as_str()) || non_float.contains(o),
            "{o} has no entry"
        );
    }

    let (re, rm) = (read_ranges(&ent), read_ranges(&mm));
    assert_eq!(re.len(), names.len());
    assert_eq!(rm.len(), names.len());
    for (t, &a) in &re {
        let m = rm[t];
        assert!(
            a.is_finite() && a >= 0.0 && m.is_finite(),
            "{t}: entropy {a}, minmax {m}"
        );
        assert!(a <= m, "{t}: entropy amax {a} > minmax amax {m}");
    }
    // The graph input gets minmax: pixels 0..255 (letterbox 114 inside that range).
    assert!(
        re["images"] <= 255.0 && re["images"] >= 250.0,
        "images amax {}",
        re["images"]
    );
    assert_eq!(re["images"], rm["images"]);
    let flagged: Vec<&str> = e["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tensor"].as_str().unwrap())
        .collect();
    assert!(
        !flagged.contains(&"images"),
        "the graph input must not be flagged"
    );
    eprintln!(
        "flagged (clip share > 0.001): {}",
        serde_json::to_string_pretty(&e["flagged"]).unwrap()
    );
}

#[test]
fn cache_is_identical_whatever_the_order_and_batch_size() {
    let (Some(model), Some(all)) = (common::yolox(), coco_images()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // 16 images, listed in a fixed file: `limit` would pick a different subset per order.
    let list = list_file(tmp.path(), "images.txt", &all[40..56]);
    let runs = [
        ("sorted", 0, 1),
        ("sorted", 0, 8),
        ("shuffled", 1, 8),
        ("shuffled", 2, 1),
    ];
    let mut outputs = vec![];
    for (i, (order, seed, batch)) in runs.iter().enumerate() {
        let cal = calib_section(
            &list,
            &format!("  order: {order}\n  seed: {seed}\n  batch_size: {batch}\n"),
        );
        let r = recipe(
            tmp.path(),
            &format!("r{i}.yaml"),
            &model,
            416,
            114,
            "10.3",
            &cal,
        );
        let out = tmp.path().join(format!("out{i}"));
        calibrate_json(&r, &out, &[]);
        let prov = provenance(&out);
        let order: Vec<String> = prov["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect();
        outputs.push((out, order));
    }
    // The orders really differ...
    assert_ne!(outputs[0].1, outputs[2].1);
    assert_ne!(outputs[2].1, outputs[3].1);
    // ...and every file but the provenance (which records the order) is byte-identical.
    for f in [CACHE, "ranges.json", "dynamic_range.txt"] {
        let first = std::fs::read(outputs[0].0.join(f)).unwrap();
        for (i, (o, _)) in outputs.iter().enumerate().skip(1) {
            assert!(
                std::fs::read(o.join(f)).unwrap() == first,
                "{f} of run {i} {:?} differs from run 0",
                runs[i]
            );
        }
    }
}

#[test]
fn derived_tensors_match_asking_onnx_runtime_for_every_activation() {
    // By default ONNX Runtime returns only what cannot be derived (YOLOX-nano: the conv
    // outputs and a few others): reshapes and concats come from merged histograms, sigmoid and
    // SiLU from the conv outputs' signed histograms. `expose_all` bins every tensor's values.
    use trtforge::calib::calibrate::{gather, CalibrateOptions};
    use trtforge::calib::range;
    let (Some(model), Some(all)) = (common::yolox(), coco_images()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let list = list_file(tmp.path(), "images.txt", &all[8..20]);
    let r = recipe(
        tmp.path(),
        "r.yaml",
        &model,
        416,
        114,
        "10.3",
        &calib_section(&list, ""),
    );
    let job = trtforge::recipe::LoadedRecipe::load(&r)
        .unwrap()
        .calibration_job(&Default::default())
        .unwrap();
    let run = |expose_all: bool| {
        let opts = CalibrateOptions {
            expose_all,
            ..Default::default()
        };
        let g = gather(&job, job.image_set().unwrap(), &opts).unwrap();
        assert_eq!(g.images, 12);
        g
    };
    let (derived, exposed) = (run(false), run(true));
    assert_eq!(derived.hists.names, exposed.hists.names);
    assert_eq!(derived.is_float, exposed.is_float);
    let (mut same, mut equally_good) = (0, 0);
    let (mut moved_all, mut count_all) = (0f64, 0f64);
    for ((name, d), e) in derived
        .hists
        .names
        .iter()
        .zip(&derived.hists.hists)
        .zip(&exposed.hists.hists)
    {
        assert_eq!(d.count(), e.count(), "{name}");
        // The range (minmax) is exact up to the f32 rounding of the activation.
        let rel = (d.max_abs() - e.max_abs()).abs() / e.max_abs().max(f32::MIN_POSITIVE);
        assert!(
            rel <= 1e-6,
            "{name}: max {} vs {}",
            d.max_abs(),
            e.max_abs()
        );
        // The 2048 bins the range algorithms use hold nearly the same counts.
        let moved: f64 = d
            .coarse(2048)
            .iter()
            .zip(e.coarse(2048))
            .map(|(a, b)| (a - b).abs())
            .sum();
        // (Spikes such as letterbox padding stay exact; what moves is the spread of values
        // inside one fine bin of the conv output, a fraction of a coarse bin.)
        assert!(
            moved <= 0.05 * e.count() as f64,
            "{name}: {moved} of {} counts in other bins",
            e.count()
        );
        moved_all += moved;
        count_all += e.count() as f64;
        // Entropy: the same threshold within one bin, or, where the KL curve has near-equal
        // minima far apart, a threshold that is as good on the exposed histogram: its KL is
        // within 1% of the minimum.
        let (ed, ee) = (range::entropy(d, 2048), range::entropy(e, 2048));
        if ed.index.abs_diff(ee.index) <= 1 {
            same += 1;
            continue;
        }
        let kl_best = range::entropy_kl(e, 2048, ee.index).unwrap();
        let kl_there = range::entropy_kl(e, 2048, ed.index)
            .unwrap_or_else(|| panic!("{name}: derived threshold {} is no candidate", ed.amax));
        assert!(
            kl_there <= kl_best * 1.01,
            "{name}: derived amax {} (KL {kl_there}) vs exposed {} (KL {kl_best})",
            ed.amax,
            ee.amax
        );
        equally_good += 1;
    }
    eprintln!(
        "{:.2}% of all counts in other coarse bins; entropy: {same} tensors within one bin, \
         {equally_good} on an equally good minimum",
        100.0 * moved_all / count_all
    );
    assert!(moved_all <= 0.01 * count_all, "{moved_all} of {count_all}");
    assert!(
        same >= 9 * (same + equally_good) / 10,
        "{same} of {}",
        same + equally_good
    );
}

/// A small conv net on 64x64 input (fast), saved in `dir`.
fn tiny_model(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    trtforge::onnx::synth::tiny_detector(64).save(&p).unwrap();
    p
}

#[test]
fn stale_cache_is_refused_per_field_and_force_recalibrates() {
    let Some(all) = coco_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = tiny_model(d, "tiny.onnx");
    // Images copied into the temp folder so that one can be rewritten.
    let imgs: Vec<PathBuf> = all[..3]
        .iter()
        .map(|p| {
            let q = d.join(p.file_name().unwrap());
            std::fs::copy(p, &q).unwrap();
            q
        })
        .collect();
    let list = list_file(d, "images.txt", &imgs);
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let r = small_recipe(d, "r.yaml", &model, &calib_section(&list, ""));
    let r = r.to_str().unwrap();
    assert!(ok(&["calibrate", r, "--out", o]).starts_with("calibrated"));
    assert!(ok(&["calibrate", r, "--out", o]).starts_with("up-to-date"));

    // Each change must be refused naming its field, leave the cache untouched, then be accepted
    // with --force (after which the same command is up to date again).
    let check = |what: &str, field: &str, args: &[&str]| {
        let before = std::fs::read(out.join(CACHE)).unwrap();
        let mut a = vec!["calibrate"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--out", o]);
        let e = fails(&a);
        assert!(e.contains(field) && e.contains("--force"), "{what}: {e}");
        assert!(
            e.contains("provenance.json"),
            "{what}: the error should name the file: {e}"
        );
        assert_eq!(
            std::fs::read(out.join(CACHE)).unwrap(),
            before,
            "{what}: a refused run touched the cache"
        );
        a.push("--force");
        assert!(
            ok(&a).starts_with("calibrated"),
            "{what}: --force should recalibrate"
        );
        a.pop();
        assert!(
            ok(&a).starts_with("up-to-date"),
            "{what}: not up to date after --force"
        );
    };

    // Model bytes: one weight changed.
    let mut m = Model::load(&model).unwrap();
    m.proto.graph.as_mut().unwrap().initializer[0].float_data[0] += 0.5;
    m.save(&model).unwrap();
    check("model", "model sha256", &[r]);
    // Input contract.
    let r2 = recipe(
        d,
        "r2.yaml",
        &model,
        64,
        0,
        "10.3",
        &calib_section(&list, ""),
    );
    check("input", "input.pad_value", &[r2.to_str().unwrap()]);
    // Image content: same path, other bytes.
    std::fs::copy(&all[5], &imgs[1]).unwrap();
    check("image", "images differ", &[r2.to_str().unwrap()]);
    // Algorithm (command line) and parameters (recipe).
    check(
        "algorithm",
        "calibration.algorithm",
        &[r2.to_str().unwrap(), "--algorithm", "percentile"],
    );
    let r3 = recipe(
        d,
        "r3.yaml",
        &model,
        64,
        0,
        "10.3",
        &calib_section(&list, "  algorithm: percentile\n  percentile: 99.9\n"),
    );
    check(
        "parameters",
        "calibration.percentile",
        &[r3.to_str().unwrap()],
    );
    // Targeted TensorRT version (changes the cache header too).
    let r4 = recipe(
        d,
        "r4.yaml",
        &model,
        64,
        0,
        "8.6",
        &calib_section(&list, "  algorithm: percentile\n  percentile: 99.9\n"),
    );
    check("tensorrt", "tensorrt", &[r4.to_str().unwrap()]);
    assert!(std::fs::read_to_string(out.join(CACHE))
        .unwrap()
        .starts_with("TRT-8600-EntropyCalibration2\n"));
    // Tool version: as if an older trtforge had written the cache.
    let p = out.join("provenance.json");
    let mut prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    prov["tool_version"] = "0.0.1-old".into();
    std::fs::write(&p, serde_json::to_string_pretty(&prov).unwrap()).unwrap();
    check("tool version", "tool_version", &[r4.to_str().unwrap()]);
    // A cache without provenance is unknown, hence refused.
    std::fs::remove_file(&p).unwrap();
    check(
        "no provenance",
        "no provenance.json",
        &[r4.to_str().unwrap()],
    );
}

/// 64x64 input -> Relu (finite) and Log(images * 0) = -Inf everywhere.
fn inf_model(dir: &Path) -> PathBuf {
    let mut b = GraphBuilder::new("inf");
    b.graph.input.push(value_info("images", &[1, 3, 64, 64]));
    b.graph
        .initializer
        .push(float_tensor("zero", &[1], vec![0.0]));
    let r = b.unary("Relu", "relu", "images");
    b.graph
        .node
        .push(node("Mul", "mul", &[&r, "zero"], &["zeros"], vec![]));
    let l = b.unary("Log", "log", "zeros");
    b.graph.output.push(value_info(&l, &[1, 3, 64, 64]));
    let m = b.finish(13, "inf.onnx");
    let p = dir.join("inf.onnx");
    m.save(&p).unwrap();
    p
}

#[test]
fn nonfinite_activations_fail_naming_tensor_and_image_or_are_dropped_and_counted() {
    let Some(all) = coco_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = inf_model(d);
    let list = list_file(d, "images.txt", &all[..2]);
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let r = small_recipe(d, "r.yaml", &model, &calib_section(&list, ""));
    let e = fails(&["calibrate", r.to_str().unwrap(), "--out", o]);
    assert!(
        e.contains("'log.out'") && e.contains(all[0].to_str().unwrap()),
        "{e}"
    );
    assert!(
        e.contains("drop_nonfinite"),
        "the error should name the fix: {e}"
    );
    assert!(!out.join(CACHE).exists(), "a failed run left a cache");

    let r = small_recipe(
        d,
        "r2.yaml",
        &model,
        &calib_section(&list, "  drop_nonfinite: true\n"),
    );
    let j = calibrate_json(&r, Path::new(o), &[]);
    assert_eq!(
        j["nonfinite_dropped"],
        2 * 3 * 64 * 64,
        "every Log output is -Inf"
    );
    let ranges = read_ranges(&out);
    assert_eq!(ranges["log.out"], 0.0, "nothing finite left: amax 0");
    assert_eq!(ranges["zeros"], 0.0);
    assert!(ranges["relu.out"] > 0.0);
    let cache = std::fs::read_to_string(out.join(CACHE)).unwrap();
    assert!(
        cache.contains("\nlog.out: 0\n") && cache.contains("\nzeros: 0\n"),
        "{cache}"
    );
}

#[test]
fn dump_inputs_writes_one_npy_per_image_sorted_in_stream_order() {
    let Some(all) = coco_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = tiny_model(d, "tiny.onnx");
    let list = list_file(d, "images.txt", &all[..5]);
    let cal = calib_section(&list, "  order: shuffled\n  seed: 7\n  batch_size: 2\n");
    let r = small_recipe(d, "r.yaml", &model, &cal);
    let (out, dump) = (d.join("out"), d.join("dump"));
    calibrate_json(&r, &out, &["--dump-inputs", dump.to_str().unwrap()]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    let prov = provenance(&out);
    let contract = trtforge::recipe::LoadedRecipe::load(&r)
        .unwrap()
        .recipe
        .input;
    for (f, img) in files.iter().zip(prov["images"].as_array().unwrap()) {
        assert_eq!(f.extension().unwrap(), "npy");
        let got = trtforge::data::npy::read_npy(f).unwrap();
        assert_eq!(got.shape(), &[1, 3, 64, 64]);
        let (want, _) = trtforge::data::preprocess::preprocess_image(
            Path::new(img["path"].as_str().unwrap()),
            &contract,
        )
        .unwrap();
        assert!(
            got.iter().eq(want.iter()),
            "{} is not the preprocessed {}",
            f.display(),
            img["path"]
        );
    }
}

#[test]
fn bad_calibration_input_fails_in_one_line_and_writes_nothing() {
    let Some(all) = coco_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = tiny_model(d, "tiny.onnx");
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let no_cache = |what: &str| {
        assert!(
            !out.join(CACHE).exists(),
            "{what}: a failed run left a cache"
        )
    };

    // No calibration section and no --images.
    let r = small_recipe(d, "nocal.yaml", &model, "");
    let e = fails(&["calibrate", r.to_str().unwrap(), "--out", o]);
    assert!(
        e.contains("nocal.yaml") && e.contains("calibration") && e.contains("--images"),
        "{e}"
    );
    no_cache("no section");

    // An empty image folder.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = small_recipe(d, "empty.yaml", &model, &calib_section(&empty, ""));
    let e = fails(&["calibrate", r.to_str().unwrap(), "--out", o]);
    assert!(
        e.contains(empty.to_str().unwrap()),
        "the error should name the folder: {e}"
    );
    no_cache("empty folder");

    // An unreadable image among good ones: fail names it; skip calibrates on the rest.
    let mixed = d.join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for p in &all[..2] {
        std::fs::copy(p, mixed.join(p.file_name().unwrap())).unwrap();
    }
    let bad = mixed.join("000_broken.jpg");
    std::fs::write(&bad, b"not a jpeg at all").unwrap();
    let r = small_recipe(
        d,
        "fail.yaml",
        &model,
        &calib_section(&mixed, "  on_unreadable: fail\n"),
    );
    let e = fails(&["calibrate", r.to_str().unwrap(), "--out", o]);
    assert!(
        e.contains(bad.to_str().unwrap()) && e.contains("on_unreadable"),
        "{e}"
    );
    no_cache("unreadable, fail");
    let r = small_recipe(
        d,
        "skip.yaml",
        &model,
        &calib_section(&mixed, "  on_unreadable: skip\n"),
    );
    let j = calibrate_json(&r, Path::new(o), &[]);
    assert_eq!(j["images"], 2);
    let skipped = j["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].as_str().unwrap().contains("000_broken.jpg"),
        "{skipped:?}"
    );

    // Only unreadable images under skip: nothing to calibrate on.
    let broken = d.join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("a.jpg"), b"garbage").unwrap();
    let out2 = d.join("out2");
    let r = small_recipe(
        d,
        "allbad.yaml",
        &model,
        &calib_section(&broken, "  on_unreadable: skip\n"),
    );
    let e = fails(&[
        "calibrate",
        r.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(e.contains(broken.to_str().unwrap()), "{e}");
    assert!(!out2.join(CACHE).exists());
}
