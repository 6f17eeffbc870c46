// The C entry points the shim resolves (sys/library.cpp), declared exactly as the headers in
// use declare them (the generator says whether each is noexcept).
#include "double.hpp"

using namespace trtforge_double;

namespace {

// A factory called with the version of other headers than the double's is refused, as
// TensorRT refuses a mismatched library.
bool version_ok(const char* what, int32_t version, int32_t want) {
    if (version == want) return true;
    violation("version-mismatch", std::string(what) + " called for version " + std::to_string(version) +
                                      ", the double implements " + std::to_string(want));
    return false;
}

} // namespace

extern "C" int32_t getInferLibVersion() TRTFORGE_DOUBLE_NOEXCEPT_getInferLibVersion {
    return NV_TENSORRT_VERSION;
}

extern "C" void* createInferBuilder_INTERNAL(void* logger, int32_t version)
    TRTFORGE_DOUBLE_NOEXCEPT_createInferBuilder_INTERNAL {
    Lock lock(state().mu);
    if (!version_ok("createInferBuilder", version, NV_TENSORRT_VERSION)) return nullptr;
    auto* l = static_cast<nvinfer1::ILogger*>(logger);
    state().logger = l;
    nvinfer1::IBuilder* b = new Public<nvinfer1::IBuilder, Builder>(l);
    return b;
}

extern "C" void* createInferRuntime_INTERNAL(void* logger, int32_t version)
    TRTFORGE_DOUBLE_NOEXCEPT_createInferRuntime_INTERNAL {
    Lock lock(state().mu);
    if (!version_ok("createInferRuntime", version, NV_TENSORRT_VERSION)) return nullptr;
    auto* l = static_cast<nvinfer1::ILogger*>(logger);
    state().logger = l;
    nvinfer1::IRuntime* r = new Public<nvinfer1::IRuntime, Runtime>(l);
    return r;
}

extern "C" void* createNvOnnxParser_INTERNAL(void* network, void* logger, int version)
    TRTFORGE_DOUBLE_NOEXCEPT_createNvOnnxParser_INTERNAL {
    Lock lock(state().mu);
    if (!version_ok("createNvOnnxParser", version, NV_ONNX_PARSER_VERSION)) return nullptr;
    if (logger) state().logger = static_cast<nvinfer1::ILogger*>(logger);
    auto* pub = static_cast<nvinfer1::INetworkDefinition*>(network);
    Network* n = lookup<Network>(pub);
    if (!n) {
        violation("foreign-object", "createNvOnnxParser with a network the double did not make");
        return nullptr;
    }
    nvonnxparser::IParser* p = new Parser(pub, n->id());
    return p;
}

// libnvinfer_plugin's registration: before any parse or deserialization (the 10.x parser no
// longer registers the standard plugins itself).
extern "C" bool initLibNvInferPlugins(void* logger, char const* libNamespace) {
    Lock lock(state().mu);
    if (logger) state().logger = static_cast<nvinfer1::ILogger*>(logger);
    state().plugins = true;
    ++state().plugin_calls;
    Json e = Json::object();
    e["op"] = "initLibNvInferPlugins";
    e["namespace"] = libNamespace ? libNamespace : "";
    event(e);
    return true;
}
