// trtforge_shim.cpp: the only file that calls into libnvinfer / libnvonnxparser.
// Every entry point is a try/catch wall: std::exception, then `...`, into the thread-local
// last error. Version differences are `#if NV_TENSORRT_MAJOR/MINOR` on NvInferVersion.h.
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#define TRT_VERSION_AT_LEAST(maj, min) \
    (NV_TENSORRT_MAJOR > (maj) || (NV_TENSORRT_MAJOR == (maj) && NV_TENSORRT_MINOR >= (min)))

using namespace nvinfer1;

// ---- handle types ----

struct trtforge_logger final : public ILogger {
    trtforge_log_fn fn;
    void* user;
    trtforge_logger(trtforge_log_fn f, void* u) : fn(f), user(u) {}
    void log(Severity severity, AsciiChar const* msg) noexcept override {
        try {
            if (fn) {
                fn(user, static_cast<int32_t>(severity), msg ? msg : "");
            }
        } catch (...) {
        }
    }
};

struct trtforge_builder {
    std::unique_ptr<IBuilder> b;
};
struct trtforge_network {
    std::unique_ptr<INetworkDefinition> n;
};
struct trtforge_parser {
    std::unique_ptr<nvonnxparser::IParser> p;
};
struct trtforge_config {
    std::unique_ptr<IBuilderConfig> c;
    std::unique_ptr<ITimingCache> timing;
};
struct trtforge_profile {
    IOptimizationProfile* p; // owned by the builder
};
struct trtforge_bytes {
    std::unique_ptr<IHostMemory> mem; // from TensorRT, or
    std::string owned;                // our own bytes
};
struct trtforge_runtime {
    std::unique_ptr<IRuntime> r;
};
struct trtforge_engine {
    std::unique_ptr<ICudaEngine> e;
};

namespace {

template <class F>
int32_t wall(const char* what, F&& f) noexcept {
    try {
        trtforge::clear_error();
        return f();
    } catch (const std::exception& e) {
        trtforge::set_error(std::string(what) + ": " + e.what());
    } catch (...) {
        trtforge::set_error(std::string(what) + ": unknown C++ exception");
    }
    return TRTFORGE_ERROR;
}

int32_t fail(const char* what, const std::string& why) {
    trtforge::set_error(std::string(what) + ": " + why);
    return TRTFORGE_ERROR;
}

#define REQUIRE(cond, what)                                  \
    do {                                                     \
        if (!(cond)) return fail(what, "null argument: " #cond); \
    } while (0)

void copy_dims(const Dims& d, int32_t* nb, int64_t out[8]) {
    *nb = d.nbDims;
    for (int32_t i = 0; i < 8; ++i) {
        out[i] = i < d.nbDims ? static_cast<int64_t>(d.d[i]) : 0;
    }
}

bool make_dims(int32_t nb, const int64_t* v, Dims& d) {
    if (nb < 0 || nb > Dims::MAX_DIMS) return false;
    d.nbDims = nb;
    for (int32_t i = 0; i < nb; ++i) {
        d.d[i] = static_cast<std::remove_reference_t<decltype(d.d[0])>>(v[i]);
    }
    return true;
}

} // namespace

extern "C" int32_t trtforge_header_version(void) {
    return NV_TENSORRT_VERSION;
}

extern "C" int32_t trtforge_library_version(void) {
    return getInferLibVersion();
}

// ---- logger ----

extern "C" int32_t trtforge_logger_create(trtforge_log_fn fn, void* user, trtforge_logger** out) {
    return wall("trtforge_logger_create", [&]() -> int32_t {
        REQUIRE(out, "trtforge_logger_create");
        *out = new trtforge_logger(fn, user);
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_logger_destroy(trtforge_logger* logger) {
    delete logger;
}

// ---- builder, network ----

extern "C" int32_t trtforge_builder_create(trtforge_logger* logger, trtforge_builder** out) {
    return wall("trtforge_builder_create", [&]() -> int32_t {
        REQUIRE(logger && out, "trtforge_builder_create");
        std::unique_ptr<IBuilder> b(createInferBuilder(*logger));
        if (!b) return fail("trtforge_builder_create", "createInferBuilder failed (is a CUDA GPU visible?)");
        *out = new trtforge_builder{std::move(b)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_builder_destroy(trtforge_builder* builder) {
    delete builder;
}

extern "C" int32_t trtforge_builder_platform(trtforge_builder* builder, int32_t* fast_fp16, int32_t* fast_int8,
                                             int32_t* nb_dla_cores) {
    return wall("trtforge_builder_platform", [&]() -> int32_t {
        REQUIRE(builder && fast_fp16 && fast_int8 && nb_dla_cores, "trtforge_builder_platform");
        *fast_fp16 = builder->b->platformHasFastFp16() ? 1 : 0;
        *fast_int8 = builder->b->platformHasFastInt8() ? 1 : 0;
        *nb_dla_cores = builder->b->getNbDLACores();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_network_create(trtforge_builder* builder, int32_t strongly_typed,
                                           trtforge_network** out) {
    return wall("trtforge_network_create", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_network_create");
        NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 10
        flags |= 1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
        if (strongly_typed) {
            trtforge::set_error("trtforge_network_create: strongly typed networks need TensorRT 10 or newer");
            return TRTFORGE_UNSUPPORTED;
        }
#else
        if (strongly_typed) {
            flags |= 1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
        }
#endif
        std::unique_ptr<INetworkDefinition> n(builder->b->createNetworkV2(flags));
        if (!n) return fail("trtforge_network_create", "createNetworkV2 failed");
        *out = new trtforge_network{std::move(n)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_network_destroy(trtforge_network* network) {
    delete network;
}

extern "C" int32_t trtforge_network_nb_inputs(trtforge_network* network, int32_t* out) {
    return wall("trtforge_network_nb_inputs", [&]() -> int32_t {
        REQUIRE(network && out, "trtforge_network_nb_inputs");
        *out = network->n->getNbInputs();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_network_nb_outputs(trtforge_network* network, int32_t* out) {
    return wall("trtforge_network_nb_outputs", [&]() -> int32_t {
        REQUIRE(network && out, "trtforge_network_nb_outputs");
        *out = network->n->getNbOutputs();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_network_nb_layers(trtforge_network* network, int32_t* out) {
    return wall("trtforge_network_nb_layers", [&]() -> int32_t {
        REQUIRE(network && out, "trtforge_network_nb_layers");
        *out = network->n->getNbLayers();
        return TRTFORGE_OK;
    });
}

static int32_t describe(ITensor* t, const char* what, const char** name, int32_t* nb_dims, int64_t dims[8],
                        int32_t* dtype) {
    if (!t) return fail(what, "index out of range");
    *name = t->getName();
    copy_dims(t->getDimensions(), nb_dims, dims);
    *dtype = static_cast<int32_t>(t->getType());
    return TRTFORGE_OK;
}

extern "C" int32_t trtforge_network_input(trtforge_network* network, int32_t index, const char** name,
                                          int32_t* nb_dims, int64_t dims[8], int32_t* dtype) {
    return wall("trtforge_network_input", [&]() -> int32_t {
        REQUIRE(network && name && nb_dims && dims && dtype, "trtforge_network_input");
        if (index < 0 || index >= network->n->getNbInputs()) return fail("trtforge_network_input", "index out of range");
        return describe(network->n->getInput(index), "trtforge_network_input", name, nb_dims, dims, dtype);
    });
}

extern "C" int32_t trtforge_network_output(trtforge_network* network, int32_t index, const char** name,
                                           int32_t* nb_dims, int64_t dims[8], int32_t* dtype) {
    return wall("trtforge_network_output", [&]() -> int32_t {
        REQUIRE(network && name && nb_dims && dims && dtype, "trtforge_network_output");
        if (index < 0 || index >= network->n->getNbOutputs()) return fail("trtforge_network_output", "index out of range");
        return describe(network->n->getOutput(index), "trtforge_network_output", name, nb_dims, dims, dtype);
    });
}

extern "C" int32_t trtforge_network_layer_name(trtforge_network* network, int32_t index, const char** name) {
    return wall("trtforge_network_layer_name", [&]() -> int32_t {
        REQUIRE(network && name, "trtforge_network_layer_name");
        if (index < 0 || index >= network->n->getNbLayers()) return fail("trtforge_network_layer_name", "index out of range");
        *name = network->n->getLayer(index)->getName();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_network_set_layer_precision(trtforge_network* network, int32_t index, int32_t dtype) {
    return wall("trtforge_network_set_layer_precision", [&]() -> int32_t {
        REQUIRE(network, "trtforge_network_set_layer_precision");
        if (index < 0 || index >= network->n->getNbLayers()) {
            return fail("trtforge_network_set_layer_precision", "index out of range");
        }
        ILayer* layer = network->n->getLayer(index);
        auto t = static_cast<DataType>(dtype);
        layer->setPrecision(t);
        for (int32_t i = 0; i < layer->getNbOutputs(); ++i) {
            layer->setOutputType(i, t);
        }
        return TRTFORGE_OK;
    });
}

// ---- ONNX parser ----

extern "C" int32_t trtforge_parser_create(trtforge_network* network, trtforge_logger* logger,
                                          trtforge_parser** out) {
    return wall("trtforge_parser_create", [&]() -> int32_t {
        REQUIRE(network && logger && out, "trtforge_parser_create");
        std::unique_ptr<nvonnxparser::IParser> p(nvonnxparser::createParser(*network->n, *logger));
        if (!p) return fail("trtforge_parser_create", "createParser failed");
        *out = new trtforge_parser{std::move(p)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_parser_destroy(trtforge_parser* parser) {
    delete parser;
}

extern "C" int32_t trtforge_parser_parse_file(trtforge_parser* parser, const char* path, int32_t verbosity) {
    return wall("trtforge_parser_parse_file", [&]() -> int32_t {
        REQUIRE(parser && path, "trtforge_parser_parse_file");
        if (parser->p->parseFromFile(path, verbosity)) return TRTFORGE_OK;
        trtforge::set_error(std::string(path) + ": the ONNX parser reported " +
                            std::to_string(parser->p->getNbErrors()) + " error(s)");
        return TRTFORGE_PARSE_FAILED;
    });
}

extern "C" int32_t trtforge_parser_nb_errors(trtforge_parser* parser, int32_t* out) {
    return wall("trtforge_parser_nb_errors", [&]() -> int32_t {
        REQUIRE(parser && out, "trtforge_parser_nb_errors");
        *out = parser->p->getNbErrors();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_parser_error(trtforge_parser* parser, int32_t index, int32_t* node,
                                         const char** node_name, const char** desc, int32_t* code) {
    return wall("trtforge_parser_error", [&]() -> int32_t {
        REQUIRE(parser && node && node_name && desc && code, "trtforge_parser_error");
        if (index < 0 || index >= parser->p->getNbErrors()) return fail("trtforge_parser_error", "index out of range");
        const nvonnxparser::IParserError* e = parser->p->getError(index);
        *node = e->node();
#if NV_TENSORRT_MAJOR >= 10
        *node_name = e->nodeName() ? e->nodeName() : "";
#else
        *node_name = "";
#endif
        *desc = e->desc() ? e->desc() : "";
        *code = static_cast<int32_t>(e->code());
        return TRTFORGE_OK;
    });
}

// ---- builder config ----

extern "C" int32_t trtforge_config_create(trtforge_builder* builder, trtforge_config** out) {
    return wall("trtforge_config_create", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_config_create");
        std::unique_ptr<IBuilderConfig> c(builder->b->createBuilderConfig());
        if (!c) return fail("trtforge_config_create", "createBuilderConfig failed");
        *out = new trtforge_config{std::move(c), nullptr};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_config_destroy(trtforge_config* config) {
    delete config;
}

extern "C" int32_t trtforge_config_set_precision(trtforge_config* config, int32_t precision) {
    return wall("trtforge_config_set_precision", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_precision");
        IBuilderConfig& c = *config->c;
        bool fp16 = precision == TRTFORGE_PRECISION_FP16 || precision == TRTFORGE_PRECISION_BEST;
        bool int8 = precision == TRTFORGE_PRECISION_INT8 || precision == TRTFORGE_PRECISION_BEST;
        if (precision < TRTFORGE_PRECISION_FP32 || precision > TRTFORGE_PRECISION_BEST) {
            return fail("trtforge_config_set_precision", "unknown precision " + std::to_string(precision));
        }
        if (fp16) c.setFlag(BuilderFlag::kFP16);
        if (int8) {
#if NV_TENSORRT_MAJOR >= 11
            return fail("trtforge_config_set_precision",
                        "TensorRT 11 has no implicit INT8: build a Q/DQ model in a strongly typed network");
#else
            c.setFlag(BuilderFlag::kINT8);
#endif
        }
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_constraints(trtforge_config* config, int32_t constraints) {
    return wall("trtforge_config_set_constraints", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_constraints");
        if (constraints == TRTFORGE_CONSTRAINTS_OBEY) config->c->setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
        if (constraints == TRTFORGE_CONSTRAINTS_PREFER) config->c->setFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_workspace(trtforge_config* config, uint64_t bytes) {
    return wall("trtforge_config_set_workspace", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_workspace");
        config->c->setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, static_cast<size_t>(bytes));
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_dla(trtforge_config* config, int32_t core, int32_t gpu_fallback) {
    return wall("trtforge_config_set_dla", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_dla");
        if (core < 0) {
            config->c->setDefaultDeviceType(DeviceType::kGPU);
            return TRTFORGE_OK;
        }
        config->c->setDefaultDeviceType(DeviceType::kDLA);
        config->c->setDLACore(core);
        if (gpu_fallback) config->c->setFlag(BuilderFlag::kGPU_FALLBACK);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_optimization_level(trtforge_config* config, int32_t level) {
    return wall("trtforge_config_set_optimization_level", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_optimization_level");
#if TRT_VERSION_AT_LEAST(8, 6)
        config->c->setBuilderOptimizationLevel(level);
        return TRTFORGE_OK;
#else
        (void)level;
        trtforge::set_error("builder optimization levels need TensorRT 8.6 or newer");
        return TRTFORGE_UNSUPPORTED;
#endif
    });
}

extern "C" int32_t trtforge_config_set_calibrator(trtforge_config* config, trtforge_calibrator* calibrator) {
    return wall("trtforge_config_set_calibrator", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_calibrator");
#if NV_TENSORRT_MAJOR >= 11
        (void)calibrator;
        trtforge::set_error("TensorRT 11 has no calibrator: build from a Q/DQ model");
        return TRTFORGE_UNSUPPORTED;
#else
        config->c->setInt8Calibrator(trtforge_calibrator_as_trt(calibrator));
        return TRTFORGE_OK;
#endif
    });
}

extern "C" int32_t trtforge_config_set_timing_cache(trtforge_config* config, const void* data, size_t length) {
    return wall("trtforge_config_set_timing_cache", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_timing_cache");
        std::unique_ptr<ITimingCache> cache(config->c->createTimingCache(data, data ? length : 0));
        if (!cache) return fail("trtforge_config_set_timing_cache", "createTimingCache failed (corrupt cache file?)");
        // ignoreMismatch = false: a cache from another device or version is rejected.
        if (!config->c->setTimingCache(*cache, false)) {
            return fail("trtforge_config_set_timing_cache", "the timing cache was made on another device or TensorRT version");
        }
        config->timing = std::move(cache);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_serialize_timing_cache(trtforge_config* config, trtforge_bytes** out) {
    return wall("trtforge_config_serialize_timing_cache", [&]() -> int32_t {
        REQUIRE(config && out, "trtforge_config_serialize_timing_cache");
        const ITimingCache* cache = config->c->getTimingCache();
        if (!cache) return fail("trtforge_config_serialize_timing_cache", "no timing cache attached");
        std::unique_ptr<IHostMemory> mem(cache->serialize());
        if (!mem) return fail("trtforge_config_serialize_timing_cache", "serialize failed");
        *out = new trtforge_bytes{std::move(mem), {}};
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_detailed_profiling(trtforge_config* config) {
    return wall("trtforge_config_set_detailed_profiling", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_detailed_profiling");
        config->c->setProfilingVerbosity(ProfilingVerbosity::kDETAILED);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_profile_create(trtforge_builder* builder, trtforge_profile** out) {
    return wall("trtforge_profile_create", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_profile_create");
        IOptimizationProfile* p = builder->b->createOptimizationProfile();
        if (!p) return fail("trtforge_profile_create", "createOptimizationProfile failed");
        *out = new trtforge_profile{p};
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_profile_set(trtforge_profile* profile, const char* input, int32_t nb_dims,
                                        const int64_t* min, const int64_t* opt, const int64_t* max) {
    return wall("trtforge_profile_set", [&]() -> int32_t {
        REQUIRE(profile && input && min && opt && max, "trtforge_profile_set");
        Dims dmin{}, dopt{}, dmax{};
        if (!make_dims(nb_dims, min, dmin) || !make_dims(nb_dims, opt, dopt) || !make_dims(nb_dims, max, dmax)) {
            return fail("trtforge_profile_set", "rank out of range");
        }
        bool ok = profile->p->setDimensions(input, OptProfileSelector::kMIN, dmin) &&
                  profile->p->setDimensions(input, OptProfileSelector::kOPT, dopt) &&
                  profile->p->setDimensions(input, OptProfileSelector::kMAX, dmax);
        if (!ok) return fail("trtforge_profile_set", std::string("TensorRT rejected the shapes for input ") + input);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_add_profile(trtforge_config* config, trtforge_profile* profile,
                                               int32_t calibration) {
    return wall("trtforge_config_add_profile", [&]() -> int32_t {
        REQUIRE(config && profile, "trtforge_config_add_profile");
        IOptimizationProfile* p = profile->p;
        delete profile; // the wrapper only; TensorRT owns the profile
        if (config->c->addOptimizationProfile(p) < 0) {
            return fail("trtforge_config_add_profile", "invalid optimization profile (see the TensorRT log)");
        }
#if NV_TENSORRT_MAJOR < 11
        if (calibration && !config->c->setCalibrationProfile(p)) {
            return fail("trtforge_config_add_profile", "TensorRT rejected the calibration profile");
        }
#else
        (void)calibration;
#endif
        return TRTFORGE_OK;
    });
}

// ---- build ----

extern "C" int32_t trtforge_build_serialized(trtforge_builder* builder, trtforge_network* network,
                                             trtforge_config* config, trtforge_bytes** out) {
    return wall("trtforge_build_serialized", [&]() -> int32_t {
        REQUIRE(builder && network && config && out, "trtforge_build_serialized");
        std::unique_ptr<IHostMemory> mem(builder->b->buildSerializedNetwork(*network->n, *config->c));
        if (!mem || mem->size() == 0) {
            return fail("trtforge_build_serialized", "TensorRT could not build the engine (see the TensorRT log above)");
        }
        *out = new trtforge_bytes{std::move(mem), {}};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_bytes_destroy(trtforge_bytes* bytes) {
    delete bytes;
}

extern "C" const void* trtforge_bytes_data(const trtforge_bytes* bytes) {
    if (!bytes) return nullptr;
    return bytes->mem ? bytes->mem->data() : bytes->owned.data();
}

extern "C" size_t trtforge_bytes_size(const trtforge_bytes* bytes) {
    if (!bytes) return 0;
    return bytes->mem ? bytes->mem->size() : bytes->owned.size();
}

// ---- runtime, engine ----

extern "C" int32_t trtforge_runtime_create(trtforge_logger* logger, trtforge_runtime** out) {
    return wall("trtforge_runtime_create", [&]() -> int32_t {
        REQUIRE(logger && out, "trtforge_runtime_create");
        std::unique_ptr<IRuntime> r(createInferRuntime(*logger));
        if (!r) return fail("trtforge_runtime_create", "createInferRuntime failed");
        *out = new trtforge_runtime{std::move(r)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_runtime_destroy(trtforge_runtime* runtime) {
    delete runtime;
}

extern "C" int32_t trtforge_engine_deserialize(trtforge_runtime* runtime, const void* data, size_t length,
                                               trtforge_engine** out) {
    return wall("trtforge_engine_deserialize", [&]() -> int32_t {
        REQUIRE(runtime && data && out, "trtforge_engine_deserialize");
        std::unique_ptr<ICudaEngine> e(runtime->r->deserializeCudaEngine(data, length));
        if (!e) {
            return fail("trtforge_engine_deserialize",
                        "TensorRT refused the engine (other TensorRT version or GPU? see the log)");
        }
        *out = new trtforge_engine{std::move(e)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_engine_destroy(trtforge_engine* engine) {
    delete engine;
}

extern "C" int32_t trtforge_engine_nb_io(trtforge_engine* engine, int32_t* out) {
    return wall("trtforge_engine_nb_io", [&]() -> int32_t {
        REQUIRE(engine && out, "trtforge_engine_nb_io");
        *out = engine->e->getNbIOTensors();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_engine_io(trtforge_engine* engine, int32_t index, const char** name, int32_t* is_input,
                                      int32_t* nb_dims, int64_t dims[8], int32_t* dtype) {
    return wall("trtforge_engine_io", [&]() -> int32_t {
        REQUIRE(engine && name && is_input && nb_dims && dims && dtype, "trtforge_engine_io");
        if (index < 0 || index >= engine->e->getNbIOTensors()) return fail("trtforge_engine_io", "index out of range");
        const char* n = engine->e->getIOTensorName(index);
        *name = n;
        *is_input = engine->e->getTensorIOMode(n) == TensorIOMode::kINPUT ? 1 : 0;
        copy_dims(engine->e->getTensorShape(n), nb_dims, dims);
        *dtype = static_cast<int32_t>(engine->e->getTensorDataType(n));
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_engine_layer_info_json(trtforge_engine* engine, trtforge_bytes** out) {
    return wall("trtforge_engine_layer_info_json", [&]() -> int32_t {
        REQUIRE(engine && out, "trtforge_engine_layer_info_json");
        std::unique_ptr<IEngineInspector> inspector(engine->e->createEngineInspector());
        if (!inspector) return fail("trtforge_engine_layer_info_json", "createEngineInspector failed");
        const char* json = inspector->getEngineInformation(LayerInformationFormat::kJSON);
        *out = new trtforge_bytes{nullptr, json ? std::string(json) : std::string("{}")};
        return TRTFORGE_OK;
    });
}
