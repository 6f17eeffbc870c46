// Call sequences the shim's C ABI cannot express (it ties the parser's life to its network's),
// run through TensorRT's public C++ API exactly as a careless caller would, so the tests can
// check the double still catches them. Test-only, like everything here.
#include "double.hpp"

#include <cstring>

extern "C" void* createInferBuilder_INTERNAL(void* logger, int32_t version)
    TRTFORGE_DOUBLE_NOEXCEPT_createInferBuilder_INTERNAL;
extern "C" void* createNvOnnxParser_INTERNAL(void* network, void* logger, int version)
    TRTFORGE_DOUBLE_NOEXCEPT_createNvOnnxParser_INTERNAL;

namespace {

class QuietLogger final : public nvinfer1::ILogger {
public:
    void log(Severity, nvinfer1::AsciiChar const*) noexcept override {}
};

} // namespace

// Scenarios:
//  "parser-destroyed-before-build": parse, destroy the parser, then build (TensorRT still
//      refers to the parser's weights: a use after free in the real library);
//  "trtexec-order": parse, build, then destroy parser, network, config, builder (fine).
// Returns 1 when the build produced a plan, 0 when it failed, -1 for an unknown scenario or a
// setup step that failed.
extern "C" int trtforge_double_misuse(const char* scenario, const char* onnx_path) {
    static QuietLogger logger;
    bool early = scenario && std::strcmp(scenario, "parser-destroyed-before-build") == 0;
    bool trtexec = scenario && std::strcmp(scenario, "trtexec-order") == 0;
    if (!(early || trtexec) || !onnx_path) return -1;

    auto* builder = static_cast<nvinfer1::IBuilder*>(createInferBuilder_INTERNAL(&logger, NV_TENSORRT_VERSION));
    if (!builder) return -1;
    nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 10
    flags = 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
#endif
    nvinfer1::INetworkDefinition* network = builder->createNetworkV2(flags);
    auto* parser = static_cast<nvonnxparser::IParser*>(createNvOnnxParser_INTERNAL(network, &logger, NV_ONNX_PARSER_VERSION));
    nvinfer1::IBuilderConfig* config = builder->createBuilderConfig();
    int result = -1;
    if (network && parser && config && parser->parseFromFile(onnx_path, 0)) {
        if (early) {
            delete parser;
            parser = nullptr;
        }
        nvinfer1::IHostMemory* plan = builder->buildSerializedNetwork(*network, *config);
        result = plan ? 1 : 0;
        delete plan;
    }
    delete parser;
    delete network;
    delete config;
    delete builder;
    return result;
}
