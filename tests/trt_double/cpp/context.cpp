// The execution context, enqueueV3 path: input shapes within the profile, an address for
// every I/O tensor, then enqueue. The stream is opaque: no CUDA work is done, the call is
// recorded.
#include "double.hpp"

namespace trtforge_double {

Context::Context(nvinfer1::IExecutionContext&, Engine& engine) : Object("context", engine.id()), engine_(engine) {}

bool Context::engine_alive(const char* what) const {
    if (alive(parent())) return true;
    violation("parent-destroyed-first", std::string(what) + " on a context whose engine was destroyed");
    return false;
}

bool Context::allInputDimensionsSpecified() const noexcept {
    Lock lock(state().mu);
    if (!engine_alive("allInputDimensionsSpecified")) return false;
    for (const PlanIo& p : engine_.plan().io) {
        if (p.input && has_dynamic(p.dims) && !shapes_.count(p.name)) return false;
    }
    return true;
}

// Static dims must match; dynamic ones must lie within profile 0's kMIN..kMAX.
bool Context::setInputShape(char const* name, Dims const& dims) noexcept {
    Lock lock(state().mu);
    std::string n = name ? name : "";
    Json c = Json::object();
    c["name"] = n;
    c["dims"] = dims_json(dims);
    rec()["input_shapes"].push(c);
    call("setInputShape(" + n + ")");
    if (!engine_alive("setInputShape")) return false;
    const PlanIo* p = engine_.plan().find(name);
    if (!p || !p->input) {
        log(nvinfer1::ILogger::Severity::kERROR, "setInputShape: " + n + " is not an input");
        return false;
    }
    bool ok = dims.nbDims == p->dims.nbDims;
    const InputShapes* range = nullptr;
    if (!engine_.plan().profiles.empty()) {
        auto it = engine_.plan().profiles[0].find(n);
        if (it != engine_.plan().profiles[0].end()) range = &it->second;
    }
    for (int32_t i = 0; ok && i < dims.nbDims; ++i) {
        if (p->dims.d[i] >= 0) {
            ok = dims.d[i] == p->dims.d[i];
        } else {
            ok = range && dims.d[i] >= range->d[0].d[i] && dims.d[i] <= range->d[2].d[i];
        }
    }
    if (!ok) {
        violation("input-shape-outside-profile",
                  "setInputShape(" + n + ", " + dims_json(dims).dump() + ") is outside the engine's shapes");
        return false;
    }
    shapes_[n] = dims;
    return true;
}

// Inputs: the shape set (or the static one). Outputs: the built dims, a dynamic dim taken from
// the first input's shape at the same position once it is set (the double does no shape
// inference; the tiny models keep the batch at position 0).
Dims Context::getTensorShape(char const* name) const noexcept {
    Lock lock(state().mu);
    Dims d{};
    d.nbDims = -1;
    if (!engine_alive("getTensorShape")) return d;
    const PlanIo* p = engine_.plan().find(name);
    if (!p) return d;
    if (p->input) {
        auto it = shapes_.find(p->name);
        return it != shapes_.end() ? it->second : p->dims;
    }
    d = p->dims;
    const PlanIo* first = nullptr;
    for (const PlanIo& io : engine_.plan().io) {
        if (io.input) {
            first = &io;
            break;
        }
    }
    auto set = first ? shapes_.find(first->name) : shapes_.end();
    for (int32_t i = 0; i < d.nbDims; ++i) {
        if (d.d[i] < 0 && set != shapes_.end() && i < set->second.nbDims) d.d[i] = set->second.d[i];
    }
    return d;
}

bool Context::setTensorAddress(char const* name, void* data) noexcept {
    Lock lock(state().mu);
    std::string n = name ? name : "";
    call("setTensorAddress(" + n + ")");
    if (!engine_alive("setTensorAddress")) return false;
    if (!engine_.plan().find(name)) {
        log(nvinfer1::ILogger::Severity::kERROR, "setTensorAddress: no tensor named " + n);
        return false;
    }
    addresses_[n] = data;
    return true;
}

void const* Context::getTensorAddress(char const* name) const noexcept {
    Lock lock(state().mu);
    auto it = name ? addresses_.find(name) : addresses_.end();
    return it == addresses_.end() ? nullptr : it->second;
}

bool Context::enqueueV3(cudaStream_t stream) noexcept {
    Lock lock(state().mu);
    call("enqueueV3");
    if (!engine_alive("enqueueV3")) return false;
    Json e = Json::object();
    e["stream"] = static_cast<int64_t>(reinterpret_cast<uintptr_t>(stream));
    bool ok = true;
    std::string missing;
    for (const PlanIo& p : engine_.plan().io) {
        if (p.input && has_dynamic(p.dims) && !shapes_.count(p.name)) {
            violation("enqueue-input-shape-unset", "enqueueV3 before setInputShape(" + p.name + ")");
            ok = false;
        }
        if (!addresses_.count(p.name)) {
            violation("enqueue-missing-address", "enqueueV3 without an address for " + p.name);
            ok = false;
        }
    }
    Json shapes = Json::object();
    for (const auto& s : shapes_) shapes[s.first] = dims_json(s.second);
    e["shapes"] = shapes;
    e["ok"] = ok;
    rec()["enqueues"].push(e);
    return ok;
}

} // namespace trtforge_double
