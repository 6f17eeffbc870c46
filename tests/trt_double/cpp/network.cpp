// Networks, tensors and layers: what the ONNX parser fills in and the shim reads back
// (inputs, outputs, layer names) or pins (layer precisions before TensorRT 11).
#include "double.hpp"

namespace trtforge_double {

void Tensor::setName(char const* name) noexcept {
    name_ = name ? name : "";
}

nvinfer1::LayerType Layer::getType() const noexcept {
    using L = nvinfer1::LayerType;
    if (op_ == "Conv") return L::kCONVOLUTION;
    if (op_ == "ConvTranspose") return L::kDECONVOLUTION;
    if (op_ == "Relu" || op_ == "Sigmoid" || op_ == "Tanh" || op_ == "LeakyRelu" || op_ == "Clip") {
        return L::kACTIVATION;
    }
    if (op_ == "Add" || op_ == "Mul" || op_ == "Sub" || op_ == "Div") return L::kELEMENTWISE;
    if (op_ == "MaxPool" || op_ == "AveragePool") return L::kPOOLING;
    if (op_ == "Concat") return L::kCONCATENATION;
    if (op_ == "Reshape" || op_ == "Transpose" || op_ == "Flatten") return L::kSHUFFLE;
    if (op_ == "Resize") return L::kRESIZE;
    if (op_ == "QuantizeLinear") return L::kQUANTIZE;
    if (op_ == "DequantizeLinear") return L::kDEQUANTIZE;
    return L::kIDENTITY;
}

void Layer::setName(char const* name) noexcept {
    name_ = name ? name : "";
}

nvinfer1::ITensor* Layer::getInput(int32_t index) const noexcept {
    if (index < 0 || index >= getNbInputs()) return nullptr;
    return &inputs_[index]->pub();
}

nvinfer1::ITensor* Layer::getOutput(int32_t index) const noexcept {
    if (index < 0 || index >= getNbOutputs()) return nullptr;
    return &outputs_[index]->pub();
}

DataType Layer::getOutputType(int32_t index) const noexcept {
    auto it = output_types_.find(index);
    if (it != output_types_.end()) return it->second;
    return index >= 0 && index < getNbOutputs() ? outputs_[index]->type_ : DataType::kFLOAT;
}

#ifdef TD_HAS_CALIBRATOR
// Pinning precisions is refused on strongly typed networks ("Setting layer precision and layer
// output types is not allowed", NetworkDefinitionCreationFlag::kSTRONGLY_TYPED).
void Layer::setPrecision(DataType t) noexcept {
    Lock lock(state().mu);
    net_.call("ILayer::setPrecision(" + name_ + ", " + dtype_name(t) + ")");
    if (net_.strongly_typed()) {
        violation("precision-on-strongly-typed", "setPrecision on layer " + name_ + " of a strongly typed network");
        return;
    }
    precision_set_ = true;
    precision_ = t;
    net_.rec()["precisions"][name_] = dtype_name(t);
}

void Layer::setOutputType(int32_t index, DataType t) noexcept {
    Lock lock(state().mu);
    net_.call("ILayer::setOutputType(" + name_ + ", " + std::to_string(index) + ", " + dtype_name(t) + ")");
    if (net_.strongly_typed()) {
        violation("precision-on-strongly-typed", "setOutputType on layer " + name_ + " of a strongly typed network");
        return;
    }
    if (index < 0 || index >= getNbOutputs()) {
        log(nvinfer1::ILogger::Severity::kERROR, "setOutputType: output index out of range");
        return;
    }
    output_types_[index] = t;
    Json& o = net_.rec()["output_types"][name_];
    if (o.is_null()) o = Json::array();
    o.push(dtype_name(t));
}
#endif

Network::Network(nvinfer1::INetworkDefinition& pub, int builder, nvinfer1::NetworkDefinitionCreationFlags flags)
    : Object("network", builder), pub_(pub), flags_(flags) {
#if NV_TENSORRT_MAJOR >= 11
    strongly_typed_ = true;
#elif NV_TENSORRT_MAJOR == 10
    strongly_typed_ = (flags >> static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED)) & 1U;
#else
    strongly_typed_ = false;
#endif
    rec()["flags"] = static_cast<int64_t>(flags);
    rec()["strongly_typed"] = strongly_typed_;
}

nvinfer1::ILayer* Network::getLayer(int32_t index) const noexcept {
    if (index < 0 || index >= getNbLayers()) return nullptr;
    return layers_[index].get();
}

nvinfer1::ITensor* Network::getInput(int32_t index) const noexcept {
    if (index < 0 || index >= getNbInputs()) return nullptr;
    return &inputs_[index]->pub();
}

nvinfer1::ITensor* Network::getOutput(int32_t index) const noexcept {
    if (index < 0 || index >= getNbOutputs()) return nullptr;
    return &outputs_[index]->pub();
}

Tensor* Network::add_tensor(const std::string& name, Dims dims, DataType type, bool input) {
    tensors_.push_back(std::make_unique<Public<nvinfer1::ITensor, Tensor>>(name, dims, type, input));
    Tensor* t = &tensors_.back()->impl;
    if (input) inputs_.push_back(t);
    return t;
}

Layer* Network::add_layer(const std::string& name, const std::string& op) {
    layers_.push_back(std::make_unique<Public<nvinfer1::ILayer, Layer>>(*this, name, op));
    return &layers_.back()->impl;
}

Tensor* Network::find_tensor(const std::string& name) {
    for (auto& t : tensors_) {
        if (t->impl.name_ == name) return &t->impl;
    }
    return nullptr;
}

void Network::mark_output(Tensor* t) {
    t->output_ = true;
    outputs_.push_back(t);
}

bool Network::has_qdq() const {
    for (const auto& l : layers_) {
        auto t = l->impl.getType();
        if (t == nvinfer1::LayerType::kQUANTIZE || t == nvinfer1::LayerType::kDEQUANTIZE) return true;
    }
    return false;
}

} // namespace trtforge_double
