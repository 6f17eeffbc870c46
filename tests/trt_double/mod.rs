//! The TensorRT test double, test side: generate the stubs for the headers the shim was
//! compiled against, compile the double (tests/trt_double/cpp) into a shared library under the
//! cargo target dir, load it through trtforge's real loader (once per process, like TensorRT),
//! and reach its controls (record, violations, knobs) with libloading.
//!
//! The double is never part of the shipped binary: build.rs does not know this folder, and
//! the library is only built here, at test time. It produces no engine: its plans start with
//! `TRTFORGE-DOUBLE-NOT-AN-ENGINE\n` and are JSON.

#[path = "gen.rs"]
pub mod gen;
#[path = "host.rs"]
pub mod host;
#[path = "models.rs"]
pub mod models;

use serde_json::Value;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use trtforge::trt::{Libraries, Logger};

/// The magic every plan of the double starts with.
pub const PLAN_MAGIC: &[u8] = b"TRTFORGE-DOUBLE-NOT-AN-ENGINE\n";
pub const TIMING_CACHE_MAGIC: &[u8] = b"TRTFORGE-DOUBLE-TIMING-CACHE\n";

/// Every file of the double's C++ sources (tests/trt_double/cpp), sorted.
fn cpp_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cpp_dir())
        .expect("tests/trt_double/cpp")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

pub fn trt_include() -> PathBuf {
    PathBuf::from(env!("TRTFORGE_TRT_INCLUDE_DIR"))
}

fn cpp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trt_double/cpp")
}

/// Compile the double for the headers in use, once per content: the folder name carries a
/// hash of the generated stubs, the sources, the flags and the compiler, so an unchanged double
/// is not rebuilt. Panics with the compiler's output on failure.
pub fn build() -> PathBuf {
    let include = trt_include();
    let cuda = PathBuf::from(env!("TRTFORGE_CUDA_INCLUDE_DIR"));
    let stubs = gen::generate(&include).unwrap_or_else(|e| panic!("stub generator: {e}"));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let flags = [
        "-std=c++17",
        "-fPIC",
        "-O0",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
    ];
    let mut key = format!(
        "{cxx}\n{flags:?}\n{}\n{}\n",
        include.display(),
        cuda.display()
    );
    key.push_str(&stubs.header);
    for f in cpp_files() {
        key.push_str(&std::fs::read_to_string(&f).expect("double source"));
    }
    let hash = trtforge::util::sha256_hex(key.as_bytes());
    let version = env!("TRTFORGE_TRT_HEADER_VERSION");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trt-double-{version}-{}", &hash[..16]));
    let lib = dir.join("libtrtforge_double.so");
    if lib.is_file() {
        return lib;
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stubs.hpp"), &stubs.header).unwrap();
    // One compiler per source, in parallel, then one link.
    let children: Vec<_> = cpp_files()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "cpp"))
        .map(|f| {
            let obj = dir.join(f.with_extension("o").file_name().unwrap());
            let child = Command::new(&cxx)
                .args(flags)
                .arg(format!("-isystem{}", include.display()))
                .arg(format!("-isystem{}", cuda.display()))
                .arg(format!("-I{}", dir.display()))
                .arg(format!("-I{}", cpp_dir().display()))
                .arg("-c")
                .arg(&f)
                .arg("-o")
                .arg(&obj)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {cxx}: {e}"));
            (f, obj, child)
        })
        .collect();
    let mut objects = Vec::new();
    for (f, obj, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{cxx} failed on {} against {}:\n{}",
            f.display(),
            include.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        objects.push(obj);
    }
    let tmp = dir.join("libtrtforge_double.so.tmp");
    // --no-undefined: the double must not need libnvinfer (or anything but libstdc++).
    let out = Command::new(&cxx)
        .arg("-shared")
        .args(&objects)
        .arg("-Wl,--no-undefined")
        .arg("-o")
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "linking the double failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &lib).unwrap();
    // Doubles of older sources for these headers are of no use any more.
    let prefix = format!("trt-double-{version}-");
    for e in std::fs::read_dir(dir.parent().unwrap()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && e.path() != dir {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    lib
}

/// The loaded double: the library handle for its controls, and the record right after
/// `trtforge::trt::load` (the only moment the plugin registration can be seen).
pub struct Double {
    lib: libloading::Library,
    pub path: PathBuf,
    pub after_load: Value,
}

/// TensorRT messages the double logged (through the shim's logger), newest last.
pub fn logs() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

/// A logger for builders and runtimes that keeps every message for assertions. Leaked: the
/// double logs through the last logger a factory was given, possibly after a test ends.
pub fn logger() -> &'static Logger {
    let l = Logger::new(|sev, msg| {
        logs()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{sev:?}: {msg}"))
    })
    .expect("logger");
    Box::leak(Box::new(l))
}

pub fn libraries() -> Libraries {
    let p = double().path.clone();
    Libraries {
        nvinfer: Some(p.clone()),
        onnxparser: Some(p.clone()),
        plugins: Some(p),
    }
}

/// Build and load the double (once per process).
pub fn double() -> &'static Double {
    static DOUBLE: OnceLock<Double> = OnceLock::new();
    DOUBLE.get_or_init(|| {
        let path = build();
        let libs = Libraries {
            nvinfer: Some(path.clone()),
            onnxparser: Some(path.clone()),
            plugins: Some(path.clone()),
        };
        let version =
            trtforge::trt::load(&libs).unwrap_or_else(|e| panic!("loading the double: {e}"));
        assert_eq!(version, trtforge::trt::header_version());
        // SAFETY: the library the loader just opened (dlopen hands back the same handle); its
        // initialisers are the C++ runtime's.
        let lib = unsafe { libloading::Library::new(&path) }.expect("open the double");
        let mut d = Double {
            lib,
            path,
            after_load: Value::Null,
        };
        d.after_load = d.record();
        d
    })
}

impl Double {
    fn sym<T: Copy>(&self, name: &str) -> T {
        // SAFETY: every control is declared with the signature its caller below uses
        // (tests/trt_double/cpp/record.cpp, entry.cpp, misuse.cpp).
        *unsafe { self.lib.get::<T>(name.as_bytes()) }
            .unwrap_or_else(|e| panic!("double has no {name}: {e}"))
    }

    fn json(&self, name: &str) -> Value {
        let f: unsafe extern "C" fn() -> *const c_char = self.sym(name);
        // SAFETY: returns a NUL-terminated string valid until the next such call; copied now.
        let text = unsafe { CStr::from_ptr(f()) }
            .to_string_lossy()
            .into_owned();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {text}"))
    }

    pub fn record(&self) -> Value {
        self.json("trtforge_double_record_json")
    }

    pub fn reset(&self) {
        let f: unsafe extern "C" fn() = self.sym("trtforge_double_reset");
        // SAFETY: no arguments; the double locks its own state.
        unsafe { f() }
    }

    pub fn set_dla_cores(&self, n: i32) {
        let f: unsafe extern "C" fn(i32) = self.sym("trtforge_double_set_dla_cores");
        // SAFETY: plain value.
        unsafe { f(n) }
    }

    /// Check calibration bindings against the host allocations of [`host::HostBindings`].
    pub fn use_oracle(&self, on: bool) {
        type Oracle = unsafe extern "C" fn(*const c_void) -> usize;
        let f: unsafe extern "C" fn(Option<Oracle>) =
            self.sym("trtforge_double_set_binding_size_oracle");
        // SAFETY: the oracle is a plain function valid for the whole process.
        unsafe { f(on.then_some(host::oracle as Oracle)) }
    }

    pub fn set_device_name(&self, name: &str) {
        let c = CString::new(name).unwrap();
        let f: unsafe extern "C" fn(*const c_char) = self.sym("trtforge_double_set_device_name");
        // SAFETY: NUL-terminated, copied by the double.
        unsafe { f(c.as_ptr()) }
    }

    /// Pretend initLibNvInferPlugins was never called; [`Double::init_plugins`] restores.
    pub fn forget_plugins(&self) {
        let f: unsafe extern "C" fn() = self.sym("trtforge_double_forget_plugins");
        // SAFETY: no arguments.
        unsafe { f() }
    }

    pub fn init_plugins(&self) {
        let f: unsafe extern "C" fn(*mut c_void, *const c_char) -> bool =
            self.sym("initLibNvInferPlugins");
        // SAFETY: a null logger is allowed by the double; "" is NUL-terminated.
        assert!(unsafe { f(std::ptr::null_mut(), c"".as_ptr()) });
    }

    /// Run one of the sequences of misuse.cpp on `onnx`: 1 built, 0 refused, -1 not run.
    pub fn misuse(&self, scenario: &str, onnx: &Path) -> i32 {
        let (s, p) = (
            CString::new(scenario).unwrap(),
            CString::new(onnx.to_str().unwrap()).unwrap(),
        );
        let f: unsafe extern "C" fn(*const c_char, *const c_char) -> i32 =
            self.sym("trtforge_double_misuse");
        // SAFETY: NUL-terminated strings alive for the call.
        unsafe { f(s.as_ptr(), p.as_ptr()) }
    }
}

/// One test's exclusive use of the (process-global) double, reset to its defaults.
pub struct Session {
    _guard: MutexGuard<'static, ()>,
    pub double: &'static Double,
}

pub fn session() -> Session {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let double = double();
    double.reset();
    double.init_plugins_if_forgotten();
    logs().lock().unwrap_or_else(|e| e.into_inner()).clear();
    Session {
        _guard: guard,
        double,
    }
}

impl Double {
    fn init_plugins_if_forgotten(&self) {
        if !self.record()["plugins"]["initialized"]
            .as_bool()
            .unwrap_or(false)
        {
            self.init_plugins();
        }
    }
}

impl Session {
    pub fn record(&self) -> Value {
        self.double.record()
    }

    /// The rules broken so far, in order.
    pub fn violations(&self) -> Vec<String> {
        self.double
            .json("trtforge_double_violations_json")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["rule"].as_str().unwrap().to_string())
            .collect()
    }

    /// Objects of `kind` created since the session began (or still alive from before), by id.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.record()["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect()
    }

    /// The one object of `kind` (panics when there are none or several).
    pub fn only(&self, kind: &str) -> Value {
        let mut all = self.objects(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, got {all:#?}");
        all.remove(0)
    }

    /// `op kind` for every create/destroy event, e.g. "create builder", "destroy parser".
    pub fn lifecycle(&self) -> Vec<String> {
        self.record()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["op"] == "create" || e["op"] == "destroy")
            .map(|e| {
                format!(
                    "{} {}",
                    e["op"].as_str().unwrap(),
                    e["kind"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// No unexpected call, no broken rule, nothing left alive.
    pub fn assert_clean(&self) {
        let r = self.record();
        assert_eq!(
            r["unexpected"],
            serde_json::json!([]),
            "unexpected calls into the double"
        );
        assert_eq!(
            r["violations"],
            serde_json::json!([]),
            "TensorRT rules broken"
        );
        assert_eq!(r["live"], serde_json::json!([]), "objects left alive");
    }

    /// Exactly the rules `want` were broken (in this order), and nothing was called that the
    /// double does not implement.
    pub fn assert_violations(&self, want: &[&str]) {
        let r = self.record();
        assert_eq!(
            r["unexpected"],
            serde_json::json!([]),
            "unexpected calls into the double"
        );
        assert_eq!(self.violations(), want, "violations: {:#}", r["violations"]);
    }
}

pub fn logged(needle: &str) -> bool {
    logs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|l| l.contains(needle))
}

/// TensorRT 11 headers (no calibrator, no kFP16/kINT8, always strongly typed).
pub fn trt11() -> bool {
    trtforge::trt::header_version().major >= 11
}

/// 8.6 or newer (optimization levels, hardware compatibility).
pub fn trt86() -> bool {
    let v = trtforge::trt::header_version();
    (v.major, v.minor) >= (8, 6)
}
