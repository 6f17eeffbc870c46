// The double's global state: objects, events, violations, unexpected calls, knobs, and the
// extern "C" controls the tests reach through libloading (trtforge_double_*).
#include "double.hpp"

#include <cstdio>

namespace trtforge_double {

State& state() {
    // Never destroyed: objects may be released by static destructors at process exit.
    static State* s = new State();
    return *s;
}

void log(nvinfer1::ILogger::Severity severity, const std::string& message) {
    Lock lock(state().mu);
    if (state().logger) {
        state().logger->log(severity, ("[trtforge double] " + message).c_str());
    }
}

void violation(const std::string& rule, const std::string& message) {
    Lock lock(state().mu);
    Json v = Json::object();
    v["rule"] = rule;
    v["message"] = message;
    state().violations.push(v);
    Json e = Json::object();
    e["op"] = "violation";
    e["rule"] = rule;
    state().events.push(e);
    std::fprintf(stderr, "trtforge double: TensorRT rule broken (%s): %s\n", rule.c_str(), message.c_str());
    log(nvinfer1::ILogger::Severity::kERROR, rule + ": " + message);
}

void event(Json e) {
    Lock lock(state().mu);
    state().events.push(std::move(e));
}

void unexpected(const char* what) noexcept {
    try {
        Lock lock(state().mu);
        state().unexpected.push(std::string("unexpected call ") + what);
        std::fprintf(stderr, "trtforge double: unexpected call %s\n", what);
        log(nvinfer1::ILogger::Severity::kERROR, std::string("unexpected call ") + what);
    } catch (...) {
    }
}

// Children that must not outlive the object that made them (TensorRT's documented order:
// networks and configs before their builder, contexts and inspectors before their engine,
// engines before their runtime).
static bool must_outlive(const std::string& parent, const std::string& child) {
    return (parent == "builder" && (child == "network" || child == "config")) ||
           (parent == "runtime" && child == "engine") ||
           (parent == "engine" && (child == "context" || child == "inspector"));
}

Object::Object(const char* kind, int parent) : kind_(kind), parent_(parent) {
    Lock lock(state().mu);
    id_ = state().next_id++;
    Json& r = state().objects[id_];
    r = Json::object();
    r["id"] = id_;
    r["kind"] = kind_;
    r["parent"] = parent_;
    state().live[id_] = this;
    Json e = Json::object();
    e["op"] = "create";
    e["kind"] = kind_;
    e["id"] = id_;
    e["parent"] = parent_;
    state().events.push(e);
}

Object::~Object() {
    Lock lock(state().mu);
    state().live.erase(id_);
    for (const auto& l : state().live) {
        if (l.second->parent() == id_ && must_outlive(kind_, l.second->kind())) {
            violation("parent-destroyed-first", kind_ + " " + std::to_string(id_) + " destroyed while its " +
                                                    l.second->kind() + " " + std::to_string(l.first) +
                                                    " is alive");
        }
    }
    state().objects[id_]["destroyed"] = true;
    Json e = Json::object();
    e["op"] = "destroy";
    e["kind"] = kind_;
    e["id"] = id_;
    state().events.push(e);
}

bool alive(int id) {
    Lock lock(state().mu);
    return state().live.count(id) > 0;
}

Object* live_object(int id) {
    Lock lock(state().mu);
    auto it = state().live.find(id);
    return it == state().live.end() ? nullptr : it->second;
}

std::vector<Object*> live_of(const std::string& kind) {
    Lock lock(state().mu);
    std::vector<Object*> out;
    for (const auto& l : state().live) {
        if (l.second->kind() == kind) out.push_back(l.second);
    }
    return out;
}

Json dims_json(const Dims& d) {
    Json j = Json::array();
    for (int32_t i = 0; i < d.nbDims && i < Dims::MAX_DIMS; ++i) j.push(static_cast<int64_t>(d.d[i]));
    return j;
}

bool dims_from_json(const Json& j, Dims& out) {
    if (!j.is_array() || j.size() > static_cast<size_t>(Dims::MAX_DIMS)) return false;
    out = Dims{};
    out.nbDims = static_cast<int32_t>(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        if (!j.at(i).is_number()) return false;
        out.d[i] = static_cast<std::remove_reference_t<decltype(out.d[0])>>(j.at(i).as_int());
    }
    return true;
}

int64_t volume(const Dims& d) {
    int64_t v = 1;
    for (int32_t i = 0; i < d.nbDims; ++i) v *= d.d[i];
    return v;
}

bool has_dynamic(const Dims& d) {
    for (int32_t i = 0; i < d.nbDims; ++i) {
        if (d.d[i] < 0) return true;
    }
    return false;
}

size_t dtype_size(DataType t) {
    switch (t) {
    case DataType::kFLOAT: return 4;
    case DataType::kHALF: return 2;
    case DataType::kINT8: return 1;
    case DataType::kINT32: return 4;
    case DataType::kBOOL: return 1;
    case DataType::kUINT8: return 1;
#if NV_TENSORRT_MAJOR >= 10
    case DataType::kBF16: return 2;
    case DataType::kINT64: return 8;
#endif
    default: return 1;
    }
}

const char* dtype_name(DataType t) {
    switch (t) {
    case DataType::kFLOAT: return "kFLOAT";
    case DataType::kHALF: return "kHALF";
    case DataType::kINT8: return "kINT8";
    case DataType::kINT32: return "kINT32";
    case DataType::kBOOL: return "kBOOL";
    case DataType::kUINT8: return "kUINT8";
#if NV_TENSORRT_MAJOR >= 10
    case DataType::kBF16: return "kBF16";
    case DataType::kINT64: return "kINT64";
#endif
    default: return "other";
    }
}

// BuilderFlag names of this version (the numbering changed in 10 and 11).
std::string flag_name(int32_t flag) {
    using F = nvinfer1::BuilderFlag;
    struct N {
        F f;
        const char* name;
    };
    static const N names[] = {
#ifdef TD_HAS_CALIBRATOR
        {F::kFP16, "kFP16"},
        {F::kINT8, "kINT8"},
        {F::kOBEY_PRECISION_CONSTRAINTS, "kOBEY_PRECISION_CONSTRAINTS"},
        {F::kPREFER_PRECISION_CONSTRAINTS, "kPREFER_PRECISION_CONSTRAINTS"},
#endif
        {F::kDEBUG, "kDEBUG"},
        {F::kGPU_FALLBACK, "kGPU_FALLBACK"},
        {F::kREFIT, "kREFIT"},
        {F::kDISABLE_TIMING_CACHE, "kDISABLE_TIMING_CACHE"},
        {F::kTF32, "kTF32"},
        {F::kSPARSE_WEIGHTS, "kSPARSE_WEIGHTS"},
        {F::kDIRECT_IO, "kDIRECT_IO"},
#if TD_AT_LEAST(8, 6)
        {F::kVERSION_COMPATIBLE, "kVERSION_COMPATIBLE"},
        {F::kEXCLUDE_LEAN_RUNTIME, "kEXCLUDE_LEAN_RUNTIME"},
#endif
    };
    for (const N& n : names) {
        if (static_cast<int32_t>(n.f) == flag) return n.name;
    }
    return "flag" + std::to_string(flag);
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

static Json record() {
    State& s = state();
    Json r = Json::object();
    r["header_version"] = static_cast<int64_t>(NV_TENSORRT_VERSION);
    Json p = Json::object();
    p["initialized"] = s.plugins;
    p["calls"] = s.plugin_calls;
    r["plugins"] = p;
    r["events"] = s.events;
    Json objects = Json::array();
    for (const auto& o : s.objects) objects.push(o.second);
    r["objects"] = objects;
    r["builds"] = s.builds;
    r["unexpected"] = s.unexpected;
    r["violations"] = s.violations;
    Json live = Json::array();
    for (const auto& l : s.live) {
        Json o = Json::object();
        o["id"] = l.first;
        o["kind"] = l.second->kind();
        live.push(o);
    }
    r["live"] = live;
    Json k = Json::object();
    k["dla_cores"] = s.knobs.dla_cores;
    k["oracle"] = s.knobs.oracle != nullptr;
    k["device"] = s.knobs.device;
    r["knobs"] = k;
    return r;
}

} // namespace trtforge_double

using namespace trtforge_double;

// Forget everything recorded and restore the default knobs. Live objects stay live (and keep
// their ids); the plugin registration is process state and stays too.
extern "C" void trtforge_double_reset() {
    Lock lock(state().mu);
    State& s = state();
    s.knobs = Knobs{};
    s.logger = nullptr; // the next factory call brings the next test's logger
    s.events = Json::array();
    s.builds = Json::array();
    s.unexpected = Json::array();
    s.violations = Json::array();
    std::map<int, Json> kept;
    for (const auto& l : s.live) kept[l.first] = s.objects[l.first];
    s.objects = std::move(kept);
}

extern "C" void trtforge_double_set_dla_cores(int n) {
    Lock lock(state().mu);
    state().knobs.dla_cores = n;
}

// How many bytes really are behind a calibration binding (0: unknown); null to stop checking.
extern "C" void trtforge_double_set_binding_size_oracle(size_t (*oracle)(const void*)) {
    Lock lock(state().mu);
    state().knobs.oracle = oracle;
}

// The device timing caches are made on (a cache from another device is a mismatch).
extern "C" void trtforge_double_set_device_name(const char* name) {
    Lock lock(state().mu);
    state().knobs.device = name ? name : "";
}

// Pretend initLibNvInferPlugins was never called (rule: plugins before parse/deserialize);
// calling initLibNvInferPlugins again restores it.
extern "C" void trtforge_double_forget_plugins() {
    Lock lock(state().mu);
    state().plugins = false;
}

// Everything recorded so far; valid until the next call.
extern "C" const char* trtforge_double_record_json() {
    Lock lock(state().mu);
    state().record_text = record().dump();
    return state().record_text.c_str();
}

extern "C" const char* trtforge_double_violations_json() {
    Lock lock(state().mu);
    state().violations_text = state().violations.dump();
    return state().violations_text.c_str();
}
