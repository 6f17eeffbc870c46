// The runtime, deserialized "engines" (the double's JSON plans) and the engine inspector.
#include "double.hpp"

namespace trtforge_double {

// ---- plans ----

bool Plan::read(const std::string& bytes, Plan& plan, std::string& err) {
    std::string magic(kPlanMagic);
    if (bytes.compare(0, magic.size(), magic) != 0) {
        err = "not a plan of the TensorRT double (no magic)";
        return false;
    }
    if (!Json::parse(bytes.substr(magic.size()), plan.json, err)) return false;
    const Json& j = plan.json;
    const Json* io = j.get("io");
    const Json* profiles = j.get("profiles");
    if (!io || !io->is_array() || !profiles || !profiles->is_array() || !j.get("layers")) {
        err = "plan JSON without io, profiles or layers";
        return false;
    }
    if (j.get("trt_version") && j.get("trt_version")->as_int() != NV_TENSORRT_VERSION) {
        err = "plan built by TensorRT " + std::to_string(j.get("trt_version")->as_int()) + ", this is " +
              std::to_string(NV_TENSORRT_VERSION);
        return false;
    }
    for (const Json& t : io->items()) {
        PlanIo p;
        p.name = t.get("name") ? t.get("name")->as_str() : "";
        p.input = t.get("input") && t.get("input")->as_bool();
        p.type = static_cast<DataType>(t.get("dtype") ? t.get("dtype")->as_int() : 0);
        if (!t.get("dims") || !dims_from_json(*t.get("dims"), p.dims)) {
            err = "bad dims for " + p.name;
            return false;
        }
        plan.io.push_back(p);
    }
    for (const Json& p : profiles->items()) {
        ProfileShapes shapes;
        for (const auto& in : p.members()) {
            InputShapes s;
            const char* names[3] = {"min", "opt", "max"};
            for (int k = 0; k < 3; ++k) {
                const Json* d = in.second.get(names[k]);
                s.set[k] = d && dims_from_json(*d, s.d[k]);
            }
            shapes[in.first] = s;
        }
        plan.profiles.push_back(shapes);
    }
    plan.dla_core = static_cast<int32_t>(j.get("dla_core") ? j.get("dla_core")->as_int(-1) : -1);
    return true;
}

const PlanIo* Plan::find(const char* name) const {
    if (!name) return nullptr;
    for (const PlanIo& p : io) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

// ---- runtime ----

Runtime::Runtime(nvinfer1::IRuntime&, nvinfer1::ILogger* logger) : Object("runtime", 0), logger_(logger) {}

int32_t Runtime::getNbDLACores() const noexcept {
    Lock lock(state().mu);
    call("getNbDLACores");
    return state().knobs.dla_cores;
}

void Runtime::setDLACore(int32_t core) noexcept {
    Lock lock(state().mu);
    call("setDLACore(" + std::to_string(core) + ")");
    if (core < 0 || core >= state().knobs.dla_cores) {
        violation("runtime-dla-core-out-of-range", "IRuntime::setDLACore(" + std::to_string(core) + ") with " +
                                                       std::to_string(state().knobs.dla_cores) + " core(s)");
        return;
    }
    dla_core_ = core;
    dla_core_set_ = true;
    rec()["dla_core"] = core;
}

#if NV_TENSORRT_MAJOR >= 10
nvinfer1::ICudaEngine* Runtime::deserializeCudaEngine(void const* blob, std::size_t size) noexcept {
    return deserialize(blob, size);
}
#else
nvinfer1::ICudaEngine* Runtime::deserializeCudaEngine(void const* blob, std::size_t size,
                                                      nvinfer1::IPluginFactory*) noexcept {
    return deserialize(blob, size);
}
#endif

nvinfer1::ICudaEngine* Runtime::deserialize(void const* blob, std::size_t size) {
    Lock lock(state().mu);
    call("deserializeCudaEngine(" + std::to_string(size) + " bytes)");
    Json d = Json::object();
    d["runtime"] = id();
    d["bytes"] = static_cast<int64_t>(size);
    auto refuse = [&](const std::string& why) -> nvinfer1::ICudaEngine* {
        d["ok"] = false;
        d["error"] = why;
        rec()["deserialize"].push(d);
        log(nvinfer1::ILogger::Severity::kERROR, "deserializeCudaEngine: " + why);
        return nullptr;
    };
    if (!state().plugins) {
        violation("plugins-not-initialized", "deserializeCudaEngine before initLibNvInferPlugins");
        return refuse("plugins are not registered");
    }
    // The builder's memory must be gone before an engine is loaded (peak memory on small Orins).
    std::string alive_now;
    for (const char* kind : {"builder", "network", "config"}) {
        for (Object* o : live_of(kind)) alive_now += std::string(alive_now.empty() ? "" : ", ") + kind + " " + std::to_string(o->id());
    }
    if (!alive_now.empty()) {
        violation("builder-alive-at-deserialize", "deserializeCudaEngine while " + alive_now + " still alive");
        return refuse("builder objects still alive");
    }
    if (!blob || size == 0) return refuse("no bytes");
    Plan plan;
    std::string err;
    if (!Plan::read(std::string(static_cast<const char*>(blob), size), plan, err)) return refuse(err);
    if (plan.dla_core >= 0 && !dla_core_set_) {
        violation("dla-engine-without-runtime-dla-core",
                  "a DLA engine deserialized without IRuntime::setDLACore first");
        return refuse("DLA engine without a DLA core");
    }
    d["ok"] = true;
    rec()["deserialize"].push(d);
    return new Public<nvinfer1::ICudaEngine, Engine>(id(), std::move(plan));
}

// ---- engine ----

Engine::Engine(nvinfer1::ICudaEngine& pub, int runtime, Plan plan)
    : Object("engine", runtime), pub_(pub), plan_(std::move(plan)) {
    const Json* n = plan_.json.get("network");
    name_ = n ? n->as_str() : "";
    rec()["dla_core"] = plan_.dla_core;
}

int32_t Engine::getNbLayers() const noexcept {
    const Json* l = plan_.json.get("layers");
    return l ? static_cast<int32_t>(l->size()) : 0;
}

char const* Engine::getIOTensorName(int32_t index) const noexcept {
    if (index < 0 || index >= getNbIOTensors()) return nullptr;
    return plan_.io[index].name.c_str();
}

nvinfer1::TensorIOMode Engine::getTensorIOMode(char const* name) const noexcept {
    const PlanIo* p = plan_.find(name);
    if (!p) return nvinfer1::TensorIOMode::kNONE;
    return p->input ? nvinfer1::TensorIOMode::kINPUT : nvinfer1::TensorIOMode::kOUTPUT;
}

Dims Engine::getTensorShape(char const* name) const noexcept {
    const PlanIo* p = plan_.find(name);
    if (p) return p->dims;
    Dims d{};
    d.nbDims = -1;
    return d;
}

DataType Engine::getTensorDataType(char const* name) const noexcept {
    const PlanIo* p = plan_.find(name);
    return p ? p->type : DataType::kFLOAT;
}

Dims Engine::getProfileShape(char const* name, int32_t profile, nvinfer1::OptProfileSelector select) const noexcept {
    Dims d{};
    d.nbDims = -1;
    int k = static_cast<int>(select);
    if (!name || profile < 0 || profile >= getNbOptimizationProfiles() || k < 0 || k > 2) return d;
    auto it = plan_.profiles[profile].find(name);
    if (it == plan_.profiles[profile].end() || !it->second.set[k]) return d;
    return it->second.d[k];
}

nvinfer1::ProfilingVerbosity Engine::getProfilingVerbosity() const noexcept {
    const Json* v = plan_.json.get("profiling_verbosity");
    return static_cast<nvinfer1::ProfilingVerbosity>(v ? v->as_int() : 0);
}

nvinfer1::IEngineInspector* Engine::createEngineInspector() const noexcept {
    Lock lock(state().mu);
    call("createEngineInspector");
    return new Public<nvinfer1::IEngineInspector, Inspector>(*this);
}

#if NV_TENSORRT_MAJOR >= 10
nvinfer1::IExecutionContext* Engine::createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy) noexcept {
#else
nvinfer1::IExecutionContext* Engine::createExecutionContext() noexcept {
#endif
    Lock lock(state().mu);
    call("createExecutionContext");
    return new Public<nvinfer1::IExecutionContext, Context>(*this);
}

// Layer information shaped like TensorRT's kJSON output: {"Layers": [...], "Bindings": [...]}.
// Detailed verbosity gives objects, layer-names-only gives names, kNONE gives no layers; DLA
// layers are handed over as one foreign node, "{ForeignNode[first...last]}".
std::string Engine::information() const {
    Json out = Json::object();
    Json layers = Json::array();
    auto verbosity = getProfilingVerbosity();
    const Json* pl = plan_.json.get("layers");
    std::vector<const Json*> dla;
    auto flush = [&]() {
        if (dla.empty()) return;
        std::string first = dla.front()->get("name")->as_str(), last = dla.back()->get("name")->as_str();
        std::string name = "{ForeignNode[" + first + (dla.size() > 1 ? "..." + last : "") + "]}";
        if (verbosity == nvinfer1::ProfilingVerbosity::kDETAILED) {
            Json l = Json::object();
            l["Name"] = name;
            l["LayerType"] = "ForeignNode";
            l["Device"] = "DLA";
            layers.push(l);
        } else if (verbosity == nvinfer1::ProfilingVerbosity::kLAYER_NAMES_ONLY) {
            layers.push(name);
        }
        dla.clear();
    };
    static const std::vector<Json> none;
    // A reference, not a copy: `dla` keeps pointers into it until the last flush.
    const std::vector<Json>& all = pl ? pl->items() : none;
    for (const Json& l : all) {
        if (l.get("device") && l.get("device")->as_str() == "DLA") {
            dla.push_back(&l);
            continue;
        }
        flush();
        if (verbosity == nvinfer1::ProfilingVerbosity::kDETAILED) {
            Json j = Json::object();
            j["Name"] = l.get("name")->as_str();
            j["LayerType"] = l.get("type")->as_str();
            Json ins = Json::array();
            for (const Json& i : l.get("inputs")->items()) {
                Json t = Json::object();
                t["Name"] = i.as_str();
                ins.push(t);
            }
            j["Inputs"] = ins;
            std::string p = l.get("precision")->as_str();
            std::string fmt = p == "kINT8" ? "Row major linear Int8" : p == "kHALF" ? "Row major linear FP16"
                                                                                    : "Row major linear FP32";
            Json outs = Json::array();
            for (const Json& o : l.get("outputs")->items()) {
                Json t = Json::object();
                t["Name"] = o.as_str();
                t["Format/Datatype"] = fmt;
                outs.push(t);
            }
            j["Outputs"] = outs;
            layers.push(j);
        } else if (verbosity == nvinfer1::ProfilingVerbosity::kLAYER_NAMES_ONLY) {
            layers.push(l.get("name")->as_str());
        }
    }
    flush();
    out["Layers"] = layers;
    Json bindings = Json::array();
    for (const PlanIo& p : plan_.io) bindings.push(p.name);
    out["Bindings"] = bindings;
    return out.dump();
}

char const* Inspector::getEngineInformation(nvinfer1::LayerInformationFormat format) const noexcept {
    Lock lock(state().mu);
    call(format == nvinfer1::LayerInformationFormat::kJSON ? "getEngineInformation(kJSON)"
                                                           : "getEngineInformation(kONELINE)");
    if (!alive(parent())) {
        violation("parent-destroyed-first", "inspector used after its engine was destroyed");
        return nullptr;
    }
    text_ = engine_.information();
    return text_.c_str();
}

char const* Inspector::getLayerInformation(int32_t index, nvinfer1::LayerInformationFormat) const noexcept {
    Lock lock(state().mu);
    if (!alive(parent())) {
        violation("parent-destroyed-first", "inspector used after its engine was destroyed");
        return nullptr;
    }
    Json j;
    std::string err;
    if (!Json::parse(engine_.information(), j, err) || index < 0 ||
        static_cast<size_t>(index) >= j.get("Layers")->size()) {
        return nullptr;
    }
    text_ = j.get("Layers")->at(static_cast<size_t>(index)).dump();
    return text_.c_str();
}

} // namespace trtforge_double
