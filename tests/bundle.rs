//! Deployment bundles on real parts: a matrix cell of the shared NanoDet (computed here, no
//! TensorRT: a bundle without an engine), and the same cell as a Jetson would have published
//! it (the store's own publish, with an engine file and its manifest standing in for what
//! `trtforge build` writes there: verify checks hashes and facts, not engine contents). The
//! bundle goes through a real registry on the loopback address (Debian's docker-registry, the
//! CNCF distribution registry) with skopeo and comes back byte-identical.

mod common;

use common::matrix_fixture::fixture;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use trtforge::matrix::store::{Area, Store};

fn tf_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(common::bin());
    c.args(args).current_dir(common::crate_root());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Jetson's /etc and /sys as verify reads them: L4T R36.4.3, DLA core 0.
fn device_roots(dir: &Path) -> (PathBuf, PathBuf) {
    let etc = dir.join("etc");
    let sys = dir.join("sys");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("nv_tegra_release"),
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n",
    )
    .unwrap();
    std::fs::create_dir_all(sys.join("bus/platform/devices/15880000.nvdla0")).unwrap();
    (etc, sys)
}

const ORIN: [(&str, &str); 2] = [
    ("TRTFORGE_DEVICE_TENSORRT", "10.3.0"),
    ("TRTFORGE_DEVICE_COMPUTE_CAPABILITY", "8.7"),
];

fn verify(bundle: &Path, roots: &(PathBuf, PathBuf), env: &[(&str, &str)]) -> (i32, String) {
    let (code, out, err) = tf_env(
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--etc-root",
            roots.0.to_str().unwrap(),
            "--sysfs-root",
            roots.1.to_str().unwrap(),
        ],
        env,
    );
    (code, format!("{out}{err}"))
}

/// The fixture's NanoDet int8-qdq cell on orin-nano-8gb, run here (needs-tensorrt).
fn cell(f: &common::matrix_fixture::Fixture) -> String {
    let (code, out, err) = common::trtforge(&["matrix", "plan", &f.matrix()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let id = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "nanodet/int8-qdq/orin-nano-8gb/gpu")
        .unwrap()["cell"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = common::trtforge(&["matrix", "run", &f.matrix(), "--cell", &id]);
    assert_eq!(code, 3, "{out}{err}");
    id
}

/// The cell as a Jetson would publish it: its files plus an engine and manifest, the result
/// with engine figures. Returns the new cell's entry folder.
fn device_cell(store: &Store, id: &str, dir: &Path) -> PathBuf {
    let src = store.entry_dir(Area::Cells, id);
    let entry: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("entry.json")).unwrap()).unwrap();
    let device_store = Store::open(&dir.join("device-store")).unwrap();
    let ws = device_store.workspace(id).unwrap();
    for f in entry["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let to = ws.dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), to).unwrap();
    }
    let engine = b"stand-in for a serialized TensorRT plan";
    std::fs::write(ws.dir.join("nanodet.engine"), engine).unwrap();
    let manifest = json!({
        "tool_version": "0.1.0", "onnx_sha256": entry["inputs"]["model_sha256"], "recipe_sha256": "0",
        "precision": "int8", "target": {"device": "gpu", "dla_core": null, "gpu_fallback": true},
        "tensorrt": "10.3.0", "cuda_runtime": "12.6", "cuda_driver": "12.6", "gpu_name": "Orin",
        "compute_capability": "8.7", "l4t_release": "R36.4.3", "module_model": null,
        "inputs": [{"name": "image", "shape": [1, 3, 320, 320], "dtype": "float32"}],
        "outputs": [{"name": "cls_score0", "shape": [1, 1600, 80], "dtype": "float32"}],
        "layers": null, "settings": null, "calibration_cache_sha256": null,
        "build_seconds": 1.0, "engine_sha256": trtforge::util::sha256_hex(engine),
    });
    std::fs::write(
        ws.dir.join("nanodet.engine.manifest.json"),
        manifest.to_string(),
    )
    .unwrap();
    let mut result = entry["result"].clone();
    result["status"] = json!("done");
    result["message"] = Value::Null;
    result["engine"] = json!({
        "engine_bytes": engine.len(), "tensorrt": "10.3.0", "gpu_name": "Orin",
        "compute_capability": "8.7", "l4t_release": "R36.4.3", "nvpmodel": "MAXN_SUPER (2)",
        "latency_p50_ms": 3.1, "latency_p99_ms": 3.4, "throughput_ips": 320.0,
        "j_per_inference": 0.021, "map50_95": 0.3,
    });
    device_store
        .publish(ws, Area::Cells, id, "cell", &entry["inputs"], result)
        .unwrap();
    device_store.entry_dir(Area::Cells, id)
}

#[test]
fn a_bundle_without_an_engine_is_intact_but_not_deployable() {
    let Some(f) = fixture() else { return };
    let id = cell(&f);
    // `matrix run` wrote the cell's bundle into the store.
    let bundle = f.path(&format!("store/bundles/{id}"));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("bundle.json")).unwrap())
            .unwrap();
    assert!(info["engine"].is_null());
    assert!(info["no_engine_reason"]
        .as_str()
        .unwrap()
        .contains("needs-tensorrt"));
    let paths: Vec<&str> = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    for want in ["model.qdq.onnx", "recipe.json"] {
        assert!(paths.contains(&want), "{paths:?}");
    }
    assert_eq!(info["target"]["outputs"].as_array().unwrap().len(), 6);
    let roots = device_roots(f.dir.path());
    let (code, out) = verify(&bundle, &roots, &ORIN);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no engine in this bundle"), "{out}");
}

#[test]
fn bundles_are_verified_through_a_real_registry_and_every_defect_is_refused() {
    let Some(f) = fixture() else { return };
    let id = cell(&f);
    let store = f.store();
    let device = device_cell(&store, &id, f.dir.path());
    let out = f.path("bundle");
    let (code, o, e) = common::trtforge(&[
        "bundle",
        device.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{o}{e}");
    let roots = device_roots(f.dir.path());
    let (code, text) = verify(&out, &roots, &ORIN);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ok: files intact, the device matches"),
        "{text}"
    );
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(info["target"]["compute_capability"], "8.7");
    assert_eq!(info["figures"]["latency_p50_ms"], 3.1);

    // The device does not match: each refusal names the field and both values.
    let other_cc = [ORIN[0], ("TRTFORGE_DEVICE_COMPUTE_CAPABILITY", "8.6")];
    let (code, text) = verify(&out, &roots, &other_cc);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("refused: compute_capability: the bundle is for 8.7, this device has 8.6"),
        "{text}"
    );
    let other_trt = [("TRTFORGE_DEVICE_TENSORRT", "10.16.1"), ORIN[1]];
    let (code, text) = verify(&out, &roots, &other_trt);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("refused: tensorrt: the bundle is for 10.3.0, this device has 10.16.1"),
        "{text}"
    );
    // No TensorRT on the device: not a success.
    let (code, text) = verify(&out, &roots, &[ORIN[1]]);
    assert_eq!(code, 3, "{text}");

    // Defects in copies of the bundle.
    let copy = |name: &str| {
        let to = f.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&out)
            .arg(&to)
            .status()
            .unwrap();
        assert!(st.success());
        to
    };
    let changed = copy("changed");
    let engine = changed.join("nanodet.engine");
    let mut b = std::fs::read(&engine).unwrap();
    b[3] ^= 1;
    // Its own inode: the layout's blob was a hard link to the same bytes.
    std::fs::remove_file(&engine).unwrap();
    std::fs::write(&engine, b).unwrap();
    let missing = copy("missing");
    std::fs::remove_file(missing.join("recipe.json")).unwrap();
    let extra = copy("extra");
    std::fs::write(extra.join("notes.txt"), "hello").unwrap();
    for (dir, want) in [
        (&changed, "refused: nanodet.engine: sha256"),
        (&missing, "refused: recipe.json: missing"),
        (&extra, "refused: notes.txt: extra file"),
    ] {
        let (code, text) = verify(dir, &roots, &ORIN);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(want), "{want}: {text}");
    }

    // Push and pull through a real registry.
    let Some(registry) = Registry::start(f.dir.path()) else {
        return;
    };
    let reference = format!(
        "docker://{}/trtforge/nanodet:int8-qdq-orin-nano",
        registry.addr
    );
    let layout = out.join("oci");
    let (ok, log) = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &reference,
    ]);
    assert!(ok, "push: {log}");
    let pulled = f.path("pulled");
    let (ok, log) = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--preserve-digests",
        &reference,
        &format!("oci:{}:latest", pulled.display()),
    ]);
    assert!(ok, "pull: {log}");
    // Byte-identical: every blob of the pushed layout is in the pulled one with the same bytes.
    let blobs = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(blobs(&layout), blobs(&pulled));
    let (code, text) = verify(&pulled, &roots, &ORIN);
    assert_eq!(code, 0, "{text}");
    let digest = info_digest(&layout);
    assert!(text.contains(&digest), "{digest}: {text}");
    println!("pushed and pulled {reference}: manifest {digest}");
    // A changed blob in the pulled layout is refused too.
    let blob = pulled.join("blobs/sha256").join(
        info["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == "nanodet.engine")
            .unwrap()["sha256"]
            .as_str()
            .unwrap(),
    );
    let mut b = std::fs::read(&blob).unwrap();
    b[0] ^= 1;
    std::fs::write(&blob, b).unwrap();
    let (code, text) = verify(&pulled, &roots, &ORIN);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("blob of nanodet.engine"), "{text}");
}

/// A bundle killed while being written is never visible: `out` is absent or complete.
#[test]
fn a_bundle_killed_mid_write_is_never_visible() {
    let Some(f) = fixture() else { return };
    let id = cell(&f);
    let cell_dir = f.path(&format!("store/cells/{id}"));
    let out = f.path("killed");
    let roots = device_roots(f.dir.path());
    for delay_ms in [0, 2, 5, 10, 20, 40] {
        let _ = std::fs::remove_dir_all(&out);
        let mut child = Command::new(common::bin())
            .args([
                "bundle",
                cell_dir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if out.exists() {
            let (code, text) = verify(&out, &roots, &ORIN);
            // Complete, with no engine (this cell ran without TensorRT).
            assert_eq!(code, 3, "after {delay_ms} ms: {text}");
        }
    }
}

fn info_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn skopeo(args: &[&str]) -> (bool, String) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The distribution registry on a free loopback port, stopped when dropped.
struct Registry {
    child: std::process::Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Option<Registry> {
        let have = |b: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !(have("docker-registry") && have("skopeo")) {
            assert!(
                !trtforge::env::in_ci(),
                "docker-registry and skopeo must be installed under CI (scripts/setup-registry.sh)"
            );
            eprintln!("SKIP: docker-registry or skopeo not installed (scripts/setup-registry.sh)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("registry-data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Some(Registry { child, addr });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the registry did not listen on {addr} within 10 s");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bad input: a folder that is not a bundle, a corrupt bundle.json, a missing path, a folder
/// that is not a matrix cell: one line naming the path and the fix, exit 1, no panic.
#[test]
fn not_a_bundle_and_not_a_cell_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(
        corrupt.join("bundle.json"),
        "{\"schema_version\": 1, \"files\": [",
    )
    .unwrap();
    let missing = dir.path().join("missing");
    let cases: [(&[&str], &Path, &str); 4] = [
        (
            &["verify"],
            &empty,
            "not a bundle (no bundle.json, no oci-layout)",
        ),
        (&["verify"], &corrupt, "not a trtforge bundle.json"),
        (&["verify"], &missing, "not a bundle"),
        (&["bundle"], &empty, "not a complete matrix cell"),
    ];
    for (cmd, path, want) in cases {
        let mut args = cmd.to_vec();
        args.push(path.to_str().unwrap());
        let (code, _, err) = common::trtforge(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        let line = err.trim();
        assert!(
            line.starts_with("error: ")
                && line.contains(path.to_str().unwrap())
                && line.contains(want),
            "{args:?}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.contains("panicked"), "{line}");
    }
    // Nothing was written for the refused cell.
    assert!(!dir.path().join("bundles").exists() && !empty.join("bundle").exists());
}
