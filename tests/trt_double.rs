//! The shim's TensorRT call sequences, run against a TensorRT test double (tests/trt_double)
//! that implements TensorRT's classes for the headers the shim was compiled with and enforces
//! TensorRT's documented rules. Each rule has a test that breaks it and checks the double
//! catches it; the correct sequences check what TensorRT was asked, call by call.
//!
//! Needs the `tensorrt` feature (TensorRT and CUDA headers) and a C++ compiler, not TensorRT.
#![cfg(feature = "tensorrt")]

#[path = "trt_double/mod.rs"]
mod double;

use double::host::{f32_binding, ConstSource, HostBindings, MemCache};
use double::{logger, models, session, trt11, trt86, PLAN_MAGIC, TIMING_CACHE_MAGIC};
use serde_json::{json, Value};
use std::ffi::c_void;
use trtforge::trt::{
    Builder, CalibrationSession, CalibratorState, Config, DataType, Engine, Flag, InputProfile,
    IoTensor, Network, Pool, ProfileShape, ProfilingVerbosity, TacticSource, TrtRuntime,
};
use trtforge::Error;

// ---------------------------------------------------------------------------------------------
// helpers

fn profile(name: &str, min: &[i64], opt: &[i64], max: &[i64]) -> InputProfile {
    InputProfile {
        name: name.into(),
        min: min.to_vec(),
        opt: opt.to_vec(),
        max: max.to_vec(),
    }
}

fn batch_profile(min: i64, opt: i64, max: i64) -> InputProfile {
    profile(
        "images",
        &[min, 3, 16, 16],
        &[opt, 3, 16, 16],
        &[max, 3, 16, 16],
    )
}

fn unavailable(r: trtforge::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Unavailable { why, .. }) => why,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Build `model` with the config `setup` prepares; the plan bytes. Builder, network and config
/// are gone when this returns (the order the double wants before a deserialization).
fn build_with(
    model: &std::path::Path,
    setup: impl FnOnce(&Builder, &Network, &Config),
) -> trtforge::Result<Vec<u8>> {
    let log = logger();
    let builder = Builder::new(log)?;
    let mut net = builder.network(false)?;
    net.parse_onnx(log, model)?;
    let cfg = builder.config()?;
    setup(&builder, &net, &cfg);
    let (plan, _) = builder.build(&net, &cfg, None)?;
    Ok(plan.as_slice().to_vec())
}

/// FP16 where the version has the flag (TensorRT 11 takes precision from the model).
fn fp16(cfg: &Config) {
    if !trt11() {
        cfg.set_flag(Flag::Fp16, true).unwrap();
    }
}

fn plan_json(plan: &[u8]) -> Value {
    assert!(
        plan.starts_with(PLAN_MAGIC),
        "a plan of the double starts with its magic"
    );
    serde_json::from_slice(&plan[PLAN_MAGIC.len()..]).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Bits of TensorRT's TacticSource numbering in this version.
fn tactic_bit(t: TacticSource) -> i64 {
    let index = match (trt11(), t) {
        (false, TacticSource::EdgeMaskConvolutions) => 3,
        (false, TacticSource::JitConvolutions) => 4,
        (true, TacticSource::EdgeMaskConvolutions) => 0,
        (true, TacticSource::JitConvolutions) => 1,
        (_, other) => panic!("no bit for {other:?} here"),
    };
    1 << index
}

/// A calibrator over `source`'s batches in host memory, its bindings of shape `bindings`.
fn calibration(
    source: ConstSource,
    cache: Option<MemCache>,
    bindings: &[usize],
    minmax: bool,
) -> CalibrationSession {
    let name = source.name.clone();
    let state = CalibratorState::new(
        Box::new(source),
        cache.map(|c| Box::new(c) as Box<dyn trtforge::trt::CacheStore>),
        Box::new(HostBindings::default()),
        f32_binding(&name, bindings),
    )
    .unwrap();
    CalibrationSession::new(state, minmax).unwrap()
}

macro_rules! skip_on_11 {
    ($why:expr) => {
        if trt11() {
            eprintln!("skipped on TensorRT 11: {}", $why);
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// the double itself

#[test]
fn generator_handles_overloads_destructors_defaults_and_conditionals() {
    let impl_h = r#"
        #ifndef GUARD
        namespace nvinfer1 {
        class ITensor;
        namespace apiv {
        class VRoot { public: virtual ~VRoot() noexcept = default; };
        class VThing : public VRoot
        {
        public:
            virtual ~VThing() noexcept = 0; // pure virtual destructor
            TRT_DEPRECATED virtual int32_t get(char const* name /* a name */) const noexcept = 0;
            virtual int32_t get(int32_t index) const noexcept = 0;
            virtual bool fill(void* bindings[], char const* names[], int32_t nb) noexcept = 0;
            virtual void call(void (*fn)(int), Dims const& dims = Dims{}) noexcept
                = 0;
            TRT_NODISCARD virtual IPluginRegistry& registry() noexcept = 0;
            virtual void notPure() noexcept {}
        };
        #if !STRIP
        class VOptional : public VRoot
        {
        public:
        #if NEW
            virtual nvinfer1::ITensor* tensor(int64_t const, TensorFormats) noexcept = 0;
        #endif
        };
        #endif
        class VEmpty : public VRoot { public: };
        } // namespace apiv
        } // namespace nvinfer1
        #endif
    "#;
    let parser_h = r#"
        namespace nvonnxparser {
        class IParserError { public: virtual int node() const = 0; virtual ~IParserError() {} };
        class IParser { public: virtual IParserError const* getError(int index) const noexcept = 0; };
        }
        extern "C" TENSORRTAPI void* createNvOnnxParser_INTERNAL(void* network, void* logger, int version);
    "#;
    let entries = vec![
        "extern \"C\" TENSORRTAPI void* createInferBuilder_INTERNAL(void* logger, int32_t version) noexcept;\n\
         extern \"C\" TENSORRTAPI void* createInferRuntime_INTERNAL(void* logger, int32_t version) noexcept;\n\
         extern \"C\" TENSORRTAPI int32_t getInferLibVersion() noexcept;"
            .to_string(),
    ];
    let g = double::gen::generate_from(impl_h, parser_h, &entries).unwrap();
    let h = &g.header;
    assert_eq!(
        g.classes,
        [
            "nvinfer1::apiv::trtforge_stub::StubVThing",
            "nvinfer1::apiv::trtforge_stub::StubVOptional",
            "nvonnxparser::trtforge_stub::StubIParserError",
            "nvonnxparser::trtforge_stub::StubIParser"
        ]
    );
    assert_eq!(g.methods, 8);
    for want in [
        "~StubVThing() noexcept override {}",
        // The header declares the destructor pure without a body: the stub needs one.
        "inline ::nvinfer1::apiv::VThing::~VThing() noexcept {}",
        "int32_t get(char const*) const noexcept override { return ::trtforge_double::unexpected_return<int32_t>(\"VThing::get(char const*)\"); }",
        "int32_t get(int32_t) const noexcept override",
        "bool fill(void*[], char const*[], int32_t) noexcept override",
        "void call(void(*)(int), Dims const&) noexcept override",
        "IPluginRegistry& registry() noexcept override { return ::trtforge_double::unexpected_return<IPluginRegistry&>",
        "nvinfer1::ITensor* tensor(int64_t const, TensorFormats) noexcept override",
        "#if !STRIP\nclass StubVOptional",
        "#if NEW\n    nvinfer1::ITensor* tensor",
        "int node() const override",
        "IParserError const* getError(int) const noexcept override",
        "#define TRTFORGE_DOUBLE_NOEXCEPT_createNvOnnxParser_INTERNAL \n",
        "#define TRTFORGE_DOUBLE_NOEXCEPT_createInferBuilder_INTERNAL noexcept\n",
    ] {
        assert!(h.contains(want), "missing {want:?} in\n{h}");
    }
    assert!(
        !h.contains("notPure") && !h.contains("GUARD") && !h.contains("VEmpty"),
        "{h}"
    );
    assert!(
        !h.contains("TRT_DEPRECATED") && !h.contains("TRT_NODISCARD"),
        "{h}"
    );
}

/// Every pure virtual of the headers in use gets a stub (a naive count of `= 0;` in the
/// namespaces the generator reads agrees with what it emitted).
#[test]
fn generator_covers_every_pure_virtual_of_the_headers_in_use() {
    let include = double::trt_include();
    let g = double::gen::generate(&include).unwrap();
    let count = |file: &str, from: &str| {
        let text =
            double::gen::strip_comments(&std::fs::read_to_string(include.join(file)).unwrap());
        let start = text.find(from).unwrap();
        let flat: String = text[start..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        flat.matches("= 0;").count()
    };
    let want = count("NvInferImpl.h", "namespace apiv")
        + count("NvOnnxParser.h", "namespace nvonnxparser");
    assert_eq!(g.methods, want, "{} stub classes", g.classes.len());
    for needed in [
        "StubVBuilder",
        "StubVBuilderConfig",
        "StubVRuntime",
        "StubVCudaEngine",
        "StubIParser",
    ] {
        assert!(g.classes.iter().any(|c| c.ends_with(needed)), "no {needed}");
    }
}

/// The double is test code only: the shipped build (build.rs, sys/) never names it.
#[test]
fn double_stays_out_of_the_shipped_build() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shipped = vec![root.join("build.rs")];
    for e in std::fs::read_dir(root.join("sys")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            shipped.push(p);
        }
    }
    for p in shipped {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            !text.contains("trt_double") && !text.contains("trtforge_double"),
            "{} names the double",
            p.display()
        );
    }
}

#[test]
fn load_registers_plugins_before_anything_else() {
    let s = session();
    let r = &s.double.after_load;
    assert_eq!(r["plugins"], json!({"initialized": true, "calls": 1}));
    assert_eq!(r["events"][0]["op"], "initLibNvInferPlugins");
    assert_eq!(
        r["events"].as_array().unwrap().len(),
        1,
        "load creates nothing: {:#}",
        r["events"]
    );
    assert_eq!(
        trtforge::trt::library_version(),
        Some(trtforge::trt::header_version())
    );
    // Loading again loads nothing. The count is process state that other tests move (the
    // plugin-rule test registers again after forgetting), so compare before and after here
    // rather than with 1: the order tests take the double's lock in is not fixed.
    let calls_before = s.record()["plugins"]["calls"].clone();
    trtforge::trt::load(&double::libraries()).unwrap();
    assert_eq!(s.record()["plugins"]["calls"], calls_before);
    s.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// correct sequences

#[test]
fn gpu_build_round_trip_records_every_setting() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let layers = [
        "stem",
        "stem_act",
        "pruned",
        "pruned_act",
        "head",
        "head_act",
    ];
    let (plan, cache) = {
        let builder = Builder::new(log).unwrap();
        assert_eq!(builder.nb_dla_cores().unwrap(), 0);
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &model).unwrap();
        assert_eq!(
            net.inputs().unwrap(),
            [IoTensor {
                name: "images".into(),
                is_input: true,
                dims: vec![1, 3, 16, 16],
                dtype: "float32"
            }]
        );
        assert_eq!(
            net.outputs().unwrap(),
            [IoTensor {
                name: "scores".into(),
                is_input: false,
                dims: vec![1, 45, 4, 4],
                dtype: "float32"
            }]
        );
        assert_eq!(net.layer_names().unwrap(), layers);
        let cfg = builder.config().unwrap();
        fp16(&cfg);
        cfg.set_memory_pool(Pool::Workspace, 1 << 28).unwrap();
        cfg.set_profiling_verbosity(ProfilingVerbosity::Detailed)
            .unwrap();
        if trt86() {
            cfg.set_optimization_level(4).unwrap();
            cfg.set_hardware_compatibility(0).unwrap();
        } else {
            unavailable(cfg.set_optimization_level(4));
            unavailable(cfg.set_hardware_compatibility(0));
        }
        cfg.set_tactic_sources(
            &[TacticSource::JitConvolutions],
            &[TacticSource::EdgeMaskConvolutions],
        )
        .unwrap();
        cfg.set_timing_cache(None).unwrap();
        let (plan, calib) = builder.build(&net, &cfg, None).unwrap();
        assert!(calib.is_none());
        let (cache, combined) = cfg.merge_timing_cache(None).unwrap();
        assert!(combined);
        (plan.as_slice().to_vec(), cache)
    };
    let p = plan_json(&plan);
    assert_eq!(p["dla_core"], -1);
    assert!(cache.starts_with(TIMING_CACHE_MAGIC));

    let rt = TrtRuntime::new(log).unwrap();
    let engine = rt.deserialize(&plan).unwrap();
    assert_eq!(
        engine
            .io_tensors()
            .unwrap()
            .iter()
            .map(|t| (t.name.as_str(), t.is_input))
            .collect::<Vec<_>>(),
        [("images", true), ("scores", false)]
    );
    assert_eq!(engine.nb_profiles().unwrap(), 0);
    let info: Value = serde_json::from_str(&engine.layer_info_json().unwrap()).unwrap();
    let got: Vec<&str> = info["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Name"].as_str().unwrap())
        .collect();
    assert_eq!(got, layers);
    assert_eq!(info["Layers"][0]["LayerType"], "Convolution");
    let fmt = if trt11() {
        "Row major linear FP32"
    } else {
        "Row major linear FP16"
    };
    assert_eq!(info["Layers"][0]["Outputs"][0]["Format/Datatype"], fmt);
    assert_eq!(info["Bindings"], json!(["images", "scores"]));
    let ctx = engine.context().unwrap();
    let mut buf = [0u64; 4];
    // SAFETY: the double never touches tensor memory or the stream (both opaque to it).
    unsafe {
        ctx.set_tensor_address("images", buf.as_mut_ptr().cast())
            .unwrap();
        ctx.set_tensor_address("scores", buf.as_mut_ptr().cast())
            .unwrap();
        ctx.enqueue(0x5eed as *mut c_void).unwrap();
    }
    assert_eq!(ctx.tensor_shape("scores").unwrap(), [1, 45, 4, 4]);
    drop(ctx);
    drop(engine);
    drop(rt);

    let c = s.only("config");
    assert_eq!(
        names(&c["flags_set"]),
        if trt11() { vec![] } else { vec!["kFP16"] }
    );
    assert_eq!(c["pools"], json!({"kWORKSPACE": 1 << 28}));
    assert_eq!(c["profiling_verbosity"], "kDETAILED");
    if trt86() {
        assert_eq!(c["optimization_level"], 4);
        assert_eq!(c["hardware_compatibility_level"], 0);
    }
    let tactics = c["tactic_sources"].as_i64().unwrap();
    assert_ne!(tactics & tactic_bit(TacticSource::JitConvolutions), 0);
    assert_eq!(tactics & tactic_bit(TacticSource::EdgeMaskConvolutions), 0);
    // Enable/disable is applied to the current sources, read first.
    let calls = names(&c["calls"]);
    let get = calls.iter().position(|c| c == "getTacticSources").unwrap();
    let set = calls
        .iter()
        .position(|c| c.starts_with("setTacticSources"))
        .unwrap();
    assert!(get < set, "{calls:?}");
    assert_eq!(c["timing_cache"]["ignore_mismatch"], true);
    let n = s.only("network");
    assert_eq!(n["strongly_typed"], trt11());
    assert_eq!(n["name"], "trtforge_tiny_detector");
    let ctx = s.only("context");
    assert_eq!(ctx["enqueues"][0]["stream"], 0x5eed);
    assert_eq!(ctx["enqueues"][0]["ok"], true);

    // Parser gone before the network, everything of the builder gone before the runtime.
    let life = s.lifecycle();
    let at = |e: &str| {
        life.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no {e} in {life:?}"))
    };
    assert!(at("destroy parser") < at("destroy network"));
    assert!(
        at("destroy network") < at("destroy builder")
            && at("destroy config") < at("destroy builder")
    );
    assert!(at("destroy builder") < at("create runtime"));
    assert!(
        at("destroy context") < at("destroy engine")
            && at("destroy engine") < at("destroy runtime")
    );
    s.assert_clean();
}

#[test]
fn parser_errors_are_reported_with_their_cause() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::new(log).unwrap();
    for (path, want) in [
        (models::garbage(dir.path()), "not a protobuf message"),
        (dir.path().join("missing.onnx"), "cannot open"),
    ] {
        let mut net = builder.network(false).unwrap();
        let e = net.parse_onnx(log, &path).unwrap_err();
        match &e {
            Error::Onnx { path: p, msg } => {
                assert_eq!(p, &path);
                assert!(msg.contains(want), "{msg}");
            }
            other => panic!("expected an ONNX error, got {other:?}"),
        }
        let errs = net.parser_errors().unwrap();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].node, -1);
        assert!(double::logged(want), "the parser logs its errors too");
    }
    drop(builder);
    s.assert_clean();
}

#[test]
fn a_parse_that_fails_without_an_error_still_says_so() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::new(log).unwrap();
    let path = models::fails_silently(dir.path());
    let mut net = builder.network(false).unwrap();
    match net.parse_onnx(log, &path).unwrap_err() {
        Error::Onnx { path: p, msg } => {
            assert_eq!(p, path);
            assert!(msg.contains("without reporting an error"), "{msg}");
        }
        other => panic!("expected an ONNX error, got {other:?}"),
    }
    assert!(net.parser_errors().unwrap().is_empty());
    drop(net);
    drop(builder);
    s.assert_clean();
}

#[test]
fn unnamed_nodes_are_named_after_their_first_output() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::new(log).unwrap();
    let mut net = builder.network(false).unwrap();
    net.parse_onnx(log, &models::unnamed(dir.path())).unwrap();
    assert_eq!(net.layer_names().unwrap().last().unwrap(), "node_of_scores");
    drop(net);
    drop(builder);
    s.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// rule 1: the parser lives until the build

#[test]
fn parser_outlives_the_build_then_goes_before_its_network() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    build_with(&models::tiny(dir.path()), |_, _, cfg| fp16(cfg)).unwrap();
    let life = s.lifecycle();
    let events = s.record()["events"].as_array().unwrap().clone();
    let build = events.iter().position(|e| e["op"] == "build").unwrap();
    let parser_gone = events
        .iter()
        .position(|e| e["op"] == "destroy" && e["kind"] == "parser")
        .unwrap();
    let network_gone = events
        .iter()
        .position(|e| e["op"] == "destroy" && e["kind"] == "network")
        .unwrap();
    assert!(
        build < parser_gone && parser_gone < network_gone,
        "{life:?}"
    );
    s.assert_clean();
}

/// The shim cannot destroy a parser before its network (the network owns it), so the broken
/// order is run through TensorRT's C++ API inside the double (cpp/misuse.cpp).
#[test]
fn parser_destroyed_before_the_build_is_caught() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    assert_eq!(s.double.misuse("trtexec-order", &model), 1);
    s.assert_clean();
    assert_eq!(s.double.misuse("parser-destroyed-before-build", &model), 0);
    s.assert_violations(&["parser-destroyed-before-build"]);
}

// ---------------------------------------------------------------------------------------------
// rule 2: plugins before any parse and any deserialization

#[test]
fn plugins_must_be_registered_before_parse_and_deserialize() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let plan = build_with(&model, |_, _, cfg| fp16(cfg)).unwrap();
    s.double.forget_plugins();
    {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        let e = net.parse_onnx(log, &model).unwrap_err().to_string();
        assert!(e.contains("plugins are not registered"), "{e}");
    }
    let rt = TrtRuntime::new(log).unwrap();
    assert!(rt.deserialize(&plan).is_err());
    drop(rt);
    s.assert_violations(&["plugins-not-initialized", "plugins-not-initialized"]);
    s.double.init_plugins();
}

// ---------------------------------------------------------------------------------------------
// rule 3: calibration

#[test]
fn int8_calibration_reads_every_static_input_in_full() {
    skip_on_11!("no calibrator");
    let s = session();
    s.double.use_oracle(true);
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let cache = MemCache::default();
    let mut calib = calibration(
        ConstSource::new("images", &[1, 3, 16, 16], 3),
        Some(cache.clone()),
        &[1, 3, 16, 16],
        false,
    );
    let summary = {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &models::tiny(dir.path())).unwrap();
        let cfg = builder.config().unwrap();
        cfg.set_flag(Flag::Int8, true).unwrap();
        let (_, summary) = builder.build(&net, &cfg, Some(&mut calib)).unwrap();
        summary.unwrap()
    };
    drop(calib);
    assert_eq!(
        (summary.batches, summary.ended, summary.cache_used),
        (3, true, false)
    );
    let b = &s.record()["builds"][0];
    let c = &b["calibration"];
    assert_eq!(c["algorithm"], "kENTROPY_CALIBRATION_2");
    assert_eq!(c["batch_size"], 1);
    assert_eq!(
        c["inputs"],
        json!([{"name": "images", "dims": [1, 3, 16, 16], "dtype": "kFLOAT", "bytes": 3072, "from": "static"}])
    );
    assert_eq!(
        c["get_batch_calls"], 4,
        "three batches, then the end of the stream"
    );
    assert_eq!(
        names(&c["sequence"]),
        [
            "getAlgorithm",
            "readCalibrationCache",
            "getBatchSize",
            "getBatch",
            "getBatch",
            "getBatch",
            "getBatch(end)",
            "writeCalibrationCache"
        ]
    );
    for (i, batch) in c["batches"].as_array().unwrap().iter().enumerate() {
        assert_eq!(batch[0]["expected_bytes"], 3072);
        assert_eq!(batch[0]["oracle_bytes"], 3072);
        assert_eq!(
            batch[0]["sum"].as_f64().unwrap(),
            ((i + 1) * 768) as f64,
            "batch {i} as uploaded"
        );
    }
    let written = cache.0.lock().unwrap().clone().unwrap();
    let text = String::from_utf8(written).unwrap();
    let version = s.record()["header_version"].as_i64().unwrap();
    assert!(
        text.starts_with(&format!("TRT-{version}-EntropyCalibration2\nimages: ")),
        "{text}"
    );
    assert_eq!(c["wrote_cache_bytes"], text.len());
    // The calibrator is attached for the build only.
    let calls = names(&s.only("config")["calls"]);
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("setInt8Calibrator"))
            .collect::<Vec<_>>(),
        ["setInt8Calibrator", "setInt8Calibrator(nullptr)"]
    );
    s.assert_clean();
}

fn calibrate_dynamic(with_calibration_profile: bool, batch: usize) -> (double::Session, Value) {
    let s = session();
    s.double.use_oracle(true);
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let shape = [batch, 3, 16, 16];
    let mut calib = calibration(ConstSource::new("images", &shape, 2), None, &shape, false);
    {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &models::dynamic(dir.path())).unwrap();
        assert_eq!(net.inputs().unwrap()[0].dims, [-1, 3, 16, 16]);
        let cfg = builder.config().unwrap();
        cfg.set_flag(Flag::Int8, true).unwrap();
        cfg.add_profile(&builder.profile(&[batch_profile(1, 2, 4)]).unwrap(), false)
            .unwrap();
        if with_calibration_profile {
            cfg.add_profile(&builder.profile(&[batch_profile(3, 3, 3)]).unwrap(), true)
                .unwrap();
        }
        let (_, summary) = builder.build(&net, &cfg, Some(&mut calib)).unwrap();
        assert_eq!(summary.unwrap().batches, 2);
    }
    drop(calib);
    let c = s.record()["builds"][0]["calibration"].clone();
    (s, c)
}

#[test]
fn dynamic_input_calibrates_at_the_calibration_profile_opt() {
    skip_on_11!("no calibrator");
    let (s, c) = calibrate_dynamic(true, 3);
    assert_eq!(c["inputs"][0]["dims"], json!([3, 3, 16, 16]));
    assert_eq!(c["inputs"][0]["from"], "calibration_profile");
    assert_eq!(c["batches"][1][0]["oracle_bytes"], 3 * 3 * 16 * 16 * 4);
    assert_eq!(
        s.only("config")["calibration_profile"]["images"]["opt"],
        json!([3, 3, 16, 16])
    );
    s.assert_clean();
}

#[test]
fn dynamic_input_without_calibration_profile_uses_the_first_profile_opt() {
    skip_on_11!("no calibrator");
    let (s, c) = calibrate_dynamic(false, 2);
    assert_eq!(c["inputs"][0]["dims"], json!([2, 3, 16, 16]));
    assert_eq!(c["inputs"][0]["from"], "first_profile");
    s.assert_clean();
}

/// The bridge uploads what its bindings say; when they are smaller than what the network
/// reads, TensorRT would read past the buffer. The oracle (the real allocation sizes) shows it.
#[test]
fn calibration_binding_smaller_than_the_input_is_caught() {
    skip_on_11!("no calibrator");
    let s = session();
    s.double.use_oracle(true);
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let small = [1, 3, 8, 8];
    let mut calib = calibration(ConstSource::new("images", &small, 2), None, &small, false);
    {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &models::tiny(dir.path())).unwrap();
        let cfg = builder.config().unwrap();
        cfg.set_flag(Flag::Int8, true).unwrap();
        let Err(e) = builder.build(&net, &cfg, Some(&mut calib)) else {
            panic!("the build read past a binding and succeeded");
        };
        assert!(matches!(e, Error::Tensorrt { .. }), "{e:?}");
    }
    drop(calib);
    let b = &s.record()["builds"][0];
    assert_eq!(b["calibration"]["batches"][0][0]["oracle_bytes"], 768);
    assert_eq!(b["calibration"]["batches"][0][0]["expected_bytes"], 3072);
    s.assert_violations(&["calibration-binding-too-small"]);
}

/// An INT8 build of `model` with `calib`; the calibration summary (builder side dropped).
fn int8_build(
    log: &trtforge::trt::Logger,
    model: &std::path::Path,
    calib: &mut CalibrationSession,
) -> trtforge::trt::bridge::CalibrationSummary {
    let builder = Builder::new(log).unwrap();
    let mut net = builder.network(false).unwrap();
    net.parse_onnx(log, model).unwrap();
    let cfg = builder.config().unwrap();
    cfg.set_flag(Flag::Int8, true).unwrap();
    builder.build(&net, &cfg, Some(calib)).unwrap().1.unwrap()
}

#[test]
fn a_calibration_cache_means_no_batches() {
    skip_on_11!("no calibrator");
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let cache = MemCache::default();
    *cache.0.lock().unwrap() = Some(b"TRT-8601-EntropyCalibration2\nimages: 3c010a14\n".to_vec());
    let mut calib = calibration(
        ConstSource::new("images", &[1, 3, 16, 16], 3),
        Some(cache),
        &[1, 3, 16, 16],
        false,
    );
    let summary = int8_build(log, &models::tiny(dir.path()), &mut calib);
    drop(calib);
    assert!(summary.cache_used);
    assert_eq!(summary.batches, 0);
    let c = &s.record()["builds"][0]["calibration"];
    assert_eq!(c["cache_used"], true);
    assert_eq!(
        names(&c["sequence"]),
        ["getAlgorithm", "readCalibrationCache"]
    );
    assert!(
        c.get("batch_size").is_none(),
        "getBatchSize after a cache: {c:#}"
    );
    s.assert_clean();
}

#[test]
fn an_explicitly_quantized_network_does_not_call_the_calibrator() {
    skip_on_11!("no calibrator");
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let mut calib = calibration(
        ConstSource::new("images", &[1, 3, 16, 16], 3),
        None,
        &[1, 3, 16, 16],
        false,
    );
    let summary = int8_build(log, &models::qdq(dir.path()), &mut calib);
    drop(calib);
    assert_eq!((summary.batches, summary.cache_used), (0, false));
    let b = &s.record()["builds"][0];
    assert_eq!(b["explicit_quantization"], true);
    assert_eq!(b["calibrator_ignored"], true);
    assert!(b.get("calibration").is_none());
    s.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// rule 4: DLA

fn dla_config(cfg: &Config, core: u32) {
    cfg.set_device(Some(core)).unwrap();
    fp16(cfg);
    cfg.set_flag(Flag::GpuFallback, true).unwrap();
    cfg.set_profiling_verbosity(ProfilingVerbosity::Detailed)
        .unwrap();
}

#[test]
fn dla_engine_needs_the_runtime_dla_core_before_deserialization() {
    let s = session();
    s.double.set_dla_cores(2);
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let plan = build_with(&models::tiny(dir.path()), |b, _, cfg| {
        assert_eq!(b.nb_dla_cores().unwrap(), 2);
        dla_config(cfg, 1);
    })
    .unwrap();
    assert_eq!(plan_json(&plan)["dla_core"], 1);
    let c = s.only("config");
    assert_eq!(
        (c["device_type"].as_str(), c["dla_core"].as_i64()),
        (Some("kDLA"), Some(1))
    );

    let rt = TrtRuntime::new(log).unwrap();
    assert_eq!(rt.nb_dla_cores().unwrap(), 2);
    rt.set_dla_core(1).unwrap();
    let engine = rt.deserialize(&plan).unwrap();
    let info: Value = serde_json::from_str(&engine.layer_info_json().unwrap()).unwrap();
    assert_eq!(
        info["Layers"],
        json!([{"Name": "{ForeignNode[stem...head_act]}", "LayerType": "ForeignNode", "Device": "DLA"}])
    );
    drop(engine);
    drop(rt);
    s.assert_clean();

    let rt = TrtRuntime::new(log).unwrap();
    assert!(
        rt.deserialize(&plan).is_err(),
        "a DLA engine without IRuntime::setDLACore"
    );
    drop(rt);
    s.assert_violations(&["dla-engine-without-runtime-dla-core"]);
}

#[test]
fn dla_core_out_of_range_is_caught() {
    let s = session();
    s.double.set_dla_cores(1);
    let dir = tempfile::tempdir().unwrap();
    assert!(build_with(&models::tiny(dir.path()), |_, _, cfg| dla_config(cfg, 1)).is_err());
    s.assert_violations(&["dla-core-out-of-range"]);
}

#[test]
fn dla_without_fp16_or_int8_is_caught() {
    skip_on_11!("no kFP16/kINT8 flags: precision comes from the model");
    let s = session();
    s.double.set_dla_cores(1);
    let dir = tempfile::tempdir().unwrap();
    let r = build_with(&models::tiny(dir.path()), |_, _, cfg| {
        cfg.set_device(Some(0)).unwrap();
        cfg.set_flag(Flag::GpuFallback, true).unwrap();
    });
    assert!(r.is_err());
    s.assert_violations(&["dla-fp32"]);
}

#[test]
fn dla_without_gpu_fallback_needs_direct_io() {
    let s = session();
    s.double.set_dla_cores(1);
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let no_fallback = |cfg: &Config| {
        cfg.set_device(Some(0)).unwrap();
        fp16(cfg);
    };
    assert!(build_with(&model, |_, _, cfg| no_fallback(cfg)).is_err());
    s.assert_violations(&["dla-without-direct-io"]);
    s.double.reset();
    s.double.set_dla_cores(1);
    // trtexec's way: kDIRECT_IO when there is no GPU fallback.
    build_with(&model, |_, _, cfg| {
        no_fallback(cfg);
        cfg.set_flag(Flag::DirectIo, true).unwrap();
    })
    .unwrap();
    s.assert_clean();
}

#[test]
fn dla_with_a_minmax_calibrator_is_caught() {
    skip_on_11!("no calibrator");
    let s = session();
    s.double.set_dla_cores(1);
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let mut calib = calibration(
        ConstSource::new("images", &[1, 3, 16, 16], 1),
        None,
        &[1, 3, 16, 16],
        true,
    );
    {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &models::tiny(dir.path())).unwrap();
        let cfg = builder.config().unwrap();
        cfg.set_device(Some(0)).unwrap();
        cfg.set_flag(Flag::Int8, true).unwrap();
        cfg.set_flag(Flag::GpuFallback, true).unwrap();
        assert!(builder.build(&net, &cfg, Some(&mut calib)).is_err());
    }
    drop(calib);
    s.assert_violations(&["dla-minmax-calibrator"]);
}

// ---------------------------------------------------------------------------------------------
// rule 5: timing caches

fn cache_entries(bytes: &[u8]) -> Vec<String> {
    assert!(bytes.starts_with(TIMING_CACHE_MAGIC));
    let v: Value = serde_json::from_slice(&bytes[TIMING_CACHE_MAGIC.len()..]).unwrap();
    names(&v["entries"])
}

/// Build with a cache made from `load` (None: a new one), then merge it into `file` (the cache
/// file as it is after the build; None: no file yet), as the build pipeline does.
fn cached_build(
    model: &std::path::Path,
    load: Option<&[u8]>,
    file: Option<&[u8]>,
    sparse: bool,
) -> trtforge::Result<Vec<u8>> {
    let log = logger();
    let builder = Builder::new(log)?;
    let mut net = builder.network(false)?;
    net.parse_onnx(log, model)?;
    let cfg = builder.config()?;
    cfg.set_flag(Flag::SparseWeights, sparse)?;
    cfg.set_timing_cache(load)?;
    builder.build(&net, &cfg, None)?;
    let (bytes, combined) = cfg.merge_timing_cache(file)?;
    // Our entries go in unless the file is another device's (it then stays as it is).
    if !combined {
        assert_eq!(Some(&bytes[..]), file, "a refused combine keeps the file");
    }
    Ok(bytes)
}

#[test]
fn timing_caches_round_trip_and_merge_entries() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    let first = cached_build(&model, None, None, false).unwrap();
    assert_eq!(cache_entries(&first).len(), 1);
    let second = cached_build(&model, Some(&first), Some(&first), true).unwrap();
    let entries = cache_entries(&second);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(cache_entries(&first).iter().all(|e| entries.contains(e)));
    for c in s.objects("config") {
        assert_eq!(
            c["timing_cache"]["ignore_mismatch"], true,
            "trtexec's ignoreMismatch"
        );
        assert_eq!(c["timing_cache"]["mismatch"], false);
    }
    let combines: Vec<Value> = s
        .objects("timing_cache")
        .iter()
        .filter_map(|t| t.get("combines").cloned())
        .collect();
    assert_eq!(combines.len(), 2);
    for c in combines {
        assert_eq!(c[0]["ignore_mismatch"], false);
        assert_eq!(c[0]["ok"], true);
    }
    s.assert_clean();
}

#[test]
fn a_timing_cache_not_made_by_tensorrt_is_refused_as_corrupt() {
    let s = session();
    let log = logger();
    let builder = Builder::new(log).unwrap();
    let cfg = builder.config().unwrap();
    let e = cfg
        .set_timing_cache(Some(b"not a timing cache"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("corrupt"), "{e}");
    drop(cfg);
    drop(builder);
    assert_eq!(s.only("config")["timing_cache_rejected"], true);
    s.assert_clean();
}

/// A cache from another device is used (ignoreMismatch = true, as trtexec) and merged back.
#[test]
fn a_timing_cache_from_another_device_is_used_with_ignore_mismatch() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    s.double.set_device_name("orin-a");
    let file = cached_build(&model, None, None, false).unwrap();
    s.double.set_device_name("orin-b");
    let merged = cached_build(&model, Some(&file), Some(&file), true).unwrap();
    assert_eq!(cache_entries(&merged).len(), 2);
    let last = s.objects("config").pop().unwrap();
    assert_eq!(last["timing_cache"]["mismatch"], true);
    assert_eq!(last["timing_cache"]["ignore_mismatch"], true);
    s.assert_clean();
}

/// Another device wrote the cache file during this build: combine (ignoreMismatch = false, as
/// trtexec's updateTimingCacheFile) refuses across devices, and the file is kept as it is,
/// without this build's entries, instead of failing a build that succeeded.
#[test]
fn merging_into_a_cache_file_of_another_device_keeps_the_file() {
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    s.double.set_device_name("orin-a");
    let theirs = cached_build(&model, None, None, false).unwrap();
    s.double.set_device_name("orin-b");
    let kept = cached_build(&model, None, Some(&theirs), false).unwrap();
    assert_eq!(kept, theirs);
    let refused: Vec<Value> = s
        .objects("timing_cache")
        .iter()
        .filter_map(|t| t.get("combines").map(|c| c[0].clone()))
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["ignore_mismatch"], false);
    s.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// rule 6: nothing of the builder alive at deserialization

#[test]
fn deserializing_while_builder_objects_live_is_caught() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::new(log).unwrap();
    let mut net = builder.network(false).unwrap();
    net.parse_onnx(log, &models::tiny(dir.path())).unwrap();
    let cfg = builder.config().unwrap();
    fp16(&cfg);
    let plan = builder
        .build(&net, &cfg, None)
        .unwrap()
        .0
        .as_slice()
        .to_vec();
    drop(net);
    drop(cfg);
    let rt = TrtRuntime::new(log).unwrap();
    assert!(rt.deserialize(&plan).is_err());
    drop(builder);
    rt.deserialize(&plan).unwrap();
    drop(rt);
    s.assert_violations(&["builder-alive-at-deserialize"]);
}

// ---------------------------------------------------------------------------------------------
// rule 7: what TensorRT 11 removed, and layer precisions before it

#[test]
fn tensorrt_11_refuses_removed_settings_without_calling_tensorrt() {
    if !trt11() {
        eprintln!("only for TensorRT 11 headers");
        return;
    }
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    {
        let builder = Builder::new(log).unwrap();
        let mut net = builder.network(false).unwrap();
        net.parse_onnx(log, &models::dynamic(dir.path())).unwrap();
        let cfg = builder.config().unwrap();
        for f in [
            Flag::Fp16,
            Flag::Int8,
            Flag::ObeyPrecisionConstraints,
            Flag::PreferPrecisionConstraints,
        ] {
            unavailable(cfg.set_flag(f, true));
        }
        unavailable(net.set_layer_precision(0, DataType::Half));
        let p = builder.profile(&[batch_profile(1, 2, 4)]).unwrap();
        unavailable(cfg.add_profile(&p, true));
        let state = CalibratorState::new(
            Box::new(ConstSource::new("images", &[1, 3, 16, 16], 1)),
            None,
            Box::new(HostBindings::default()),
            f32_binding("images", &[1, 3, 16, 16]),
        )
        .unwrap();
        unavailable(CalibrationSession::new(state, false).map(|_| ()));
    }
    let c = s.only("config");
    assert_eq!(
        c["calls"],
        Value::Null,
        "nothing reached TensorRT: {:#}",
        c["calls"]
    );
    let n = s.only("network");
    assert_eq!(
        n["strongly_typed"], true,
        "TensorRT 11 networks are always strongly typed"
    );
    assert!(n.get("precisions").is_none());
    s.assert_clean();
}

#[test]
fn layer_precision_pins_reach_the_layers() {
    skip_on_11!("no ILayer::setPrecision");
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let plan = build_with(&models::tiny(dir.path()), |_, net, cfg| {
        fp16(cfg);
        cfg.set_flag(Flag::ObeyPrecisionConstraints, true).unwrap();
        net.set_layer_precision(4, DataType::Float).unwrap();
    })
    .unwrap();
    let n = s.only("network");
    assert_eq!(n["precisions"], json!({"head": "kFLOAT"}));
    assert_eq!(n["output_types"], json!({"head": ["kFLOAT"]}));
    let layers = plan_json(&plan)["layers"].clone();
    assert_eq!(layers[4]["precision"], "kFLOAT");
    assert_eq!(layers[0]["precision"], "kHALF");
    s.assert_clean();
}

#[test]
fn strongly_typed_networks_refuse_precision_pins() {
    if trtforge::trt::header_version().major != 10 {
        eprintln!("only for TensorRT 10 headers (strongly typed by flag)");
        return;
    }
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::new(log).unwrap();
    let mut net = builder.network(true).unwrap();
    net.parse_onnx(log, &models::tiny(dir.path())).unwrap();
    net.set_layer_precision(0, DataType::Half).unwrap();
    drop(net);
    drop(builder);
    assert_eq!(s.only("network")["strongly_typed"], true);
    s.assert_violations(&["precision-on-strongly-typed", "precision-on-strongly-typed"]);
}

// ---------------------------------------------------------------------------------------------
// rule 8: plans round-trip and are not engines

#[test]
fn bytes_without_the_plan_magic_are_refused() {
    let s = session();
    let log = logger();
    let rt = TrtRuntime::new(log).unwrap();
    assert!(rt.deserialize(b"\x00\x01 definitely not a plan").is_err());
    let mut forged = PLAN_MAGIC.to_vec();
    forged.extend_from_slice(b"{not json");
    assert!(rt.deserialize(&forged).is_err());
    drop(rt);
    let d = s.only("runtime")["deserialize"].clone();
    assert_eq!(d[0]["ok"], false);
    assert!(d[0]["error"].as_str().unwrap().contains("no magic"));
    assert_eq!(d[1]["ok"], false);
    s.assert_clean();
}

#[test]
fn inspector_json_follows_the_profiling_verbosity() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let model = models::tiny(dir.path());
    for (verbosity, want) in [
        (
            None,
            json!([
                "stem",
                "stem_act",
                "pruned",
                "pruned_act",
                "head",
                "head_act"
            ]),
        ),
        (Some(ProfilingVerbosity::None), json!([])),
    ] {
        let plan = build_with(&model, |_, _, cfg| {
            fp16(cfg);
            if let Some(v) = verbosity {
                cfg.set_profiling_verbosity(v).unwrap();
            }
        })
        .unwrap();
        let rt = TrtRuntime::new(log).unwrap();
        let engine: Engine<'_> = rt.deserialize(&plan).unwrap();
        let info: Value = serde_json::from_str(&engine.layer_info_json().unwrap()).unwrap();
        assert_eq!(info["Layers"], want, "{verbosity:?}");
    }
    s.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// rule 9: execution

#[test]
fn enqueue_needs_shapes_within_the_profile_and_every_address() {
    let s = session();
    let log = logger();
    let dir = tempfile::tempdir().unwrap();
    let plan = build_with(&models::dynamic(dir.path()), |b, _, cfg| {
        fp16(cfg);
        cfg.add_profile(&b.profile(&[batch_profile(1, 2, 4)]).unwrap(), false)
            .unwrap();
    })
    .unwrap();
    assert_eq!(
        s.only("config")["profiles"],
        json!([{"images": {"min": [1, 3, 16, 16], "opt": [2, 3, 16, 16], "max": [4, 3, 16, 16]}}])
    );
    let rt = TrtRuntime::new(log).unwrap();
    let engine = rt.deserialize(&plan).unwrap();
    assert_eq!(engine.nb_profiles().unwrap(), 1);
    assert_eq!(
        engine
            .profile_shape("images", 0, ProfileShape::Min)
            .unwrap(),
        [1, 3, 16, 16]
    );
    assert_eq!(
        engine
            .profile_shape("images", 0, ProfileShape::Max)
            .unwrap(),
        [4, 3, 16, 16]
    );
    let ctx = engine.context().unwrap();
    let mut buf = [0u64; 4];
    let p: *mut c_void = buf.as_mut_ptr().cast();
    let stream = std::ptr::dangling_mut::<c_void>();
    // SAFETY: the double never touches tensor memory or the stream.
    unsafe {
        assert!(ctx.enqueue(stream).is_err(), "no shape, no address");
        assert!(
            ctx.set_input_shape("images", &[8, 3, 16, 16]).is_err(),
            "batch 8 > max 4"
        );
        ctx.set_input_shape("images", &[3, 3, 16, 16]).unwrap();
        assert_eq!(ctx.tensor_shape("scores").unwrap(), [3, 45, 4, 4]);
        ctx.set_tensor_address("images", p).unwrap();
        assert!(ctx.enqueue(stream).is_err(), "no output address");
        ctx.set_tensor_address("scores", p).unwrap();
        ctx.enqueue(stream).unwrap();
    }
    drop(ctx);
    drop(engine);
    drop(rt);
    let oks: Vec<bool> = s.only("context")["enqueues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [false, false, true]);
    s.assert_violations(&[
        "enqueue-input-shape-unset",
        "enqueue-missing-address",
        "enqueue-missing-address",
        "input-shape-outside-profile",
        "enqueue-missing-address",
    ]);
}

/// Parents outlive what they made; the safe handles make the wrong order impossible (they
/// borrow their parents), so it is written with the raw bindings.
#[test]
fn a_runtime_destroyed_before_its_engine_is_caught() {
    use trtforge::trt::sys;
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let plan = build_with(&models::tiny(dir.path()), |_, _, cfg| fp16(cfg)).unwrap();
    s.assert_clean();
    // SAFETY: every out-pointer is valid; handles are destroyed once (the order is the point).
    unsafe {
        let mut log = std::ptr::null_mut();
        assert_eq!(
            sys::trtforge_logger_create(None, std::ptr::null_mut(), &mut log),
            0
        );
        let mut rt = std::ptr::null_mut();
        assert_eq!(sys::trtforge_runtime_create(log, &mut rt), 0);
        let mut engine = std::ptr::null_mut();
        assert_eq!(
            sys::trtforge_engine_deserialize(rt, plan.as_ptr().cast(), plan.len(), &mut engine),
            0
        );
        sys::trtforge_runtime_destroy(rt);
        sys::trtforge_engine_destroy(engine);
        sys::trtforge_logger_destroy(log);
    }
    s.assert_violations(&["parent-destroyed-first"]);
}
