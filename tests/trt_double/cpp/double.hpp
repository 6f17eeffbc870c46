// The TensorRT test double: shared declarations. Test-only code (tests/trt_double/), compiled
// by the tests against the headers the shim was compiled with; build.rs never sees it and
// nothing here produces an engine: its "plans" are JSON behind kPlanMagic.
//
// How it fits TensorRT's shape: every public class (IBuilder, ICudaEngine, ...) is a thin
// wrapper whose inline methods call `mImpl->method(...)`. `Public<IX, Impl>` is such a wrapper
// with its protected mImpl pointing at an `Impl`, which derives from the generated stub of
// `apiv::VX` (stubs.hpp: every pure virtual records an unexpected call) and overrides what the
// shim really calls. Objects are `Object`s: each has an id and a record, and its creation and
// destruction are events, so tests can check the order of a whole sequence.
#pragma once
#define TRTFORGE_DOUBLE 1

#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "json.hpp"
#include "stubs.hpp"

// The double overrides deprecated TensorRT API on purpose (calibrators, flags): that is what
// the shim calls on older versions.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define TD_AT_LEAST(maj, min) \
    (NV_TENSORRT_MAJOR > (maj) || (NV_TENSORRT_MAJOR == (maj) && NV_TENSORRT_MINOR >= (min)))

// TensorRT 11 removed the calibrator, kFP16/kINT8 and the precision-constraint flags, and
// ILayer::setPrecision/setOutputType.
#if NV_TENSORRT_MAJOR < 11
#define TD_HAS_CALIBRATOR 1
#endif

namespace trtforge_double {

using nvinfer1::DataType;
using nvinfer1::Dims;

// The magic every serialized plan starts with; a JSON document follows.
constexpr const char* kPlanMagic = "TRTFORGE-DOUBLE-NOT-AN-ENGINE\n";
constexpr const char* kTimingCacheMagic = "TRTFORGE-DOUBLE-TIMING-CACHE\n";

// Dims arguments are passed by value before TensorRT 10 and by reference from 10 on.
#if NV_TENSORRT_MAJOR >= 10
using DimsIn = Dims const&;
#else
using DimsIn = Dims;
#endif

// ---- global state (record.cpp) ----

class Object;

struct Knobs {
    int dla_cores = 0;
    size_t (*oracle)(const void*) = nullptr; // bytes behind a calibration binding, 0 unknown
    std::string device = "double-gpu";        // what timing caches are "measured" on
};

struct State {
    std::recursive_mutex mu;
    int next_id = 1;
    Knobs knobs;
    bool plugins = false;
    int plugin_calls = 0;
    nvinfer1::ILogger* logger = nullptr; // the last logger handed to a factory
    Json events = Json::array();
    Json builds = Json::array();
    Json unexpected = Json::array();
    Json violations = Json::array();
    std::map<int, Json> objects;                 // id -> record, kept after destruction
    std::map<const void*, Object*> registry;     // live public pointer -> its object
    std::map<int, Object*> live;                 // live id -> object
    std::string record_text, violations_text;    // what the last *_json() call returned
};

State& state();
using Lock = std::lock_guard<std::recursive_mutex>;

// A broken TensorRT rule: recorded, logged as an error, printed on stderr.
void violation(const std::string& rule, const std::string& message);
void log(nvinfer1::ILogger::Severity severity, const std::string& message);
void event(Json e);

// Every object the double hands out: an id, a kind, the object that made it, and a record.
class Object {
public:
    Object(const char* kind, int parent);
    virtual ~Object();
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

    int id() const { return id_; }
    const std::string& kind() const { return kind_; }
    int parent() const { return parent_; }
    // This object's record (global state: usable from const methods too).
    Json& rec() const { return state().objects[id_]; }
    // Append `what` to this object's "calls" (the order the shim called things in).
    void call(const std::string& what) const { rec()["calls"].push(what); }

private:
    int id_;
    std::string kind_;
    int parent_;
};

// The live object behind a public pointer, if it is one of ours of type T.
template <class T>
T* lookup(const void* pub) {
    Lock lock(state().mu);
    auto it = state().registry.find(pub);
    return it == state().registry.end() ? nullptr : dynamic_cast<T*>(it->second);
}

bool alive(int id);
Object* live_object(int id);
// Live objects of `kind`.
std::vector<Object*> live_of(const std::string& kind);

// The public wrapper: a `Pub` whose protected implementation pointer is `impl`, constructed
// with a reference back to this wrapper (for getPImpl and returned pointers).
template <class Pub, class Impl>
class Public final : public Pub {
public:
    template <class... A>
    explicit Public(A&&... a) : impl(static_cast<Pub&>(*this), std::forward<A>(a)...) {
        if constexpr (std::is_same_v<Pub, nvinfer1::ILayer>) {
            this->mLayer = &impl;
        } else {
            this->mImpl = &impl;
        }
        if constexpr (std::is_base_of_v<Object, Impl>) {
            Lock lock(state().mu);
            state().registry[static_cast<const Pub*>(this)] = &impl;
        }
    }
    ~Public() noexcept override {
        if constexpr (std::is_base_of_v<Object, Impl>) {
            Lock lock(state().mu);
            state().registry.erase(static_cast<const Pub*>(this));
        }
    }
    Impl impl;
};

// ---- small helpers (record.cpp) ----

Json dims_json(const Dims& d);
bool dims_from_json(const Json& j, Dims& out);
int64_t volume(const Dims& d);
bool has_dynamic(const Dims& d);
size_t dtype_size(DataType t);
const char* dtype_name(DataType t);
std::string flag_name(int32_t flag);
std::string hex(uint64_t v);

// ---- network side (network.cpp) ----

class Tensor final : public nvinfer1::apiv::trtforge_stub::StubVTensor {
public:
    Tensor(nvinfer1::ITensor& pub, std::string name, Dims dims, DataType type, bool input)
        : name_(std::move(name)), dims_(dims), type_(type), input_(input), pub_(pub) {}
    nvinfer1::ITensor& pub() { return pub_; }

    void setName(char const* name) noexcept override;
    char const* getName() const noexcept override { return name_.c_str(); }
    Dims getDimensions() const noexcept override { return dims_; }
    DataType getType() const noexcept override { return type_; }
    bool isNetworkInput() const noexcept override { return input_; }
    bool isNetworkOutput() const noexcept override { return output_; }

    std::string name_;
    Dims dims_;
    DataType type_;
    bool input_;
    bool output_ = false;

private:
    nvinfer1::ITensor& pub_;
};

class Network;

class Layer final : public nvinfer1::apiv::trtforge_stub::StubVLayer {
public:
    Layer(nvinfer1::ILayer& pub, Network& net, std::string name, std::string op)
        : name_(std::move(name)), op_(std::move(op)), pub_(pub), net_(net) {}
    nvinfer1::ILayer& pub() { return pub_; }

    nvinfer1::LayerType getType() const noexcept override;
    void setName(char const* name) noexcept override;
    char const* getName() const noexcept override { return name_.c_str(); }
    int32_t getNbInputs() const noexcept override { return static_cast<int32_t>(inputs_.size()); }
    nvinfer1::ITensor* getInput(int32_t index) const noexcept override;
    int32_t getNbOutputs() const noexcept override { return static_cast<int32_t>(outputs_.size()); }
    nvinfer1::ITensor* getOutput(int32_t index) const noexcept override;
    DataType getOutputType(int32_t index) const noexcept override;
#ifdef TD_HAS_CALIBRATOR
    void setPrecision(DataType dataType) noexcept override;
    DataType getPrecision() const noexcept override { return precision_set_ ? precision_ : DataType::kFLOAT; }
    bool precisionIsSet() const noexcept override { return precision_set_; }
    void resetPrecision() noexcept override { precision_set_ = false; }
    void setOutputType(int32_t index, DataType dataType) noexcept override;
    bool outputTypeIsSet(int32_t index) const noexcept override { return output_types_.count(index) > 0; }
    void resetOutputType(int32_t index) noexcept override { output_types_.erase(index); }
#endif

    std::string name_, op_;
    std::vector<Tensor*> inputs_, outputs_;
    bool precision_set_ = false;
    DataType precision_ = DataType::kFLOAT;
    std::map<int32_t, DataType> output_types_;

private:
    nvinfer1::ILayer& pub_;
    Network& net_;
};

class Network final : public nvinfer1::apiv::trtforge_stub::StubVNetworkDefinition, public Object {
public:
    Network(nvinfer1::INetworkDefinition& pub, int builder, nvinfer1::NetworkDefinitionCreationFlags flags);
    nvinfer1::INetworkDefinition& pub() { return pub_; }

    int32_t getNbLayers() const noexcept override { return static_cast<int32_t>(layers_.size()); }
    nvinfer1::ILayer* getLayer(int32_t index) const noexcept override;
    int32_t getNbInputs() const noexcept override { return static_cast<int32_t>(inputs_.size()); }
    nvinfer1::ITensor* getInput(int32_t index) const noexcept override;
    int32_t getNbOutputs() const noexcept override { return static_cast<int32_t>(outputs_.size()); }
    nvinfer1::ITensor* getOutput(int32_t index) const noexcept override;
    void setName(char const* name) noexcept override { name_ = name ? name : ""; }
    char const* getName() const noexcept override { return name_.c_str(); }
#if NV_TENSORRT_MAJOR >= 10
    nvinfer1::NetworkDefinitionCreationFlags getFlags() const noexcept override { return flags_; }
    bool getFlag(nvinfer1::NetworkDefinitionCreationFlag f) const noexcept override {
        return (flags_ >> static_cast<uint32_t>(f)) & 1U;
    }
#endif

    // Building blocks for the parser.
    Tensor* add_tensor(const std::string& name, Dims dims, DataType type, bool input);
    Layer* add_layer(const std::string& name, const std::string& op);
    Tensor* find_tensor(const std::string& name);
    void mark_output(Tensor* t);
    bool has_qdq() const;
    // Strongly typed: TensorRT 10 with kSTRONGLY_TYPED, and every TensorRT 11 network.
    bool strongly_typed() const { return strongly_typed_; }

    std::string name_ = "Unnamed Network 0";
    std::vector<std::unique_ptr<Public<nvinfer1::ITensor, Tensor>>> tensors_;
    std::vector<std::unique_ptr<Public<nvinfer1::ILayer, Layer>>> layers_;
    std::vector<Tensor*> inputs_, outputs_;
    int parser_ = 0;            // id of the parser that filled it
    bool parser_alive_ = false; // whether that parser still holds the weights

private:
    nvinfer1::INetworkDefinition& pub_;
    nvinfer1::NetworkDefinitionCreationFlags flags_;
    bool strongly_typed_;
};

// ---- parser (parser.cpp, onnx.cpp) ----

struct OnnxValue {
    std::string name;
    int32_t elem = 0; // ONNX TensorProto.DataType, 0 unknown
    bool has_shape = false;
    std::vector<int64_t> dims; // -1 for symbolic or missing dims
};
struct OnnxNode {
    std::string name, op;
    std::vector<std::string> inputs, outputs;
};
struct OnnxModel {
    int64_t ir_version = 0;
    bool has_graph = false;
    std::string graph_name;
    std::vector<OnnxValue> inputs, outputs;
    std::vector<OnnxNode> nodes;
    std::set<std::string> initializers;
};
// Read the parts of a ModelProto the double needs; false with `err` when the bytes are not a
// protobuf message of that shape.
bool read_onnx(const std::string& bytes, OnnxModel& model, std::string& err);

class ParserError final : public nvonnxparser::trtforge_stub::StubIParserError {
public:
    ParserError(nvonnxparser::ErrorCode code, std::string desc, int node, std::string node_name, std::string op)
        : code_(code), desc_(std::move(desc)), node_(node), node_name_(std::move(node_name)), op_(std::move(op)) {}
    nvonnxparser::ErrorCode code() const noexcept override { return code_; }
    char const* desc() const noexcept override { return desc_.c_str(); }
    char const* file() const noexcept override { return "trtforge_double/parser.cpp"; }
    int line() const noexcept override { return 0; }
    char const* func() const noexcept override { return "parseFromFile"; }
    int node() const noexcept override { return node_; }
#if NV_TENSORRT_MAJOR >= 10
    char const* nodeName() const noexcept override { return node_name_.c_str(); }
    char const* nodeOperator() const noexcept override { return op_.c_str(); }
    char const* const* localFunctionStack() const noexcept override { return nullptr; }
    int32_t localFunctionStackSize() const noexcept override { return 0; }
#endif

private:
    nvonnxparser::ErrorCode code_;
    std::string desc_;
    int node_;
    std::string node_name_, op_;
};

class Parser final : public nvonnxparser::trtforge_stub::StubIParser, public Object {
public:
    Parser(nvinfer1::INetworkDefinition* network, int network_id);
    ~Parser() override;

    bool parseFromFile(char const* path, int verbosity) noexcept override;
    int getNbErrors() const noexcept override { return static_cast<int>(errors_.size()); }
    nvonnxparser::IParserError const* getError(int index) const noexcept override;
    void clearErrors() noexcept override { errors_.clear(); }

private:
    bool error(nvonnxparser::ErrorCode code, const std::string& desc, int node = -1, const std::string& name = "",
               const std::string& op = "");
    nvinfer1::INetworkDefinition* network_;
    int network_id_;
    std::vector<std::unique_ptr<ParserError>> errors_;
};

// ---- builder side (builder.cpp, config.cpp, build.cpp, calibrate.cpp) ----

class HostMemory final : public nvinfer1::apiv::trtforge_stub::StubVHostMemory, public Object {
public:
    HostMemory(nvinfer1::IHostMemory&, std::string bytes, int parent)
        : Object("host_memory", parent), bytes_(std::move(bytes)) {
        rec()["bytes"] = bytes_.size();
    }
    void* data() const noexcept override { return const_cast<char*>(bytes_.data()); }
    std::size_t size() const noexcept override { return bytes_.size(); }
    DataType type() const noexcept override { return DataType::kUINT8; }

private:
    std::string bytes_;
};
nvinfer1::IHostMemory* host_memory(std::string bytes, int parent);

// Shapes of one input in a profile: kMIN, kOPT, kMAX.
struct InputShapes {
    Dims d[3]{};
    bool set[3]{};
};
using ProfileShapes = std::map<std::string, InputShapes>;
Json profile_json(const ProfileShapes& p);

class Profile final : public nvinfer1::apiv::trtforge_stub::StubVOptimizationProfile, public Object {
public:
    Profile(nvinfer1::IOptimizationProfile& pub, int builder) : Object("profile", builder), pub_(pub) {}
    nvinfer1::IOptimizationProfile& pub() { return pub_; }

    bool setDimensions(char const* inputName, nvinfer1::OptProfileSelector select, DimsIn dims) noexcept override;
    Dims getDimensions(char const* inputName, nvinfer1::OptProfileSelector select) const noexcept override;
    bool isValid() const noexcept override;

    ProfileShapes shapes_;

private:
    nvinfer1::IOptimizationProfile& pub_;
};

class TimingCache final : public nvinfer1::apiv::trtforge_stub::StubVTimingCache, public Object {
public:
    TimingCache(nvinfer1::ITimingCache&, int parent, int64_t version, std::string device, std::set<std::string> entries);
    nvinfer1::IHostMemory* serialize() const noexcept override;
    bool combine(nvinfer1::ITimingCache const& inputCache, bool ignoreMismatch) noexcept override;

    void add(const std::string& entry);
    int64_t version_;
    std::string device_;
    std::set<std::string> entries_;
};

class Config final : public nvinfer1::apiv::trtforge_stub::StubVBuilderConfig, public Object {
public:
    Config(nvinfer1::IBuilderConfig& pub, int builder);

    void setFlags(nvinfer1::BuilderFlags flags) noexcept override;
    nvinfer1::BuilderFlags getFlags() const noexcept override { return flags_; }
    void clearFlag(nvinfer1::BuilderFlag flag) noexcept override;
    void setFlag(nvinfer1::BuilderFlag flag) noexcept override;
    bool getFlag(nvinfer1::BuilderFlag flag) const noexcept override { return has(flag); }
    void setMemoryPoolLimit(nvinfer1::MemoryPoolType pool, std::size_t size) noexcept override;
    std::size_t getMemoryPoolLimit(nvinfer1::MemoryPoolType pool) const noexcept override;
    void setDLACore(int32_t core) noexcept override;
    int32_t getDLACore() const noexcept override { return dla_core_; }
    void setDefaultDeviceType(nvinfer1::DeviceType type) noexcept override;
    nvinfer1::DeviceType getDefaultDeviceType() const noexcept override { return device_; }
    int32_t getNbOptimizationProfiles() const noexcept override { return static_cast<int32_t>(profiles_.size()); }
    int32_t addOptimizationProfile(nvinfer1::IOptimizationProfile const* profile) noexcept override;
    void setProfilingVerbosity(nvinfer1::ProfilingVerbosity verbosity) noexcept override;
    nvinfer1::ProfilingVerbosity getProfilingVerbosity() const noexcept override { return verbosity_; }
    bool setTacticSources(nvinfer1::TacticSources sources) noexcept override;
    nvinfer1::TacticSources getTacticSources() const noexcept override;
    nvinfer1::ITimingCache* createTimingCache(void const* blob, std::size_t size) const noexcept override;
    bool setTimingCache(nvinfer1::ITimingCache const& cache, bool ignoreMismatch) noexcept override;
    nvinfer1::ITimingCache const* getTimingCache() const noexcept override;
#if TD_AT_LEAST(8, 6)
    void setBuilderOptimizationLevel(int32_t level) noexcept override;
    int32_t getBuilderOptimizationLevel() const noexcept override { return opt_level_; }
    void setHardwareCompatibilityLevel(nvinfer1::HardwareCompatibilityLevel level) noexcept override;
    nvinfer1::HardwareCompatibilityLevel getHardwareCompatibilityLevel() const noexcept override { return hw_; }
#endif
#ifdef TD_HAS_CALIBRATOR
    void setInt8Calibrator(nvinfer1::IInt8Calibrator* calibrator) noexcept override;
    nvinfer1::IInt8Calibrator* getInt8Calibrator() const noexcept override { return calibrator_; }
    bool setCalibrationProfile(nvinfer1::IOptimizationProfile const* profile) noexcept override;
    nvinfer1::IOptimizationProfile const* getCalibrationProfile() noexcept override { return calib_profile_; }
#endif

    bool has(nvinfer1::BuilderFlag f) const { return (flags_ >> static_cast<uint32_t>(f)) & 1U; }

    nvinfer1::BuilderFlags flags_;
    nvinfer1::DeviceType device_ = nvinfer1::DeviceType::kGPU;
    int32_t dla_core_ = -1;
    int32_t opt_level_ = 3;
    nvinfer1::ProfilingVerbosity verbosity_ = nvinfer1::ProfilingVerbosity::kLAYER_NAMES_ONLY;
#if TD_AT_LEAST(8, 6)
    nvinfer1::HardwareCompatibilityLevel hw_ = nvinfer1::HardwareCompatibilityLevel::kNONE;
#endif
    nvinfer1::TacticSources tactics_;
    std::vector<ProfileShapes> profiles_; // copied when added, as TensorRT copies them
    bool calib_profile_set_ = false;
    ProfileShapes calib_profile_shapes_;
    nvinfer1::IOptimizationProfile const* calib_profile_ = nullptr;
#ifdef TD_HAS_CALIBRATOR
    nvinfer1::IInt8Calibrator* calibrator_ = nullptr;
#endif
    nvinfer1::ITimingCache const* timing_ = nullptr; // attached by reference, not owned
    int timing_id_ = 0;
};

class Builder final : public nvinfer1::apiv::trtforge_stub::StubVBuilder, public Object {
public:
    Builder(nvinfer1::IBuilder& pub, nvinfer1::ILogger* logger);

    int32_t getNbDLACores() const noexcept override;
    nvinfer1::IBuilderConfig* createBuilderConfig() noexcept override;
    nvinfer1::INetworkDefinition* createNetworkV2(nvinfer1::NetworkDefinitionCreationFlags flags) noexcept override;
    nvinfer1::IOptimizationProfile* createOptimizationProfile() noexcept override;
    nvinfer1::IHostMemory* buildSerializedNetwork(nvinfer1::INetworkDefinition& network,
                                                  nvinfer1::IBuilderConfig& config) noexcept override;
    nvinfer1::ILogger* getLogger() const noexcept override { return logger_; }

private:
    nvinfer1::ILogger* logger_;
    // TensorRT's builder owns the profiles it creates.
    std::vector<std::unique_ptr<Public<nvinfer1::IOptimizationProfile, Profile>>> profiles_;
};

// The build itself (build.cpp): the plan JSON, or an empty string when TensorRT would fail.
std::string build_plan(Builder& builder, Network& network, Config& config, Json& build);
#ifdef TD_HAS_CALIBRATOR
// Drive the calibrator as the builder does (calibrate.cpp); false when calibration failed.
bool calibrate(Network& network, Config& config, Json& build);
#endif

// ---- runtime side (runtime.cpp, context.cpp) ----

struct PlanIo {
    std::string name;
    bool input = false;
    Dims dims{};
    DataType type = DataType::kFLOAT;
};
struct Plan {
    Json json;
    std::vector<PlanIo> io;
    std::vector<ProfileShapes> profiles;
    int32_t dla_core = -1;
    // Read a plan; false with `err` for bytes that are not one of the double's plans.
    static bool read(const std::string& bytes, Plan& plan, std::string& err);
    const PlanIo* find(const char* name) const;
};

class Runtime final : public nvinfer1::apiv::trtforge_stub::StubVRuntime, public Object {
public:
    Runtime(nvinfer1::IRuntime& pub, nvinfer1::ILogger* logger);
#if NV_TENSORRT_MAJOR >= 10
    using StubVRuntime::deserializeCudaEngine;
    nvinfer1::ICudaEngine* deserializeCudaEngine(void const* blob, std::size_t size) noexcept override;
#else
    nvinfer1::ICudaEngine* deserializeCudaEngine(void const* blob, std::size_t size,
                                                 nvinfer1::IPluginFactory*) noexcept override;
#endif
    void setDLACore(int32_t core) noexcept override;
    int32_t getDLACore() const noexcept override { return dla_core_; }
    int32_t getNbDLACores() const noexcept override;
    nvinfer1::ILogger* getLogger() const noexcept override { return logger_; }

private:
    nvinfer1::ICudaEngine* deserialize(void const* blob, std::size_t size);
    nvinfer1::ILogger* logger_;
    int32_t dla_core_ = -1;
    bool dla_core_set_ = false;
};

class Engine final : public nvinfer1::apiv::trtforge_stub::StubVCudaEngine, public Object {
public:
    Engine(nvinfer1::ICudaEngine& pub, int runtime, Plan plan);
    nvinfer1::ICudaEngine& pub() { return pub_; }

    int32_t getNbLayers() const noexcept override;
    char const* getName() const noexcept override { return name_.c_str(); }
    int32_t getNbIOTensors() const noexcept override { return static_cast<int32_t>(plan_.io.size()); }
    char const* getIOTensorName(int32_t index) const noexcept override;
    nvinfer1::TensorIOMode getTensorIOMode(char const* name) const noexcept override;
    Dims getTensorShape(char const* name) const noexcept override;
    DataType getTensorDataType(char const* name) const noexcept override;
    int32_t getNbOptimizationProfiles() const noexcept override { return static_cast<int32_t>(plan_.profiles.size()); }
    Dims getProfileShape(char const* name, int32_t profile, nvinfer1::OptProfileSelector select) const noexcept override;
    nvinfer1::IEngineInspector* createEngineInspector() const noexcept override;
#if NV_TENSORRT_MAJOR >= 10
    nvinfer1::IExecutionContext* createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy) noexcept override;
#else
    nvinfer1::IExecutionContext* createExecutionContext() noexcept override;
#endif
    nvinfer1::ProfilingVerbosity getProfilingVerbosity() const noexcept override;

    // The inspector's kJSON answer (layer information shaped like TensorRT's).
    std::string information() const;
    const Plan& plan() const { return plan_; }

private:
    nvinfer1::ICudaEngine& pub_;
    Plan plan_;
    std::string name_;
};

class Inspector final : public nvinfer1::apiv::trtforge_stub::StubVEngineInspector, public Object {
public:
    Inspector(nvinfer1::IEngineInspector&, const Engine& engine) : Object("inspector", engine.id()), engine_(engine) {}
    // Both check that the engine (the parent) is alive before touching it.
    char const* getEngineInformation(nvinfer1::LayerInformationFormat format) const noexcept override;
    char const* getLayerInformation(int32_t index, nvinfer1::LayerInformationFormat format) const noexcept override;
    bool setExecutionContext(nvinfer1::IExecutionContext const*) noexcept override { return true; }

private:
    const Engine& engine_;
    mutable std::string text_;
};

class Context final : public nvinfer1::apiv::trtforge_stub::StubVExecutionContext, public Object {
public:
    Context(nvinfer1::IExecutionContext&, Engine& engine);
    // Whether the engine is still there (else a violation): checked before touching it.
    bool engine_alive(const char* what) const;

    nvinfer1::ICudaEngine const& getEngine() const noexcept override { return engine_.pub(); }
    int32_t getOptimizationProfile() const noexcept override { return 0; }
    bool allInputDimensionsSpecified() const noexcept override;
    bool setInputShape(char const* name, Dims const& dims) noexcept override;
    Dims getTensorShape(char const* name) const noexcept override;
    bool setTensorAddress(char const* name, void* data) noexcept override;
    void const* getTensorAddress(char const* name) const noexcept override;
    bool enqueueV3(cudaStream_t stream) noexcept override;

private:
    Engine& engine_;
    std::map<std::string, Dims> shapes_;
    std::map<std::string, void*> addresses_;
};

} // namespace trtforge_double
