// Internal C++ declarations shared by the shim's translation units (not part of the C ABI).
#pragma once
#include <string>

#include "trtforge_shim.h"

namespace trtforge {
// Set the thread-local message trtforge_last_error() returns.
void set_error(std::string msg);
void clear_error();
} // namespace trtforge

#ifdef TRTFORGE_WITH_TENSORRT_TYPES
#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>

#include <memory>
#include <type_traits>

#define TRT_VERSION_AT_LEAST(maj, min) \
    (NV_TENSORRT_MAJOR > (maj) || (NV_TENSORRT_MAJOR == (maj) && NV_TENSORRT_MINOR >= (min)))

#if NV_TENSORRT_MAJOR < 11
// The TensorRT object behind a calibrator handle (TensorRT 11 has no calibrator).
nvinfer1::IInt8Calibrator* trtforge_calibrator_as_trt(trtforge_calibrator* calibrator);
#endif

// ---- handle types (the C ABI's opaque structs) ----

struct trtforge_logger final : public nvinfer1::ILogger {
    trtforge_log_fn fn;
    void* user;
    trtforge_logger(trtforge_log_fn f, void* u) : fn(f), user(u) {}
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
        try {
            if (fn) {
                fn(user, static_cast<int32_t>(severity), msg ? msg : "");
            }
        } catch (...) {
        }
    }
};

struct trtforge_builder {
    std::unique_ptr<nvinfer1::IBuilder> b;
};
// Declaration order is destruction order reversed: the parser (which holds the weights the
// network refers to) goes first, then the network (samples/common/sampleEngines.h).
struct trtforge_network {
    std::unique_ptr<nvinfer1::INetworkDefinition> n;
    std::unique_ptr<nvonnxparser::IParser> parser;
};
struct trtforge_config {
    std::unique_ptr<nvinfer1::IBuilderConfig> c;
    std::unique_ptr<nvinfer1::ITimingCache> timing;
};
struct trtforge_profile {
    nvinfer1::IOptimizationProfile* p; // owned by the builder
};
struct trtforge_bytes {
    std::unique_ptr<nvinfer1::IHostMemory> mem; // from TensorRT, or
    std::string owned;                          // our own bytes
};
struct trtforge_runtime {
    std::unique_ptr<nvinfer1::IRuntime> r;
};
struct trtforge_engine {
    std::unique_ptr<nvinfer1::ICudaEngine> e;
};
struct trtforge_context {
    std::unique_ptr<nvinfer1::IExecutionContext> c;
};

namespace trtforge {

// The entry points of the loaded libraries (sys/library.cpp); null until loaded.
struct Entry {
    void* (*create_builder)(void* logger, int32_t version) = nullptr;
    void* (*create_runtime)(void* logger, int32_t version) = nullptr;
    void* (*create_parser)(void* network, void* logger, int32_t version) = nullptr;
    int32_t (*lib_version)() = nullptr;
    bool (*init_plugins)(void* logger, char const* ns) = nullptr;
};
// The loaded entry points, or nullptr (with the last error set) before a successful load.
Entry const* entry(const char* what);

// Every C entry point's body runs inside this wall: no exception leaves the library.
template <class F>
int32_t wall(const char* what, F&& f) noexcept {
    try {
        clear_error();
        return f();
    } catch (const std::exception& e) {
        set_error(std::string(what) + ": " + e.what());
    } catch (...) {
        set_error(std::string(what) + ": unknown C++ exception");
    }
    return TRTFORGE_ERROR;
}

inline int32_t fail(const char* what, const std::string& why, int32_t status = TRTFORGE_ERROR) {
    set_error(std::string(what) + ": " + why);
    return status;
}

inline int32_t unsupported(const char* what, const std::string& why) {
    return fail(what, why, TRTFORGE_UNSUPPORTED);
}

inline void copy_dims(const nvinfer1::Dims& d, int32_t* nb, int64_t out[8]) {
    *nb = d.nbDims;
    for (int32_t i = 0; i < 8; ++i) {
        out[i] = i < d.nbDims ? static_cast<int64_t>(d.d[i]) : 0;
    }
}

inline bool make_dims(int32_t nb, const int64_t* v, nvinfer1::Dims& d) {
    if (nb < 0 || nb > nvinfer1::Dims::MAX_DIMS || (nb > 0 && !v)) return false;
    d.nbDims = nb;
    for (int32_t i = 0; i < nb; ++i) {
        d.d[i] = static_cast<std::remove_reference_t<decltype(d.d[0])>>(v[i]);
    }
    return true;
}

} // namespace trtforge

#define REQUIRE(cond, what)                                               \
    do {                                                                  \
        if (!(cond)) return ::trtforge::fail(what, "null argument: " #cond); \
    } while (0)

#endif
