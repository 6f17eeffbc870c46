// Loading TensorRT at run time, as trtexec does (samples/trtexec/trtexec.cpp: initNvinfer,
// initNvonnxparser, the plugin library's initLibNvInferPlugins): dlopen libnvinfer,
// libnvonnxparser and libnvinfer_plugin, resolve the five C entry points every TensorRT object
// comes from, register the standard plugins once. Building trtforge therefore needs only the
// headers, and a missing or mismatched library is a clear error before any TensorRT call.
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

#include <dlfcn.h>

#include <mutex>

namespace {

std::mutex g_mutex;
trtforge::Entry g_entry;
bool g_loaded = false;

std::string default_name(const char* lib) {
    return std::string("lib") + lib + ".so." + std::to_string(NV_TENSORRT_MAJOR);
}

// dlopen `path` (or the default name); on failure append what was tried to `why`.
void* open(const char* path, const char* lib, std::string& why) {
    std::string name = path && *path ? std::string(path) : default_name(lib);
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = dlerror();
        why += (why.empty() ? "" : "; ") + name + " (" + (e ? e : "not found") + ")";
    }
    return h;
}

template <class F>
bool symbol(void* lib, const char* name, F& out, std::string& why) {
    dlerror();
    void* s = lib ? dlsym(lib, name) : nullptr;
    if (!s) {
        why += (why.empty() ? "" : "; ") + std::string("no symbol ") + name;
        return false;
    }
    out = reinterpret_cast<F>(s);
    return true;
}

} // namespace

trtforge::Entry const* trtforge::entry(const char* what) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_loaded) {
        fail(what, "TensorRT is not loaded (trtforge_library_load was not called or failed)", TRTFORGE_UNAVAILABLE);
        return nullptr;
    }
    return &g_entry;
}

extern "C" int32_t trtforge_library_load(const char* nvinfer, const char* onnxparser, const char* plugins,
                                         trtforge_logger* logger) {
    return trtforge::wall("trtforge_library_load", [&]() -> int32_t {
        REQUIRE(logger, "trtforge_library_load");
        std::lock_guard<std::mutex> lock(g_mutex);
        if (g_loaded) return TRTFORGE_OK;
        std::string why;
        void* infer = open(nvinfer, "nvinfer", why);
        void* parser = open(onnxparser, "nvonnxparser", why);
        void* plugin = open(plugins, "nvinfer_plugin", why);
        trtforge::Entry e;
        bool ok = infer && parser && plugin;
        ok = symbol(infer, "createInferBuilder_INTERNAL", e.create_builder, why) && ok;
        ok = symbol(infer, "createInferRuntime_INTERNAL", e.create_runtime, why) && ok;
        ok = symbol(infer, "getInferLibVersion", e.lib_version, why) && ok;
        ok = symbol(parser, "createNvOnnxParser_INTERNAL", e.create_parser, why) && ok;
        ok = symbol(plugin, "initLibNvInferPlugins", e.init_plugins, why) && ok;
        if (!ok) {
            // Nothing was called in them yet: unloading is safe.
            for (void* h : {infer, parser, plugin}) {
                if (h) dlclose(h);
            }
            return trtforge::fail("trtforge_library_load", why, TRTFORGE_UNAVAILABLE);
        }
        // Before any parse or deserialization, so EfficientNMS_TRT and friends resolve (the
        // 10.x parser no longer registers them). The libraries stay loaded for the process.
        if (!e.init_plugins(static_cast<nvinfer1::ILogger*>(logger), "")) {
            return trtforge::fail("trtforge_library_load", "initLibNvInferPlugins failed", TRTFORGE_UNAVAILABLE);
        }
        g_entry = e;
        g_loaded = true;
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_library_version(void) {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_loaded ? g_entry.lib_version() : -1;
}
