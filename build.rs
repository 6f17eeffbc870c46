//! Build script: does nothing unless the `tensorrt` feature is on. Then it finds TensorRT's
//! headers (and CUDA's, which NvInfer.h includes), reads the version from NvInferVersion.h,
//! emits cfgs for version differences and compiles sys/ with `cc` (C++17). Nothing is linked
//! against TensorRT: the shim loads its libraries at run time (sys/library.cpp), so this needs
//! only headers, and no libclang (the bindings of sys/trtforge_shim.h are committed).

#[cfg(feature = "tensorrt")]
use std::path::{Path, PathBuf};

/// Every environment read goes through here, so cargo reruns when any of them changes.
fn env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    if env("CARGO_FEATURE_TENSORRT").is_none() {
        return;
    }
    // Only code under the `tensorrt` feature tests these.
    println!("cargo:rustc-check-cfg=cfg(trt_has_optimization_level)");
    println!("cargo:rustc-check-cfg=cfg(trt_has_strongly_typed)");
    println!("cargo:rustc-check-cfg=cfg(trt_has_calibrator)");
    #[cfg(feature = "tensorrt")]
    if let Err(msg) = tensorrt() {
        panic!("\n{msg}\n");
    }
}

#[cfg(feature = "tensorrt")]
struct Version {
    major: u32,
    minor: u32,
    patch: u32,
    build: u32,
}

#[cfg(feature = "tensorrt")]
fn header_version(include: &Path) -> Result<Version, String> {
    let path = include.join("NvInferVersion.h");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let get = |key: &str| -> Result<u32, String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("#define "))
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse().ok()))?
            })
            .ok_or_else(|| format!("{}: no {key}", path.display()))
    };
    // TensorRT 10.x renamed nothing here; 11 may move to TRT_* names, so accept both.
    let pick = |a: &str, b: &str| get(a).or_else(|_| get(b));
    Ok(Version {
        major: pick("NV_TENSORRT_MAJOR", "TRT_MAJOR_ENTERPRISE")?,
        minor: pick("NV_TENSORRT_MINOR", "TRT_MINOR_ENTERPRISE")?,
        patch: pick("NV_TENSORRT_PATCH", "TRT_PATCH_ENTERPRISE")?,
        build: pick("NV_TENSORRT_BUILD", "TRT_BUILD_ENTERPRISE").unwrap_or(0),
    })
}

#[cfg(feature = "tensorrt")]
fn tensorrt() -> Result<(), String> {
    let arch = env("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|| "x86_64".into());
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let sys = manifest_dir.join("sys");
    let sources = [
        "library.cpp",
        "builder.cpp",
        "config.cpp",
        "runtime.cpp",
        "calibrator.cpp",
        "common.cpp",
    ];
    for f in sources.iter().chain(&["trtforge_shim.h", "internal.hpp"]) {
        println!("cargo:rerun-if-changed={}", sys.join(f).display());
    }

    // Candidate include folders, in order.
    let mut include_dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = env("TENSORRT_INCLUDE_DIR") {
        include_dirs.push(d.into());
    }
    if let Some(root) = env("TENSORRT_ROOT") {
        include_dirs.push(Path::new(&root).join("include"));
    }
    let triple = format!("{arch}-linux-gnu");
    include_dirs.push(Path::new("/usr/include").join(&triple));
    for prefix in [
        "/usr/local/tensorrt",
        "/opt/tensorrt",
        "/usr/local/TensorRT",
        "/usr",
        "/usr/local",
    ] {
        include_dirs.push(Path::new(prefix).join("include"));
    }

    let include = include_dirs
        .iter()
        .find(|d| d.join("NvInfer.h").is_file() && d.join("NvOnnxParser.h").is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "TensorRT headers (NvInfer.h and NvOnnxParser.h) not found. Looked in:\n  {}\n\
                 Set TENSORRT_INCLUDE_DIR, or TENSORRT_ROOT to the TensorRT folder, \
                 or build without `--features tensorrt`.",
                include_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        })?;
    let v = header_version(&include)?;
    println!(
        "cargo:rustc-env=TRTFORGE_TRT_HEADER_VERSION={}.{}.{}.{}",
        v.major, v.minor, v.patch, v.build
    );
    if v.major > 8 || (v.major == 8 && v.minor >= 6) {
        println!("cargo:rustc-cfg=trt_has_optimization_level");
    }
    if v.major >= 10 {
        println!("cargo:rustc-cfg=trt_has_strongly_typed");
    }
    if v.major < 11 {
        println!("cargo:rustc-cfg=trt_has_calibrator");
    }

    // NvInfer.h includes cuda_runtime_api.h.
    let mut cuda_dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = env("CUDA_INCLUDE_DIR") {
        cuda_dirs.push(d.into());
    }
    for var in ["CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"] {
        if let Some(d) = env(var) {
            cuda_dirs.push(Path::new(&d).join("include"));
        }
    }
    cuda_dirs.push("/usr/local/cuda/include".into());
    cuda_dirs.push(Path::new("/usr/local/cuda/targets").join(format!("{arch}-linux/include")));
    cuda_dirs.push(Path::new("/usr/include").join(&triple));
    cuda_dirs.push("/usr/include".into());
    let cuda = cuda_dirs.iter().find(|d| d.join("cuda_runtime_api.h").is_file()).cloned().ok_or_else(|| {
        format!(
            "CUDA headers (cuda_runtime_api.h) not found. Looked in:\n  {}\nSet CUDA_INCLUDE_DIR or CUDA_PATH.",
            cuda_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join("\n  ")
        )
    })?;

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .files(sources.iter().map(|f| sys.join(f)))
        .include(&sys)
        .flag_if_supported(format!("-isystem{}", include.display()))
        .flag_if_supported(format!("-isystem{}", cuda.display()))
        .include(&include)
        .include(&cuda)
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(true)
        .compile("trtforge_shim");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    // For the tests that build the TensorRT test double against the very same headers.
    println!(
        "cargo:rustc-env=TRTFORGE_TRT_INCLUDE_DIR={}",
        include.display()
    );
    println!(
        "cargo:rustc-env=TRTFORGE_CUDA_INCLUDE_DIR={}",
        cuda.display()
    );
    Ok(())
}
