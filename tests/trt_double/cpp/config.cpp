// The builder config: every setting is recorded (values and the order of calls), and the
// timing cache follows ITimingCache's documented verification rules.
#include "double.hpp"

namespace trtforge_double {

namespace {

nvinfer1::TacticSources default_tactics() {
    using T = nvinfer1::TacticSource;
    auto bit = [](T t) { return 1U << static_cast<uint32_t>(t); };
#if NV_TENSORRT_MAJOR >= 10
    // cuBLAS, cuBLASLt and cuDNN are off by default from TensorRT 10 on.
    return bit(T::kEDGE_MASK_CONVOLUTIONS) | bit(T::kJIT_CONVOLUTIONS);
#else
    return bit(T::kCUBLAS) | bit(T::kCUBLAS_LT) | bit(T::kCUDNN) | bit(T::kEDGE_MASK_CONVOLUTIONS) |
           bit(T::kJIT_CONVOLUTIONS);
#endif
}

const char* pool_name(nvinfer1::MemoryPoolType p) {
    switch (p) {
    case nvinfer1::MemoryPoolType::kWORKSPACE: return "kWORKSPACE";
    case nvinfer1::MemoryPoolType::kDLA_MANAGED_SRAM: return "kDLA_MANAGED_SRAM";
    case nvinfer1::MemoryPoolType::kDLA_LOCAL_DRAM: return "kDLA_LOCAL_DRAM";
    case nvinfer1::MemoryPoolType::kDLA_GLOBAL_DRAM: return "kDLA_GLOBAL_DRAM";
    default: return "other";
    }
}

const char* verbosity_name(nvinfer1::ProfilingVerbosity v) {
    switch (v) {
    case nvinfer1::ProfilingVerbosity::kLAYER_NAMES_ONLY: return "kLAYER_NAMES_ONLY";
    case nvinfer1::ProfilingVerbosity::kNONE: return "kNONE";
    case nvinfer1::ProfilingVerbosity::kDETAILED: return "kDETAILED";
    default: return "other";
    }
}

Json flag_list(nvinfer1::BuilderFlags flags) {
    Json j = Json::array();
    for (int32_t i = 0; i < 32; ++i) {
        if ((flags >> i) & 1U) j.push(flag_name(i));
    }
    return j;
}

} // namespace

Config::Config(nvinfer1::IBuilderConfig&, int builder) : Object("config", builder) {
    // TF32 is on by default in every version the shim supports.
    flags_ = 1U << static_cast<uint32_t>(nvinfer1::BuilderFlag::kTF32);
    tactics_ = default_tactics();
    rec()["flags"] = flag_list(flags_);
    rec()["flags_set"] = Json::array();
    rec()["flags_cleared"] = Json::array();
    rec()["device_type"] = "kGPU";
    rec()["dla_core"] = dla_core_;
    rec()["tactic_sources"] = static_cast<int64_t>(tactics_);
    rec()["profiles"] = Json::array();
}

void Config::setFlags(nvinfer1::BuilderFlags flags) noexcept {
    Lock lock(state().mu);
    call("setFlags(" + hex(flags) + ")");
    flags_ = flags;
    rec()["flags"] = flag_list(flags_);
}

void Config::setFlag(nvinfer1::BuilderFlag flag) noexcept {
    Lock lock(state().mu);
    std::string name = flag_name(static_cast<int32_t>(flag));
    call("setFlag(" + name + ")");
    flags_ |= 1U << static_cast<uint32_t>(flag);
    rec()["flags_set"].push(name);
    rec()["flags"] = flag_list(flags_);
}

void Config::clearFlag(nvinfer1::BuilderFlag flag) noexcept {
    Lock lock(state().mu);
    std::string name = flag_name(static_cast<int32_t>(flag));
    call("clearFlag(" + name + ")");
    flags_ &= ~(1U << static_cast<uint32_t>(flag));
    rec()["flags_cleared"].push(name);
    rec()["flags"] = flag_list(flags_);
}

void Config::setMemoryPoolLimit(nvinfer1::MemoryPoolType pool, std::size_t size) noexcept {
    Lock lock(state().mu);
    call(std::string("setMemoryPoolLimit(") + pool_name(pool) + ")");
    rec()["pools"][pool_name(pool)] = static_cast<int64_t>(size);
}

std::size_t Config::getMemoryPoolLimit(nvinfer1::MemoryPoolType pool) const noexcept {
    Lock lock(state().mu);
    const Json* p = rec().get("pools");
    const Json* v = p ? p->get(pool_name(pool)) : nullptr;
    return v ? static_cast<std::size_t>(v->as_int()) : 0;
}

void Config::setDLACore(int32_t core) noexcept {
    Lock lock(state().mu);
    call("setDLACore(" + std::to_string(core) + ")");
    dla_core_ = core;
    rec()["dla_core"] = core;
}

void Config::setDefaultDeviceType(nvinfer1::DeviceType type) noexcept {
    Lock lock(state().mu);
    const char* name = type == nvinfer1::DeviceType::kDLA ? "kDLA" : "kGPU";
    call(std::string("setDefaultDeviceType(") + name + ")");
    device_ = type;
    rec()["device_type"] = name;
}

// TensorRT copies the profile's shapes; an invalid profile is refused with -1.
int32_t Config::addOptimizationProfile(nvinfer1::IOptimizationProfile const* profile) noexcept {
    Lock lock(state().mu);
    call("addOptimizationProfile");
    Profile* p = lookup<Profile>(profile);
    if (!p) {
        violation("foreign-object", "addOptimizationProfile with a profile the double did not make");
        return -1;
    }
    if (!p->isValid()) {
        log(nvinfer1::ILogger::Severity::kERROR, "addOptimizationProfile: invalid profile");
        return -1;
    }
    profiles_.push_back(p->shapes_);
    rec()["profiles"].push(profile_json(p->shapes_));
    return static_cast<int32_t>(profiles_.size()) - 1;
}

void Config::setProfilingVerbosity(nvinfer1::ProfilingVerbosity verbosity) noexcept {
    Lock lock(state().mu);
    call(std::string("setProfilingVerbosity(") + verbosity_name(verbosity) + ")");
    verbosity_ = verbosity;
    rec()["profiling_verbosity"] = verbosity_name(verbosity);
}

bool Config::setTacticSources(nvinfer1::TacticSources sources) noexcept {
    Lock lock(state().mu);
    call("setTacticSources(" + hex(sources) + ")");
    tactics_ = sources;
    rec()["tactic_sources"] = static_cast<int64_t>(sources);
    return true;
}

nvinfer1::TacticSources Config::getTacticSources() const noexcept {
    Lock lock(state().mu);
    call("getTacticSources");
    return tactics_;
}

#if TD_AT_LEAST(8, 6)
void Config::setBuilderOptimizationLevel(int32_t level) noexcept {
    Lock lock(state().mu);
    call("setBuilderOptimizationLevel(" + std::to_string(level) + ")");
    opt_level_ = level;
    rec()["optimization_level"] = level;
}

void Config::setHardwareCompatibilityLevel(nvinfer1::HardwareCompatibilityLevel level) noexcept {
    Lock lock(state().mu);
    call("setHardwareCompatibilityLevel(" + std::to_string(static_cast<int32_t>(level)) + ")");
    hw_ = level;
    rec()["hardware_compatibility_level"] = static_cast<int32_t>(level);
}
#endif

#ifdef TD_HAS_CALIBRATOR
void Config::setInt8Calibrator(nvinfer1::IInt8Calibrator* calibrator) noexcept {
    Lock lock(state().mu);
    call(calibrator ? "setInt8Calibrator" : "setInt8Calibrator(nullptr)");
    calibrator_ = calibrator;
    rec()["calibrator_set"] = calibrator != nullptr;
}

bool Config::setCalibrationProfile(nvinfer1::IOptimizationProfile const* profile) noexcept {
    Lock lock(state().mu);
    call("setCalibrationProfile");
    Profile* p = profile ? lookup<Profile>(profile) : nullptr;
    if (profile && !p) {
        violation("foreign-object", "setCalibrationProfile with a profile the double did not make");
        return false;
    }
    if (p && !p->isValid()) return false;
    calib_profile_ = profile;
    calib_profile_set_ = p != nullptr;
    calib_profile_shapes_ = p ? p->shapes_ : ProfileShapes{};
    rec()["calibration_profile"] = p ? profile_json(p->shapes_) : Json();
    return true;
}
#endif

// A new cache (no bytes), or one the double serialized; anything else is corrupt (nullptr),
// which is what TensorRT does with bytes that are not a timing cache.
nvinfer1::ITimingCache* Config::createTimingCache(void const* blob, std::size_t size) const noexcept {
    Lock lock(state().mu);
    call("createTimingCache(" + std::to_string(blob ? size : 0) + " bytes)");
    int64_t version = NV_TENSORRT_VERSION;
    std::string device = state().knobs.device;
    std::set<std::string> entries;
    if (blob && size > 0) {
        std::string bytes(static_cast<const char*>(blob), size);
        std::string magic(kTimingCacheMagic);
        Json j;
        std::string err;
        bool ok = bytes.compare(0, magic.size(), magic) == 0 && Json::parse(bytes.substr(magic.size()), j, err) &&
                  j.get("version") && j.get("device") && j.get("entries") && j.get("entries")->is_array();
        if (!ok) {
            rec()["timing_cache_rejected"] = true;
            log(nvinfer1::ILogger::Severity::kERROR, "createTimingCache: the blob is not a timing cache (corrupt)");
            return nullptr;
        }
        version = j.get("version")->as_int();
        device = j.get("device")->as_str();
        for (const auto& e : j.get("entries")->items()) entries.insert(e.as_str());
    }
    return new Public<nvinfer1::ITimingCache, TimingCache>(id(), version, device, entries);
}

// "A failure will be reported if the CUDA device property in the provided cache is different
// from current environment. ignoreMismatch = true skips strict verification" (setTimingCache).
bool Config::setTimingCache(nvinfer1::ITimingCache const& cache, bool ignoreMismatch) noexcept {
    Lock lock(state().mu);
    call(std::string("setTimingCache(ignoreMismatch=") + (ignoreMismatch ? "true" : "false") + ")");
    TimingCache* t = lookup<TimingCache>(&cache);
    Json r = Json::object();
    r["cache"] = t ? t->id() : 0;
    r["ignore_mismatch"] = ignoreMismatch;
    if (!t) {
        violation("foreign-object", "setTimingCache with a cache the double did not make");
        return false;
    }
    bool mismatch = t->version_ != NV_TENSORRT_VERSION || t->device_ != state().knobs.device;
    r["mismatch"] = mismatch;
    rec()["timing_cache"] = r;
    if (mismatch && !ignoreMismatch) {
        log(nvinfer1::ILogger::Severity::kERROR, "setTimingCache: the cache comes from another device or version");
        return false;
    }
    if (mismatch) {
        log(nvinfer1::ILogger::Severity::kWARNING, "setTimingCache: device or version mismatch ignored");
    }
    timing_ = &cache;
    timing_id_ = t->id();
    return true;
}

nvinfer1::ITimingCache const* Config::getTimingCache() const noexcept {
    Lock lock(state().mu);
    call("getTimingCache");
    // TensorRT keeps a reference: a destroyed cache would be a dangling pointer.
    if (timing_ && !alive(timing_id_)) {
        violation("timing-cache-destroyed", "getTimingCache after the attached cache was destroyed");
        return nullptr;
    }
    return timing_;
}

} // namespace trtforge_double
