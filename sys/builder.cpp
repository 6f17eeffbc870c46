// The builder, networks and the ONNX parser. A network owns the parser that filled it
// (TensorRT keeps the parsed weights by reference until the engine is built).
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

using namespace nvinfer1;
using trtforge::fail;
using trtforge::wall;

extern "C" int32_t trtforge_builder_create(trtforge_logger* logger, trtforge_builder** out) {
    return wall("trtforge_builder_create", [&]() -> int32_t {
        REQUIRE(logger && out, "trtforge_builder_create");
        auto* e = trtforge::entry("trtforge_builder_create");
        if (!e) return TRTFORGE_UNAVAILABLE;
        std::unique_ptr<IBuilder> b(
            static_cast<IBuilder*>(e->create_builder(static_cast<ILogger*>(logger), NV_TENSORRT_VERSION)));
        if (!b) return fail("trtforge_builder_create", "createInferBuilder failed (is a CUDA GPU visible?)");
        *out = new trtforge_builder{std::move(b)};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_builder_destroy(trtforge_builder* builder) {
    delete builder;
}

extern "C" int32_t trtforge_builder_nb_dla_cores(trtforge_builder* builder, int32_t* out) {
    return wall("trtforge_builder_nb_dla_cores", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_builder_nb_dla_cores");
        *out = builder->b->getNbDLACores();
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
            return trtforge::unsupported("trtforge_network_create", "strongly typed networks need TensorRT 10 or newer");
        }
#elif NV_TENSORRT_MAJOR == 10
        if (strongly_typed) {
            flags |= 1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
        }
#else
        // TensorRT 11: every network is strongly typed (kSTRONGLY_TYPED is deprecated and ignored).
        (void)strongly_typed;
#endif
        std::unique_ptr<INetworkDefinition> n(builder->b->createNetworkV2(flags));
        if (!n) return fail("trtforge_network_create", "createNetworkV2 failed");
        *out = new trtforge_network{std::move(n), nullptr};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_network_destroy(trtforge_network* network) {
    delete network;
}

extern "C" int32_t trtforge_network_parse_onnx(trtforge_network* network, trtforge_logger* logger, const char* path,
                                               int32_t verbosity) {
    return wall("trtforge_network_parse_onnx", [&]() -> int32_t {
        REQUIRE(network && logger && path, "trtforge_network_parse_onnx");
        if (network->parser) return fail("trtforge_network_parse_onnx", "this network was already parsed");
        auto* e = trtforge::entry("trtforge_network_parse_onnx");
        if (!e) return TRTFORGE_UNAVAILABLE;
        network->parser.reset(static_cast<nvonnxparser::IParser*>(
            e->create_parser(network->n.get(), static_cast<ILogger*>(logger), NV_ONNX_PARSER_VERSION)));
        if (!network->parser) return fail("trtforge_network_parse_onnx", "createParser failed");
        if (network->parser->parseFromFile(path, verbosity)) return TRTFORGE_OK;
        int32_t n = network->parser->getNbErrors();
        trtforge::set_error(std::string(path) + ": the ONNX parser reported " + std::to_string(n) + " error(s)");
        return TRTFORGE_PARSE_FAILED;
    });
}

extern "C" int32_t trtforge_network_parser_nb_errors(trtforge_network* network, int32_t* out) {
    return wall("trtforge_network_parser_nb_errors", [&]() -> int32_t {
        REQUIRE(network && out, "trtforge_network_parser_nb_errors");
        *out = network->parser ? network->parser->getNbErrors() : 0;
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_network_parser_error(trtforge_network* network, int32_t index, int32_t* node,
                                                 const char** node_name, const char** desc, int32_t* code) {
    return wall("trtforge_network_parser_error", [&]() -> int32_t {
        REQUIRE(network && node && node_name && desc && code, "trtforge_network_parser_error");
        auto* p = network->parser.get();
        if (!p || index < 0 || index >= p->getNbErrors()) {
            return fail("trtforge_network_parser_error", "index out of range");
        }
        const nvonnxparser::IParserError* e = p->getError(index);
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
    if (!t) return fail(what, "no such tensor");
    *name = t->getName();
    trtforge::copy_dims(t->getDimensions(), nb_dims, dims);
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
#if NV_TENSORRT_MAJOR >= 11
        (void)dtype;
        return trtforge::unsupported("trtforge_network_set_layer_precision",
                                     "TensorRT 11 networks are strongly typed: layer precisions come from the model "
                                     "(write them into the ONNX, e.g. `trtforge quantize` or the FP16 rewrite)");
#else
        ILayer* layer = network->n->getLayer(index);
        auto t = static_cast<DataType>(dtype);
        layer->setPrecision(t);
        for (int32_t i = 0; i < layer->getNbOutputs(); ++i) {
            layer->setOutputType(i, t);
        }
        return TRTFORGE_OK;
#endif
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
