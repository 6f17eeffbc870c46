//! Reproducers of the hostile-input classes fixed so far (issue 17), kept as regression tests:
//! each must end in a one-line error with exit code 1 (or as a Unix tool ends), never a
//! panic, a hang or accepted garbage.

mod common;
mod measure_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the binary with `envs` and a 20 s timeout; (exit code, stderr).
fn run_env(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let (status, err) = common::run_bounded(args, Duration::from_secs(20), None, envs);
    let status = status.unwrap_or_else(|| panic!("trtforge {args:?} hung"));
    (status.code(), err)
}

/// Exit 1 with exactly one `error:` line containing `want`.
fn refused(args: &[&str], want: &str) {
    refused_env(args, &[], want)
}

fn refused_env(args: &[&str], envs: &[(&str, &str)], want: &str) {
    let (code, err) = run_env(args, envs);
    assert_eq!(code, Some(1), "trtforge {args:?}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "trtforge {args:?}: {err}");
    assert!(errors[0].contains(want), "trtforge {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("model.onnx");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.display().to_string();
    refused(&["inspect", &fifo], "a FIFO");
    refused(&["check", &fifo], "a FIFO");
    refused(&["cache", "show", &fifo], "a FIFO");
    refused(&["power", "parse-tegrastats", &fifo], "a FIFO");
    refused(&["inspect", "/dev/zero"], "a device");
    refused(&["compare", "/dev/zero", "/dev/zero"], "a device");
}

#[test]
fn a_kernel_larger_than_its_input_is_an_error_not_a_panic() {
    use trtforge::onnx::{node, synth::GraphBuilder, tensor::float_tensor, value_info};
    let mut b = GraphBuilder::new("bigk");
    b.graph.input.push(value_info("x", &[1, 1, 4, 4]));
    b.graph
        .initializer
        .push(float_tensor("w", &[1, 1, 7, 7], vec![1.0; 49]));
    b.graph
        .node
        .push(node("Conv", "c", &["x", "w"], &["y"], vec![]));
    b.graph.output.push(value_info("y", &[1, 1, 1, 1]));
    let m = b.finish(13, "bigk.onnx");
    if common::ort_session(&trtforge::onnx::synth::tiny_detector(16), &[]).is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("bigk.onnx");
    m.save(&p).unwrap();
    refused(&["inspect", p.to_str().unwrap()], "bigk.onnx");
}

#[test]
fn absurd_recipe_fields_are_located_errors() {
    let t = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::crate_root().join("engines/yolox-nano-qdq.yaml"))
        .unwrap()
        .replace(
            "../../shared",
            &common::crate_root().join("../shared").display().to_string(),
        )
        .replace("../build", "build");
    for (from, to, field) in [
        (
            "batch_size: 8",
            "batch_size: 1000000000000",
            "calibration.batch_size",
        ),
        (
            "shape: [1, 3, 416, 416]",
            "shape: [1, 3, 4000000, 4000000]",
            "input.shape",
        ),
        ("pad_value: 114", "pad_value: .nan", "input.pad_value"),
        ("pad_value: 114", "pad_value: 1e38", "input.pad_value"),
        (
            "mean: [0.0, 0.0, 0.0]",
            "mean: [.inf, 0.0, 0.0]",
            "input.mean",
        ),
        ("scale: 1.0", "scale: 1e-45", "input.scale"),
        (
            "tensorrt: \"10.3\"",
            "tensorrt: \"10.42949673\"",
            "target.tensorrt",
        ),
        (
            "min_int8_macs: 0.9",
            "min_int8_macs: 5",
            "quantize.min_int8_macs",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let p = write(t.path(), "r.yaml", &base.replace(from, to));
        refused(&["check", &p], field);
    }
    let p = write(
        t.path(),
        "r.yaml",
        &format!("{base}builder:\n  workspace_mib: 0\n"),
    );
    refused(&["check", &p], "builder.workspace_mib");
    assert!(base.contains("\neval:\n"));
    let p = write(
        t.path(),
        "r.yaml",
        &base.replace("\neval:\n", "\neval:\n  iou_threshold: 2\n"),
    );
    refused(&["check", &p], "eval.iou_threshold");
}

#[test]
fn absurd_bench_counts_and_durations_are_refused() {
    let Some(m) = common::yolox() else { return };
    let m = m.display().to_string();
    refused(
        &["bench", &m, "--iterations", "99999999999999"],
        "--iterations",
    );
    refused(&["bench", &m, "--batch", "0"], "--batch");
    refused(&["bench", &m, "--duration", "99999999999s"], "duration");
    refused(
        &["bench", &m, "--warmup", "99999999999999999999999999s"],
        "duration",
    );
}

#[test]
fn caches_with_impossible_entries_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let head = "TRT-100300-EntropyCalibration2\n";
    for (body, want) in [
        ("a: 7fc00000\n", "not a finite"), // NaN
        ("a: 7f800000\n", "not a finite"), // +inf
        ("a: bf800000\n", "not a finite"), // -1.0
        ("a: 3c010a14\na: 3c010a14\n", "appears twice"),
        (": 3c010a14\n", "a tensor name of 0 bytes"),
    ] {
        let p = write(t.path(), "c.cache", &format!("{head}{body}"));
        refused(&["cache", "show", &p], want);
    }
    let long = format!("{head}{}: 3c010a14\n", "n".repeat(70_000));
    let p = write(t.path(), "c.cache", &long);
    refused(&["cache", "show", &p], "a tensor name of 70000 bytes");
}

#[test]
fn tegrastats_numbers_of_hundreds_of_digits_are_not_power() {
    let line = format!("VDD_IN {}mW/5100mW VDD_SOC 1440mW/1400mW", "9".repeat(400));
    let l = trtforge::measure::power::tegrastats::parse_line(&line).unwrap();
    assert_eq!(l.rails.len(), 1, "{:?}", l.rails);
    assert_eq!(l.rails[0].name, "VDD_SOC");
}

#[test]
fn a_closed_stdout_ends_the_process_quietly() {
    let Some(m) = common::yolox() else { return };
    let mut child = Command::new(common::bin())
        .args(["inspect", m.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as `| head -0` would
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    // Killed by SIGPIPE like `cat`, or done before it wrote: never a panic (101).
    assert!(
        out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_png_that_declares_a_huge_image_is_refused_before_decoding() {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(8, 8)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    let mut png = out.into_inner();
    // IHDR data starts at byte 16: width, height (big endian); its CRC follows the 13 bytes.
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = trtforge::data::image::decode_rgb8(&png, Path::new("bomb.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bomb.png") && e.contains("limit"), "{e}");
}

#[test]
fn deep_yaml_is_refused_at_once() {
    let t = tempfile::tempdir().unwrap();
    let text = format!(
        "model: a.onnx\nx: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let p = write(t.path(), "deep.yaml", &text);
    let started = Instant::now();
    refused(&["check", &p], "nested more than 64 levels");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_model_cut_inside_its_last_fields_is_refused() {
    let bytes = trtforge::onnx::synth::tiny_detector(16).to_bytes().unwrap();
    // The opset import is written last: cut into it and the model has no opset.
    let mut refused_cuts = 0;
    for cut in 1..12 {
        let r =
            trtforge::onnx::Model::from_bytes(&bytes[..bytes.len() - cut], Path::new("cut.onnx"));
        if let Ok(m) = r {
            assert!(
                m.opset() > 0,
                "a model cut by {cut} bytes was accepted without an opset"
            );
        } else {
            refused_cuts += 1;
        }
    }
    assert!(refused_cuts > 0);
}

#[test]
fn impossible_bench_reports_are_refused_by_compare() {
    let seed = common::crate_root().join("tests/fuzz_seeds/bench.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&seed).unwrap()).unwrap();
    let t = tempfile::tempdir().unwrap();
    for (field, value, want) in [
        ("mean_ms", 0.0, "mean 0"),
        ("min_ms", -1.0, "min -1"),
        ("median_ms", 1e12, "median"),
    ] {
        let mut bad = v.clone();
        bad["latency"][field] = value.into();
        let p = write(t.path(), "bad.json", &serde_json::to_string(&bad).unwrap());
        refused(&["compare", p.as_str(), seed.to_str().unwrap()], want);
    }
}

#[test]
fn a_rail_label_on_two_channels_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    measure_support::orin_nx(t.path(), 2);
    let label = t
        .path()
        .join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/in2_label");
    std::fs::write(&label, "VDD_IN").unwrap();
    let e = trtforge::measure::power::ina3221::Ina3221::discover(t.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("VDD_IN appears on two channels"), "{e}");
}

/// A recipe calibrating `model` (input `images`, `size` square) on `images` into `dir/out`;
/// `calibration` lines go inside the calibration section, `extra` at the top level.
fn calib_recipe(
    dir: &Path,
    model: &Path,
    size: usize,
    images: &Path,
    calibration: &str,
    extra: &str,
) -> String {
    let text = format!(
        "model: {}\ninput:\n  tensor: images\n  shape: [1, 3, {size}, {size}]\n  channel_order: bgr\n  \
         scale: 0.00392156862745098\n  resize: letterbox-centre\n{extra}calibration:\n  images: {}\n  \
         batch_size: 1\n{calibration}precision: int8\ntarget:\n  device: gpu\n  tensorrt: \"10.3\"\noutput: {}\n",
        model.display(),
        images.display(),
        dir.join("out").display()
    );
    write(dir, "r.yaml", &text)
}

/// The synth detector (32x32 input) saved as `dir/tiny.onnx`.
fn tiny_model(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("tiny.onnx");
    trtforge::onnx::synth::tiny_detector(32)
        .save(&model)
        .unwrap();
    model
}

fn bundled_photos() -> std::path::PathBuf {
    common::crate_root().join("calib_data")
}

fn has_ort() -> bool {
    common::ort_session(&trtforge::onnx::synth::tiny_detector(16), &[]).is_some()
}

#[test]
fn nested_protobuf_groups_are_refused_before_the_parser_recurses() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = trtforge::onnx::synth::tiny_detector(16).to_bytes().unwrap();
    // Field 15 is unknown to ModelProto: 150,000 nested start-group tags (0x7b) used to
    // overflow the stack inside rust-protobuf's recursive group skipping.
    bytes.extend(std::iter::repeat_n(0x7b, 150_000));
    bytes.extend(std::iter::repeat_n(0x7c, 150_000));
    let p = t.path().join("groups.onnx");
    std::fs::write(&p, bytes).unwrap();
    refused(
        &["inspect", p.to_str().unwrap()],
        "groups nested more than 32 deep",
    );
}

/// A chain of `n` Relu on a 1x3x32x32 input named `images`.
fn relu_chain(n: usize) -> trtforge::onnx::Model {
    use trtforge::onnx::{synth::GraphBuilder, value_info};
    let mut b = GraphBuilder::new("chain");
    b.graph.input.push(value_info("images", &[1, 3, 32, 32]));
    let mut x = "images".to_string();
    for i in 0..n {
        x = b.unary("Relu", &format!("r{i}"), &x);
    }
    b.graph.output.push(value_info(&x, &[1, 3, 32, 32]));
    b.finish(13, "chain.onnx")
}

#[test]
fn big_graphs_are_estimated_before_allocating() {
    if !has_ort() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("chain.onnx");
    relu_chain(2000).save(&model).unwrap();
    // 2000 activations of 12 KiB: inspect probes them in chunks under an 8 MiB budget...
    let budget = [("TRTFORGE_MEMORY_BUDGET_MIB", "8")];
    let out = std::process::Command::new(common::bin())
        .args(["inspect", model.to_str().unwrap()])
        .envs(budget)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Relu 2000"));
    // ... and calibration, whose 2001 histograms take 256 KiB each (500 MiB), is refused
    // before any is allocated, writing nothing.
    let r = calib_recipe(t.path(), &model, 32, &bundled_photos(), "", "");
    refused_env(&["calibrate", &r], &budget, "MiB of histograms");
    assert!(!t.path().join("out").exists());
}

#[test]
fn cache_diff_of_a_hundred_thousand_tensors_completes() {
    // Quadratic before: 150k entries took 70 s. Linear now (the 20 s timeout guards a hang).
    let t = tempfile::tempdir().unwrap();
    let mut a = String::from("TRT-100300-EntropyCalibration2\n");
    let mut b = a.clone();
    for i in 0..100_000u32 {
        a.push_str(&format!("tensor_{i}: 3c000000\n"));
        b.push_str(&format!("tensor_{}: 3c000000\n", i + 1));
    }
    let (pa, pb) = (
        write(t.path(), "a.cache", &a),
        write(t.path(), "b.cache", &b),
    );
    let (code, out, err) = common::trtforge(&["cache", "diff", &pa, &pb]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("99999 common, 1 only in A, 1 only in B"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
}

#[test]
fn an_edited_artifact_beside_intact_provenance_is_stale() {
    if !has_ort() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let model = tiny_model(t.path());
    let r = calib_recipe(t.path(), &model, 32, &bundled_photos(), "", "");
    let (code, _, err) = common::trtforge(&["calibrate", &r]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = common::trtforge(&["calibrate", &r]);
    assert_eq!(code, 0);
    assert!(out.contains("up-to-date"), "{out}");
    for file in ["ranges.json", "calibration.cache", "dynamic_range.txt"] {
        let p = t.path().join("out").join(file);
        let original = std::fs::read(&p).unwrap();
        std::fs::write(&p, b"").unwrap();
        refused(&["calibrate", &r], "edited after it was written");
        std::fs::write(&p, original).unwrap();
    }
    let (code, _, err) = common::trtforge(&["calibrate", &r]);
    assert_eq!(code, 0, "restored files are fresh again: {err}");
    // Output names come from an editable file: one pointing elsewhere is refused unread.
    let prov_path = t.path().join("out/provenance.json");
    let prov = std::fs::read_to_string(&prov_path).unwrap();
    std::fs::write(
        &prov_path,
        prov.replace("\"ranges.json\"", "\"../../etc/passwd\""),
    )
    .unwrap();
    refused(&["calibrate", &r], "its outputs name");
    std::fs::write(&prov_path, &prov).unwrap();
    // A set that cannot be written (a folder where dynamic_range.txt goes) is refused before
    // the previous set is touched: its provenance is still there.
    let dr = t.path().join("out/dynamic_range.txt");
    std::fs::remove_file(&dr).unwrap();
    std::fs::create_dir(&dr).unwrap();
    refused(
        &["calibrate", &r, "--force"],
        "exists and is not a regular file",
    );
    assert_eq!(std::fs::read_to_string(&prov_path).unwrap(), prov);
}

#[test]
fn a_tensor_name_with_a_line_break_writes_no_artifact() {
    if !has_ort() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut m = trtforge::onnx::synth::tiny_detector(32);
    for n in m.proto.graph.as_mut().unwrap().node.iter_mut() {
        for name in n.input.iter_mut().chain(n.output.iter_mut()) {
            if name == "stem.out" {
                *name = "stem\nout".into();
            }
        }
    }
    let model = t.path().join("nl.onnx");
    m.save(&model).unwrap();
    let r = calib_recipe(t.path(), &model, 32, &bundled_photos(), "", "");
    refused(&["calibrate", &r], "line break");
    let out = t.path().join("out");
    for f in [
        "ranges.json",
        "dynamic_range.txt",
        "calibration.cache",
        "provenance.json",
    ] {
        assert!(!out.join(f).exists(), "{f} was written");
    }
}

#[test]
fn recipe_fields_check_did_not_look_at_are_checked() {
    let t = tempfile::tempdir().unwrap();
    let model = tiny_model(t.path());
    let photos = bundled_photos();
    // dtype float16 on a float32 model.
    let r = calib_recipe(t.path(), &model, 32, &photos, "", "");
    let text = std::fs::read_to_string(&r)
        .unwrap()
        .replace("  channel_order", "  dtype: float16\n  channel_order");
    std::fs::write(&r, text).unwrap();
    refused(
        &["check", &r],
        "input.dtype: float16, but the model's input 'images' is float32",
    );
    // A precision plan that does not exist.
    let r = calib_recipe(
        t.path(),
        &model,
        32,
        &photos,
        "",
        "builder:\n  precision_plan: nowhere.json\n",
    );
    refused(&["check", &r], "builder.precision_plan");
    // A list naming an image that is not there.
    let list = write(
        t.path(),
        "list.txt",
        &format!("{}\nmissing.jpg\n", photos.join("coffee.png").display()),
    );
    let r = calib_recipe(t.path(), &model, 32, Path::new(&list), "", "");
    refused(&["check", &r], "list.txt:2:");
}

#[test]
fn a_dangling_image_link_is_an_error_not_a_smaller_set() {
    let t = tempfile::tempdir().unwrap();
    let model = tiny_model(t.path());
    let imgs = t.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    std::os::unix::fs::symlink(bundled_photos().join("coffee.png"), imgs.join("a.png")).unwrap();
    std::os::unix::fs::symlink(t.path().join("gone.jpg"), imgs.join("b.jpg")).unwrap();
    for mode in ["fail", "skip"] {
        let r = calib_recipe(
            t.path(),
            &model,
            32,
            &imgs,
            &format!("  on_unreadable: {mode}\n"),
            "",
        );
        refused(&["check", &r], "b.jpg: a symbolic link to");
    }
}

/// A 64x64 noisy baseline JPEG.
fn noisy_jpeg() -> Vec<u8> {
    let mut state = 7u32;
    let px: Vec<u8> = (0..64 * 64 * 3)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(&px, 64, 64, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[test]
fn a_two_component_jpeg_is_refused() {
    let jpeg = noisy_jpeg();
    let decode = |b: &[u8]| trtforge::data::image::decode_rgb8(b, Path::new("x.jpg"));
    assert!(decode(&jpeg).is_ok());
    // SOF0 rewritten for two components (length 14, the third component's 3 bytes cut).
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut two = jpeg[..sof + 2].to_vec();
    two.extend([0, 14, 8, 0, 64, 0, 64, 2]);
    two.extend(&jpeg[sof + 10..sof + 16]);
    two.extend(&jpeg[sof + 19..]);
    let e = decode(&two).unwrap_err().to_string();
    assert!(e.contains("x.jpg: a JPEG with 2 colour components"), "{e}");
}

#[test]
fn a_malformed_total_rail_token_is_not_a_sample() {
    let t = tempfile::tempdir().unwrap();
    let log = write(
        t.path(),
        "t.log",
        "RAM 721/31927MB VDD_GPU 10mW/10mW VDD_CPU 5mW/5mW VDD_IN 50x0mW/5000mW\n\
         RAM 721/31927MB VDD_GPU 10mW/10mW VDD_CPU 5mW/5mW VDD_IN 5000mW/5000mW\n",
    );
    let (code, out, err) = common::trtforge(&["power", "parse-tegrastats", &log]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("malformed power field VDD_IN (not a sample)"),
        "{out}"
    );
    assert!(lines[1].contains("total 5000 mW (VDD_IN)"), "{out}");
}

#[test]
fn external_data_of_the_wrong_size_or_unmarked_is_refused() {
    use onnx_protobuf::{tensor_proto::DataLocation, StringStringEntryProto};
    let t = tempfile::tempdir().unwrap();
    let entry = |k: &str, v: &str| {
        let mut e = StringStringEntryProto::new();
        e.key = k.into();
        e.value = v.into();
        e
    };
    // (length key, marked EXTERNAL, what the refusal says). Found by the harness: a length
    // off by a few bytes, no length (the rest of the file), or the EXTERNAL mark lost.
    for (length, marked, want) in [
        (
            Some("1724"),
            true,
            "holds 1724 bytes but its dims [16, 3, 3, 3] need 1728",
        ),
        (None, true, "holds 1792 bytes"),
        (Some("1728"), false, "not marked EXTERNAL"),
    ] {
        let mut m = trtforge::onnx::synth::tiny_detector(16);
        let g = m.proto.graph.as_mut().unwrap();
        let mut data = Vec::new();
        for init in g.initializer.iter_mut().take(2) {
            data.extend(std::mem::take(&mut init.raw_data));
            data.extend(init.float_data.drain(..).flat_map(f32::to_le_bytes));
        }
        let w = &mut g.initializer[0];
        w.external_data = vec![entry("location", "w.bin"), entry("offset", "0")];
        if let Some(l) = length {
            w.external_data.push(entry("length", l));
        }
        if marked {
            w.data_location = DataLocation::EXTERNAL.into();
        }
        g.initializer.remove(1);
        g.initializer.push(trtforge::onnx::float_tensor(
            "stem.bias",
            &[16],
            vec![0.0; 16],
        ));
        std::fs::write(t.path().join("w.bin"), &data).unwrap();
        let p = t.path().join("m.onnx");
        std::fs::write(&p, m.to_bytes().unwrap()).unwrap();
        refused(&["inspect", p.to_str().unwrap()], want);
    }
}

#[test]
fn a_bench_report_whose_plot_cannot_be_written_leaves_no_file() {
    if !has_ort() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let model = tiny_model(t.path());
    let out = t.path().join("bench");
    std::fs::create_dir_all(out.join("latency_timeline.svg")).unwrap();
    let args = [
        "bench",
        model.to_str().unwrap(),
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--power",
        "off",
        "--out",
        out.to_str().unwrap(),
    ];
    refused(
        &args,
        "latency_timeline.svg: exists and is not a regular file",
    );
    for f in ["bench.json", "bench.md", "latency_histogram.svg"] {
        assert!(!out.join(f).exists(), "{f} was written");
    }
}

#[test]
fn an_os_error_is_said_once() {
    let t = tempfile::tempdir().unwrap();
    let file = write(t.path(), "file", "x");
    let missing = t.path().join("none").display().to_string();
    let under_file = format!("{file}/sub");
    for args in [
        vec!["inspect", missing.as_str()],
        vec!["check", missing.as_str()],
        vec!["cache", "diff", missing.as_str(), missing.as_str()],
        vec!["compare", missing.as_str(), missing.as_str()],
        vec!["power", "parse-tegrastats", missing.as_str()],
        vec!["synth", "--out", under_file.as_str()],
    ] {
        let (code, err) = run_env(&args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.matches("os error").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn an_image_over_the_size_limit_is_not_read_to_hash_it() {
    if !has_ort() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let model = tiny_model(t.path());
    let imgs = t.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    std::fs::copy(bundled_photos().join("coffee.png"), imgs.join("a.png")).unwrap();
    // Sparse: 3 GiB on paper, nothing on disk.
    std::fs::File::create(imgs.join("huge.jpg"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let r = calib_recipe(t.path(), &model, 32, &imgs, "  on_unreadable: skip\n", "");
    let (code, _, err) = common::trtforge(&["calibrate", &r]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("huge.jpg") && err.contains("more than the 256 MB"),
        "{err}"
    );
    let prov = std::fs::read_to_string(t.path().join("out/provenance.json")).unwrap();
    assert!(prov.contains("not read: 3221225472 bytes"), "{prov}");
}

#[test]
fn a_jpeg_cut_mid_scan_with_an_end_marker_is_refused_and_whole_ones_are_not() {
    let decode = |b: &[u8]| trtforge::data::image::decode_rgb8(b, Path::new("x.jpg"));
    let mut files = vec![noisy_jpeg()];
    for dir in ["datasets/coco128-train/images", "images/public-domain"] {
        if let Some(d) = common::shared(dir) {
            let mut paths: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect();
            paths.sort();
            files.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
        }
    }
    let sequential = |b: &[u8]| b.windows(2).any(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC1]);
    let mut cut_refused = 0;
    for (i, bytes) in files.iter().enumerate() {
        assert!(decode(bytes).is_ok(), "whole file {i} refused");
        let sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        let mut cut = bytes[..sos + (bytes.len() - sos) / 2].to_vec();
        cut.extend([0xFF, 0xD9]);
        match decode(&cut) {
            Err(e) if e.to_string().contains("truncated or corrupt JPEG") => cut_refused += 1,
            // Progressive files are not walked (the decoder's own checks apply).
            _ => assert!(!sequential(bytes), "cut sequential file {i} accepted"),
        }
    }
    eprintln!("{} JPEGs, {cut_refused} cut copies refused", files.len());
    assert!(cut_refused > 0);
}
