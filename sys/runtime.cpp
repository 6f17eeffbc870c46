// The runtime, deserialized engines, the engine inspector and execution contexts (the
// enqueueV3 path: shapes and addresses by tensor name, then one enqueue on a CUDA stream).
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

using namespace nvinfer1;
using trtforge::fail;
using trtforge::wall;

extern "C" int32_t trtforge_runtime_create(trtforge_logger* logger, trtforge_runtime** out) {
    return wall("trtforge_runtime_create", [&]() -> int32_t {
        REQUIRE(logger && out, "trtforge_runtime_create");
        auto* e = trtforge::entry("trtforge_runtime_create");
        if (!e) return TRTFORGE_UNAVAILABLE;
        std::unique_ptr<IRuntime> r(
            static_cast<IRuntime*>(e->create_runtime(static_cast<ILogger*>(logger), NV_TENSORRT_VERSION)));
        if (!r) return fail("trtforge_runtime_create", "createInferRuntime failed");
        *out = new trtforge_runtime{std::move(r)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_runtime_destroy(trtforge_runtime* runtime) {
    delete runtime;
}

extern "C" int32_t trtforge_runtime_nb_dla_cores(trtforge_runtime* runtime, int32_t* out) {
    return wall("trtforge_runtime_nb_dla_cores", [&]() -> int32_t {
        REQUIRE(runtime && out, "trtforge_runtime_nb_dla_cores");
        *out = runtime->r->getNbDLACores();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_runtime_set_dla_core(trtforge_runtime* runtime, int32_t core) {
    return wall("trtforge_runtime_set_dla_core", [&]() -> int32_t {
        REQUIRE(runtime, "trtforge_runtime_set_dla_core");
        int32_t n = runtime->r->getNbDLACores();
        if (core < 0 || core >= n) {
            return fail("trtforge_runtime_set_dla_core",
                        "DLA core " + std::to_string(core) + " does not exist here (" + std::to_string(n) + " cores)");
        }
        runtime->r->setDLACore(core);
        return TRTFORGE_OK;
    });
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
        trtforge::copy_dims(engine->e->getTensorShape(n), nb_dims, dims);
        *dtype = static_cast<int32_t>(engine->e->getTensorDataType(n));
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_engine_nb_profiles(trtforge_engine* engine, int32_t* out) {
    return wall("trtforge_engine_nb_profiles", [&]() -> int32_t {
        REQUIRE(engine && out, "trtforge_engine_nb_profiles");
        *out = engine->e->getNbOptimizationProfiles();
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_engine_profile_shape(trtforge_engine* engine, const char* input, int32_t profile,
                                                 int32_t selector, int32_t* nb_dims, int64_t dims[8]) {
    return wall("trtforge_engine_profile_shape", [&]() -> int32_t {
        REQUIRE(engine && input && nb_dims && dims, "trtforge_engine_profile_shape");
        if (profile < 0 || profile >= engine->e->getNbOptimizationProfiles() || selector < 0 || selector > 2) {
            return fail("trtforge_engine_profile_shape", "profile or selector out of range");
        }
        trtforge::copy_dims(engine->e->getProfileShape(input, profile, static_cast<OptProfileSelector>(selector)),
                            nb_dims, dims);
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

// ---- execution ----

extern "C" int32_t trtforge_context_create(trtforge_engine* engine, trtforge_context** out) {
    return wall("trtforge_context_create", [&]() -> int32_t {
        REQUIRE(engine && out, "trtforge_context_create");
        std::unique_ptr<IExecutionContext> c(engine->e->createExecutionContext());
        if (!c) return fail("trtforge_context_create", "createExecutionContext failed (out of device memory?)");
        *out = new trtforge_context{std::move(c)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_context_destroy(trtforge_context* context) {
    delete context;
}

extern "C" int32_t trtforge_context_set_input_shape(trtforge_context* context, const char* name, int32_t nb_dims,
                                                    const int64_t* dims) {
    return wall("trtforge_context_set_input_shape", [&]() -> int32_t {
        REQUIRE(context && name && dims, "trtforge_context_set_input_shape");
        Dims d{};
        if (!trtforge::make_dims(nb_dims, dims, d)) return fail("trtforge_context_set_input_shape", "rank out of range");
        if (!context->c->setInputShape(name, d)) {
            return fail("trtforge_context_set_input_shape",
                        std::string("TensorRT refused the shape of input ") + name + " (outside the profile?)");
        }
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_context_tensor_shape(trtforge_context* context, const char* name, int32_t* nb_dims,
                                                 int64_t dims[8]) {
    return wall("trtforge_context_tensor_shape", [&]() -> int32_t {
        REQUIRE(context && name && nb_dims && dims, "trtforge_context_tensor_shape");
        trtforge::copy_dims(context->c->getTensorShape(name), nb_dims, dims);
        if (*nb_dims < 0) return fail("trtforge_context_tensor_shape", std::string("no tensor named ") + name);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_context_set_tensor_address(trtforge_context* context, const char* name, void* address) {
    return wall("trtforge_context_set_tensor_address", [&]() -> int32_t {
        REQUIRE(context && name && address, "trtforge_context_set_tensor_address");
        if (!context->c->setTensorAddress(name, address)) {
            return fail("trtforge_context_set_tensor_address", std::string("TensorRT refused the address of ") + name);
        }
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_context_enqueue(trtforge_context* context, void* stream) {
    return wall("trtforge_context_enqueue", [&]() -> int32_t {
        REQUIRE(context, "trtforge_context_enqueue");
        if (!context->c->enqueueV3(static_cast<cudaStream_t>(stream))) {
            return fail("trtforge_context_enqueue", "enqueueV3 failed (see the TensorRT log)");
        }
        return TRTFORGE_OK;
    });
}
