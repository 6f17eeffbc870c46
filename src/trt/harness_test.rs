//! Drives the C++ calibrator class (sys/calibrator.cpp) through sys/harness/harness.cpp,
//! which calls it exactly as TensorRT's builder does, with the real Rust bridge behind it.
//! Needs TensorRT headers (TENSORRT_INCLUDE_DIR) and CUDA headers (CUDA_INCLUDE_DIR) and a
//! C++ compiler, not libnvinfer: the calibrator interfaces are header-only. Without headers
//! the test is skipped with a message, unless TRTFORGE_REQUIRE_HARNESS is set
//! (scripts/check-tensorrt.sh sets it).

use super::bridge::testing::{counting_bindings, CountingSource, HostBindings, MemCache};
use super::bridge::{CacheStore, CalibratorCallbacks, CalibratorState};
use crate::error::Error;
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};

#[repr(C)]
#[derive(Debug)]
struct Report {
    cache_hit: i32,
    batch_size: i32,
    batches: i32,
    checksum: f64,
    amax: f32,
    wrote_cache: i32,
    algorithm: i32,
    interface_name: [c_char; 64],
    cache_header: [c_char; 64],
}

type Drive = unsafe extern "C" fn(
    *const CalibratorCallbacks,
    i32,
    *const *const c_char,
    i32,
    i64,
    *mut Report,
) -> i32;

struct Harness {
    _lib: libloading::Library,
    drive: Drive,
    version: String,
}

fn text(a: &[c_char; 64]) -> String {
    // SAFETY: the harness writes NUL-terminated strings with snprintf into these arrays.
    unsafe { CStr::from_ptr(a.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The headers' version. From 10.16 on NV_TENSORRT_* are aliases of TRT_*_ENTERPRISE.
fn header_version(include: &Path) -> String {
    let t = std::fs::read_to_string(include.join("NvInferVersion.h")).unwrap_or_default();
    let define = |k: &str| {
        t.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("#define {k} "))
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        })
    };
    let get = |part: &str| {
        define(&format!("NV_TENSORRT_{part}"))
            .filter(|v| v.parse::<u32>().is_ok())
            .or_else(|| define(&format!("TRT_{part}_ENTERPRISE")))
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{}.{}.{}.{}",
        get("MAJOR"),
        get("MINOR"),
        get("PATCH"),
        get("BUILD")
    )
}

/// Compile the calibrator + harness into a shared library (with --no-undefined: it must link
/// without libnvinfer) and load it. `None` (skip) when the headers are not given.
fn harness(dir: &Path) -> Option<Harness> {
    let required = crate::env::var("TRTFORGE_REQUIRE_HARNESS").is_some();
    let (Some(trt), Some(cuda)) = (
        crate::env::var("TENSORRT_INCLUDE_DIR"),
        crate::env::var("CUDA_INCLUDE_DIR"),
    ) else {
        assert!(
            !required,
            "TRTFORGE_REQUIRE_HARNESS is set but TENSORRT_INCLUDE_DIR/CUDA_INCLUDE_DIR are not"
        );
        eprintln!(
            "skipping calibrator harness: set TENSORRT_INCLUDE_DIR and CUDA_INCLUDE_DIR \
             (scripts/fetch-tensorrt-headers.sh fetches them)"
        );
        return None;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sys = root.join("sys");
    let out = dir.join("libtrtforge_harness.so");
    let cxx = crate::env::var("CXX").unwrap_or_else(|| "g++".into());
    let status = std::process::Command::new(&cxx)
        .args([
            "-std=c++17",
            "-shared",
            "-fPIC",
            "-O1",
            "-Wall",
            "-Wno-deprecated-declarations",
        ])
        .arg(format!("-isystem{trt}"))
        .arg(format!("-isystem{cuda}"))
        .arg(format!("-I{}", sys.display()))
        .arg(sys.join("calibrator.cpp"))
        .arg(sys.join("common.cpp"))
        .arg(sys.join("harness/harness.cpp"))
        .arg("-Wl,--no-undefined")
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cxx}: {e}"));
    assert!(
        status.success(),
        "{cxx} failed to build the harness against {trt}"
    );
    // SAFETY: our own freshly built library; its initialisers are the C++ runtime's.
    let lib = unsafe { libloading::Library::new(&out) }.expect("load harness");
    // SAFETY: the symbol has the `Drive` signature (sys/harness/harness.cpp).
    let drive = *unsafe { lib.get::<Drive>(b"trtforge_harness_drive") }.expect("harness symbol");
    Some(Harness {
        _lib: lib,
        drive,
        version: header_version(Path::new(&trt)),
    })
}

impl Harness {
    /// One calibration as TensorRT runs it; returns (status, report, the Rust state).
    fn run(
        &self,
        src: CountingSource,
        cache: Option<MemCache>,
        minmax: bool,
    ) -> (i32, Report, Box<CalibratorState>) {
        let elems = (src.batch * src.chw) as i64;
        let bindings = counting_bindings(src.batch, src.chw);
        let mut state = CalibratorState::new(
            Box::new(src),
            cache.map(|c| Box::new(c) as Box<dyn CacheStore>),
            Box::new(HostBindings::default()),
            bindings,
        )
        .unwrap();
        let cb = state.callbacks();
        let name = CString::new("images").unwrap();
        let names = [name.as_ptr()];
        // SAFETY: all-zero is a valid Report (integers, floats, char arrays).
        let mut report: Report = unsafe { std::mem::zeroed() };
        // SAFETY: `cb` points at the live boxed state; arrays and report are valid for the call.
        let rc = unsafe {
            (self.drive)(
                &cb,
                i32::from(minmax),
                names.as_ptr(),
                1,
                elems,
                &mut report,
            )
        };
        println!(
            "harness[TensorRT {}] rc={rc} algorithm={} interface='{}' batch_size={} batches={} checksum={} amax={} cache_hit={} wrote_cache={} header='{}'",
            self.version,
            report.algorithm,
            text(&report.interface_name),
            report.batch_size,
            report.batches,
            report.checksum,
            report.amax,
            report.cache_hit,
            report.wrote_cache,
            text(&report.cache_header)
        );
        (rc, report, state)
    }
}

fn expected_sum(src: &CountingSource, batches: usize) -> f64 {
    (0..batches)
        .flat_map(|b| (0..src.batch * src.chw).map(move |i| (b, i)))
        .map(|(b, i)| src.value(b, i) as f64)
        .sum()
}

#[test]
fn calibrator_driven_as_tensorrt_does() {
    let dir = tempfile::tempdir().unwrap();
    let Some(h) = harness(dir.path()) else { return };
    let major: u32 = h.version.split('.').next().unwrap().parse().unwrap();

    // 1. No cache: every batch until the end of the stream, then the cache is written.
    let cache = MemCache::default();
    let src = CountingSource::new(2, 6, 3);
    let want = expected_sum(&src, 3);
    let (rc, r, mut state) = h.run(src, Some(cache.clone()), false);
    if major >= 11 {
        // No calibrator classes: the harness says so and asks for nothing.
        assert_eq!(rc, 2, "TRTFORGE_UNSUPPORTED");
        assert_eq!((r.batches, r.wrote_cache), (0, 0));
        return;
    }
    assert_eq!(rc, 0);
    assert_eq!(
        (r.cache_hit, r.batch_size, r.batches, r.wrote_cache),
        (0, 2, 3, 1)
    );
    assert!((r.checksum - want).abs() < 1e-6, "{} vs {want}", r.checksum);
    assert_eq!(r.algorithm, 2, "kENTROPY_CALIBRATION_2");
    if major >= 10 {
        assert_eq!(text(&r.interface_name), "IInt8EntropyCalibrator2 1.0");
    }
    let sum = state.finish().unwrap();
    assert_eq!((sum.batches, sum.ended, sum.cache_used), (3, true, false));
    let written = cache
        .bytes
        .lock()
        .unwrap()
        .clone()
        .expect("cache written through the CacheStore");
    let header = String::from_utf8_lossy(&written)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        header.starts_with("TRT-") && header.ends_with("-EntropyCalibration2"),
        "{header}"
    );
    assert_eq!(text(&r.cache_header), header);

    // 2. Cache round trip: the written cache is read back, no batch is requested.
    let (rc, r, mut state) = h.run(CountingSource::new(2, 6, 3), Some(cache.clone()), false);
    assert_eq!(rc, 0);
    assert_eq!((r.cache_hit, r.batches), (1, 0));
    assert_eq!(text(&r.cache_header), header);
    assert!(state.finish().unwrap().cache_used);

    // 3. A stale cache is refused: no batch, nothing written, the Stale error comes back.
    let stale = MemCache {
        stale: true,
        ..Default::default()
    };
    let (rc, r, mut state) = h.run(CountingSource::new(2, 6, 3), Some(stale.clone()), false);
    assert_eq!(rc, 0);
    assert_eq!((r.cache_hit, r.batches, r.wrote_cache), (0, 0, 0));
    assert!(stale.bytes.lock().unwrap().is_none());
    assert!(matches!(state.finish(), Err(Error::Stale { .. })));

    // 4. An error in the batch source at batch 1 ends calibration and comes back.
    let mut src = CountingSource::new(1, 4, 5);
    src.error_at = Some(1);
    // TensorRT treats the failed getBatch as the end of the stream and still calls
    // writeCalibrationCache with what it saw: the bridge must not store that partial cache.
    let partial = MemCache::default();
    let (_, r, mut state) = h.run(src, Some(partial.clone()), false);
    assert_eq!((r.batches, r.wrote_cache), (1, 1));
    assert!(
        partial.bytes.lock().unwrap().is_none(),
        "partial cache stored"
    );
    let e = state.finish().unwrap_err().to_string();
    assert!(
        e.contains("calibration batch 1 (getBatch) failed") && e.contains("calib/001.jpg"),
        "{e}"
    );
    println!("error came back as: {e}");

    // 5. A panic in the batch source at batch 2 is caught and comes back as an error.
    let mut src = CountingSource::new(1, 4, 5);
    src.panic_at = Some(2);
    let partial = MemCache::default();
    let (_, r, mut state) = h.run(src, Some(partial.clone()), false);
    assert_eq!(r.batches, 2);
    assert!(
        partial.bytes.lock().unwrap().is_none(),
        "partial cache stored"
    );
    let e = state.finish().unwrap_err().to_string();
    assert!(
        e.contains("calibration batch 2 (getBatch) panicked") && e.contains("decoder exploded"),
        "{e}"
    );
    println!("panic came back as: {e}");

    // 6. The min-max calibrator class goes through the same bridge.
    let (rc, r, mut state) = h.run(CountingSource::new(1, 4, 2), None, true);
    assert_eq!(
        (rc, r.algorithm, r.batches),
        (0, 3, 2),
        "kMINMAX_CALIBRATION"
    );
    if major >= 10 {
        assert_eq!(text(&r.interface_name), "IInt8MinMaxCalibrator 1.0");
    }
    state.finish().unwrap();
}
