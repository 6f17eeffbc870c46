//! Shared test helpers: locating ../shared data (skip outside CI, fail under CI=true), the
//! Python reference interpreter, and the built binary.
#![allow(dead_code)]

pub mod matrix_fixture;

use std::path::{Path, PathBuf};

pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/<rel>` if present. Absent: under CI=true a failure, otherwise None and a
/// printed reason (the caller returns early, so the test shows as passed with a skip note).
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = crate_root().join("..").join("shared").join(rel);
    if p.exists() {
        return Some(p);
    }
    if matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1")) {
        panic!(
            "{} is missing; under CI the shared data must be present",
            p.display()
        );
    }
    eprintln!("SKIP: {} not found (shared data absent)", p.display());
    None
}

pub fn yolox() -> Option<PathBuf> {
    shared("models/yolox_nano/yolox_nano.onnx")
}

/// Every shared model, with its recipe in engines/.
pub fn shared_models() -> Vec<PathBuf> {
    [
        "models/yolox_nano/yolox_nano.onnx",
        "models/nanodet_m_320/nanodet_m_320.onnx",
        "models/fastestdet/FastestDet.onnx",
    ]
    .iter()
    .filter_map(|m| shared(m))
    .collect()
}

/// The venv's Python (numpy, OpenCV, pycocotools, onnxruntime): TRTFORGE_PYTHON or .venv.
pub fn python() -> PathBuf {
    std::env::var_os("TRTFORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_root().join(".venv/bin/python"))
}

/// Path of the trtforge binary built for integration tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_trtforge"))
}

/// Run the CLI; returns (exit code, stdout, stderr).
pub fn trtforge(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .current_dir(crate_root())
        .output()
        .expect("run trtforge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The committed recipe whose model is `model` (by file name).
pub fn recipe_for(model: &Path) -> trtforge::recipe::LoadedRecipe {
    let name = model.file_name().unwrap().to_str().unwrap();
    let recipe = match name {
        "yolox_nano.onnx" => "engines/yolox-nano-int8.yaml",
        "nanodet_m_320.onnx" => "engines/nanodet-m-320-int8.yaml",
        "FastestDet.onnx" => "engines/fastestdet-dla-fp16.yaml",
        other => panic!("no recipe for {other}"),
    };
    trtforge::recipe::LoadedRecipe::load(&crate_root().join(recipe)).unwrap()
}

/// A real COCO image preprocessed with the model's recipe, as a 1xCxHxW tensor of `shape`.
pub fn real_input(model: &Path, shape: &[usize]) -> ndarray::ArrayD<f32> {
    let recipe = recipe_for(model);
    let image = shared("datasets/coco128-train/images/000000000009.jpg").expect("coco128 image");
    let (t, _) =
        trtforge::data::preprocess::preprocess_image(&image, &recipe.recipe.input).unwrap();
    let x = t.insert_axis(ndarray::Axis(0)).into_dyn();
    assert_eq!(x.shape(), shape);
    x
}

/// The JSON a finished command printed, asserting it succeeded (stderr in the message).
pub fn json_output(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// An ONNX Runtime session of `m` (with `extra` outputs), or None (skip, with a note) when
/// ONNX Runtime is not installed outside CI; under CI=true its absence is a failure.
pub fn ort_session(
    m: &trtforge::onnx::Model,
    extra: &[String],
) -> Option<trtforge::exec::OrtSession> {
    match trtforge::exec::OrtSession::from_model(m, extra) {
        Ok(s) => Some(s),
        Err(e @ trtforge::Error::Unavailable { .. }) => {
            assert!(!trtforge::env::in_ci(), "{e}");
            eprintln!("SKIP: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Deterministic values in [-1, 1) of `shape`.
pub fn ramp_input(shape: &[usize], seed: u32) -> ndarray::ArrayD<f32> {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| {
        (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0
    });
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.collect()).unwrap()
}

/// max |x| of every activation of `m` over one run on `images` = `x`: the ranges a minmax
/// calibration would give.
pub fn minmax_ranges(
    m: &trtforge::onnx::Model,
    x: &ndarray::ArrayD<f32>,
) -> Option<std::collections::HashMap<String, f32>> {
    let names: Vec<String> = trtforge::onnx::Graph::new(m)
        .activation_names()
        .into_iter()
        .filter(|n| n != "images")
        .collect();
    let mut s = ort_session(m, &names)?;
    let amax = |a: &ndarray::ArrayD<f32>| a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut r: std::collections::HashMap<String, f32> = s
        .run(&[("images", x.view())])
        .unwrap()
        .into_iter()
        .map(|(n, a)| (n, amax(&a)))
        .collect();
    r.insert("images".into(), amax(x));
    Some(r)
}

/// Run the built binary in the crate root with `args`, under `timeout` and, when given, an
/// address-space cap (bytes); stderr is drained while it runs (a full pipe would block it).
/// `envs` are set for the child. Returns the exit status (None: killed at the timeout) and
/// stderr.
pub fn run_bounded(
    args: &[&str],
    timeout: std::time::Duration,
    address_space: Option<u64>,
    envs: &[(&str, &str)],
) -> (Option<std::process::ExitStatus>, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(bin());
    cmd.args(args)
        .envs(envs.iter().copied())
        .current_dir(crate_root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(limit) = address_space {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("run trtforge");
    let mut pipe = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut pipe, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (status, reader.join().unwrap_or_default())
}
