// The ONNX parser double: parseFromFile fills its network with one input per graph input
// (initializers excluded), one layer per node, named as onnx-tensorrt names them (the node's
// name, or "node_of_<first output>" when it has none), and the graph outputs. Failures are
// IParserErrors, as the real parser reports them.
#include "double.hpp"

#include <fstream>
#include <sstream>

namespace trtforge_double {

namespace {

// ONNX TensorProto.DataType -> TensorRT DataType; false when TensorRT has no such input type.
bool onnx_type(int32_t elem, DataType& out) {
    switch (elem) {
    case 1: out = DataType::kFLOAT; return true;
    case 10: out = DataType::kHALF; return true;
    case 3: out = DataType::kINT8; return true;
    case 6: out = DataType::kINT32; return true;
    case 9: out = DataType::kBOOL; return true;
    case 2: out = DataType::kUINT8; return true;
#if NV_TENSORRT_MAJOR >= 10
    case 7: out = DataType::kINT64; return true;
    case 16: out = DataType::kBF16; return true;
#else
    case 7: out = DataType::kINT32; return true; // 8.x parsers narrow INT64 to INT32
#endif
    default: return false;
    }
}

Dims onnx_dims(const OnnxValue& v) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(std::min<size_t>(v.dims.size(), Dims::MAX_DIMS));
    for (int32_t i = 0; i < d.nbDims; ++i) d.d[i] = static_cast<std::remove_reference_t<decltype(d.d[0])>>(v.dims[i]);
    return d;
}

} // namespace

Parser::Parser(nvinfer1::INetworkDefinition* network, int network_id)
    : Object("parser", network_id), network_(network), network_id_(network_id) {}

// The weights go with the parser: a network it filled must not be built from now on.
Parser::~Parser() {
    Lock lock(state().mu);
    if (Network* n = dynamic_cast<Network*>(live_object(network_id_))) {
        if (n->parser_ == id()) {
            n->parser_alive_ = false;
            n->rec()["parser_destroyed"] = true;
        }
    }
}

bool Parser::error(nvonnxparser::ErrorCode code, const std::string& desc, int node, const std::string& name,
                   const std::string& op) {
    errors_.push_back(std::make_unique<ParserError>(code, desc, node, name, op));
    rec()["errors"].push(desc);
    log(nvinfer1::ILogger::Severity::kERROR, "ONNX parser: " + desc);
    return false;
}

nvonnxparser::IParserError const* Parser::getError(int index) const noexcept {
    Lock lock(state().mu);
    if (index < 0 || index >= getNbErrors()) return nullptr;
    return errors_[index].get();
}

bool Parser::parseFromFile(char const* path, int verbosity) noexcept {
    Lock lock(state().mu);
    try {
        call(std::string("parseFromFile(") + (path ? path : "null") + ", " + std::to_string(verbosity) + ")");
        rec()["file"] = path ? path : "";
        using E = nvonnxparser::ErrorCode;
        if (!state().plugins) {
            violation("plugins-not-initialized", "parseFromFile before initLibNvInferPlugins");
            return error(E::kINTERNAL_ERROR, "plugins are not registered (initLibNvInferPlugins was not called)");
        }
        Network* net = dynamic_cast<Network*>(live_object(network_id_));
        if (!net || &net->pub() != network_) {
            violation("parser-network-destroyed", "parseFromFile after its network was destroyed");
            return error(E::kINTERNAL_ERROR, "the parser's network no longer exists");
        }
#if NV_TENSORRT_MAJOR < 10
        auto explicit_batch = 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
        if (!(net->rec().get("flags") && (net->rec().get("flags")->as_int() & explicit_batch))) {
            return error(E::kINVALID_GRAPH, "the ONNX parser needs an explicit batch network (kEXPLICIT_BATCH)");
        }
#endif
        if (!path) return error(E::kINVALID_VALUE, "no file name");
        std::ifstream f(path, std::ios::binary);
        if (!f) return error(E::kINVALID_VALUE, std::string("cannot open ") + path);
        std::stringstream ss;
        ss << f.rdbuf();
        OnnxModel m;
        std::string why;
        if (!read_onnx(ss.str(), m, why)) return error(E::kMODEL_DESERIALIZE_FAILED, std::string(path) + ": " + why);
        if (m.nodes.empty()) return error(E::kINVALID_GRAPH, "the graph has no nodes");
        // A parse can fail with nothing in getNbErrors() (an importer that returns false without
        // recording, as some plugin paths do); this graph name makes the double do exactly that.
        if (m.graph_name == "double_fails_silently") return false;

        net->name_ = m.graph_name.empty() ? net->name_ : m.graph_name;
        for (const OnnxValue& in : m.inputs) {
            if (m.initializers.count(in.name)) continue; // weights listed as inputs (old exporters)
            DataType t;
            if (!onnx_type(in.elem, t)) {
                return error(E::kUNSUPPORTED_NODE, "input " + in.name + ": unsupported element type " +
                                                        std::to_string(in.elem));
            }
            if (!in.has_shape) return error(E::kINVALID_GRAPH, "input " + in.name + " has no shape");
            net->add_tensor(in.name, onnx_dims(in), t, true);
        }
        for (size_t i = 0; i < m.nodes.size(); ++i) {
            const OnnxNode& n = m.nodes[i];
            std::string name = !n.name.empty() ? n.name : n.outputs.empty() ? n.op : "node_of_" + n.outputs[0];
            Layer* l = net->add_layer(name, n.op);
            for (const std::string& in : n.inputs) {
                if (in.empty() || m.initializers.count(in)) continue;
                Tensor* t = net->find_tensor(in);
                if (!t) {
                    return error(E::kINVALID_NODE, "node " + name + " reads " + in + ", which nothing produces",
                                 static_cast<int>(i), n.name, n.op);
                }
                l->inputs_.push_back(t);
            }
            for (const std::string& out : n.outputs) {
                Dims d{};
                d.nbDims = -1; // unknown until the builder infers shapes
                l->outputs_.push_back(net->add_tensor(out, d, DataType::kFLOAT, false));
            }
        }
        for (const OnnxValue& out : m.outputs) {
            Tensor* t = net->find_tensor(out.name);
            if (!t || t->input_) {
                return error(E::kINVALID_GRAPH, "graph output " + out.name + " is produced by no node");
            }
            DataType ty = DataType::kFLOAT;
            if (out.elem) onnx_type(out.elem, ty);
            t->type_ = ty;
            t->dims_ = onnx_dims(out);
            net->mark_output(t);
        }
        net->parser_ = id();
        net->parser_alive_ = true;
        Json& r = net->rec();
        r["parser"] = id();
        r["name"] = net->name_;
        Json ins = Json::array(), outs = Json::array(), layers = Json::array();
        for (Tensor* t : net->inputs_) ins.push(t->name_);
        for (Tensor* t : net->outputs_) outs.push(t->name_);
        for (const auto& l : net->layers_) layers.push(l->impl.name_);
        r["inputs"] = ins;
        r["outputs"] = outs;
        r["layers"] = layers;
        rec()["ok"] = true;
        return true;
    } catch (const std::exception& e) {
        return error(nvonnxparser::ErrorCode::kINTERNAL_ERROR, e.what());
    }
}

} // namespace trtforge_double
