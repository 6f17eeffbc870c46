// The builder configuration, optimization profiles and the timing cache. Version differences
// are `#if` on NvInferVersion.h; a setting a version lacks is TRTFORGE_UNSUPPORTED, never
// silently dropped.
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

using namespace nvinfer1;
using trtforge::fail;
using trtforge::unsupported;
using trtforge::wall;

extern "C" int32_t trtforge_config_create(trtforge_builder* builder, trtforge_config** out) {
    return wall("trtforge_config_create", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_config_create");
        std::unique_ptr<IBuilderConfig> c(builder->b->createBuilderConfig());
        if (!c) return fail("trtforge_config_create", "createBuilderConfig failed");
        *out = new trtforge_config{std::move(c), nullptr};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_config_destroy(trtforge_config* config) {
    delete config;
}

namespace {

// The BuilderFlag for one of ours, or false when this version has none.
bool builder_flag(int32_t flag, BuilderFlag& out) {
    switch (flag) {
#if NV_TENSORRT_MAJOR < 11
    case TRTFORGE_FLAG_FP16: out = BuilderFlag::kFP16; return true;
    case TRTFORGE_FLAG_INT8: out = BuilderFlag::kINT8; return true;
    case TRTFORGE_FLAG_OBEY_PRECISION_CONSTRAINTS: out = BuilderFlag::kOBEY_PRECISION_CONSTRAINTS; return true;
    case TRTFORGE_FLAG_PREFER_PRECISION_CONSTRAINTS: out = BuilderFlag::kPREFER_PRECISION_CONSTRAINTS; return true;
#endif
    case TRTFORGE_FLAG_GPU_FALLBACK: out = BuilderFlag::kGPU_FALLBACK; return true;
    case TRTFORGE_FLAG_DIRECT_IO: out = BuilderFlag::kDIRECT_IO; return true;
    case TRTFORGE_FLAG_SPARSE_WEIGHTS: out = BuilderFlag::kSPARSE_WEIGHTS; return true;
#if TRT_VERSION_AT_LEAST(8, 6)
    case TRTFORGE_FLAG_VERSION_COMPATIBLE: out = BuilderFlag::kVERSION_COMPATIBLE; return true;
    case TRTFORGE_FLAG_EXCLUDE_LEAN_RUNTIME: out = BuilderFlag::kEXCLUDE_LEAN_RUNTIME; return true;
#endif
    default: return false;
    }
}

} // namespace

extern "C" int32_t trtforge_config_set_flag(trtforge_config* config, int32_t flag, int32_t on) {
    return wall("trtforge_config_set_flag", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_flag");
        BuilderFlag f{};
        if (!builder_flag(flag, f)) {
            return unsupported("trtforge_config_set_flag",
                               "builder flag " + std::to_string(flag) + " does not exist in TensorRT " +
                                   std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR));
        }
        if (on) {
            config->c->setFlag(f);
        } else {
            config->c->clearFlag(f);
        }
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_memory_pool(trtforge_config* config, int32_t pool, uint64_t bytes) {
    return wall("trtforge_config_set_memory_pool", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_memory_pool");
        MemoryPoolType t{};
        switch (pool) {
        case TRTFORGE_POOL_WORKSPACE: t = MemoryPoolType::kWORKSPACE; break;
        case TRTFORGE_POOL_DLA_MANAGED_SRAM: t = MemoryPoolType::kDLA_MANAGED_SRAM; break;
        case TRTFORGE_POOL_DLA_LOCAL_DRAM: t = MemoryPoolType::kDLA_LOCAL_DRAM; break;
        case TRTFORGE_POOL_DLA_GLOBAL_DRAM: t = MemoryPoolType::kDLA_GLOBAL_DRAM; break;
        default: return fail("trtforge_config_set_memory_pool", "unknown pool " + std::to_string(pool));
        }
        config->c->setMemoryPoolLimit(t, static_cast<size_t>(bytes));
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_device(trtforge_config* config, int32_t core) {
    return wall("trtforge_config_set_device", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_device");
        if (core < 0) {
            config->c->setDefaultDeviceType(DeviceType::kGPU);
            return TRTFORGE_OK;
        }
        config->c->setDefaultDeviceType(DeviceType::kDLA);
        config->c->setDLACore(core);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_optimization_level(trtforge_config* config, int32_t level) {
    return wall("trtforge_config_set_optimization_level", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_optimization_level");
#if TRT_VERSION_AT_LEAST(8, 6)
        config->c->setBuilderOptimizationLevel(level);
        return TRTFORGE_OK;
#else
        (void)level;
        return unsupported("trtforge_config_set_optimization_level", "builder optimization levels need TensorRT 8.6 or newer");
#endif
    });
}

extern "C" int32_t trtforge_config_set_profiling_verbosity(trtforge_config* config, int32_t verbosity) {
    return wall("trtforge_config_set_profiling_verbosity", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_profiling_verbosity");
        if (verbosity < 0 || verbosity > 2) {
            return fail("trtforge_config_set_profiling_verbosity", "unknown verbosity " + std::to_string(verbosity));
        }
        config->c->setProfilingVerbosity(static_cast<ProfilingVerbosity>(verbosity));
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_tactic_sources(trtforge_config* config, uint32_t enable, uint32_t disable) {
    return wall("trtforge_config_set_tactic_sources", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_tactic_sources");
        // TensorRT numbers its sources by name, and the numbers changed in 11: map ours by name.
        struct Map {
            uint32_t ours;
            int32_t trt; // -1: not in this version
        };
        const Map map[] = {
#if NV_TENSORRT_MAJOR < 11
            {TRTFORGE_TACTIC_CUBLAS, static_cast<int32_t>(TacticSource::kCUBLAS)},
            {TRTFORGE_TACTIC_CUBLAS_LT, static_cast<int32_t>(TacticSource::kCUBLAS_LT)},
            {TRTFORGE_TACTIC_CUDNN, static_cast<int32_t>(TacticSource::kCUDNN)},
#else
            {TRTFORGE_TACTIC_CUBLAS, -1},
            {TRTFORGE_TACTIC_CUBLAS_LT, -1},
            {TRTFORGE_TACTIC_CUDNN, -1},
#endif
            {TRTFORGE_TACTIC_EDGE_MASK_CONVOLUTIONS, static_cast<int32_t>(TacticSource::kEDGE_MASK_CONVOLUTIONS)},
            {TRTFORGE_TACTIC_JIT_CONVOLUTIONS, static_cast<int32_t>(TacticSource::kJIT_CONVOLUTIONS)},
        };
        uint32_t known = 0;
        TacticSources sources = config->c->getTacticSources();
        for (const Map& m : map) {
            known |= m.ours;
            if (!((enable | disable) & m.ours)) continue;
            if (m.trt < 0) {
                return unsupported("trtforge_config_set_tactic_sources",
                                   "tactic source " + std::to_string(m.ours) + " does not exist in TensorRT 11");
            }
            TacticSources bit = 1U << static_cast<uint32_t>(m.trt);
            if (enable & m.ours) sources |= bit;
            if (disable & m.ours) sources &= ~bit;
        }
        if ((enable | disable) & ~known) return fail("trtforge_config_set_tactic_sources", "unknown tactic source bits");
        if (!config->c->setTacticSources(sources)) {
            return fail("trtforge_config_set_tactic_sources", "TensorRT rejected the tactic sources");
        }
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_set_hardware_compatibility(trtforge_config* config, int32_t level) {
    return wall("trtforge_config_set_hardware_compatibility", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_hardware_compatibility");
#if TRT_VERSION_AT_LEAST(8, 6)
        config->c->setHardwareCompatibilityLevel(static_cast<HardwareCompatibilityLevel>(level));
        return TRTFORGE_OK;
#else
        (void)level;
        return unsupported("trtforge_config_set_hardware_compatibility",
                           "hardware compatibility levels need TensorRT 8.6 or newer");
#endif
    });
}

extern "C" int32_t trtforge_config_set_calibrator(trtforge_config* config, trtforge_calibrator* calibrator) {
    return wall("trtforge_config_set_calibrator", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_calibrator");
#if NV_TENSORRT_MAJOR >= 11
        (void)calibrator;
        return unsupported("trtforge_config_set_calibrator", "TensorRT 11 has no calibrator: build from a Q/DQ model");
#else
        config->c->setInt8Calibrator(trtforge_calibrator_as_trt(calibrator));
        return TRTFORGE_OK;
#endif
    });
}

extern "C" int32_t trtforge_config_set_timing_cache(trtforge_config* config, const void* data, size_t length) {
    return wall("trtforge_config_set_timing_cache", [&]() -> int32_t {
        REQUIRE(config, "trtforge_config_set_timing_cache");
        std::unique_ptr<ITimingCache> cache(config->c->createTimingCache(data, data ? length : 0));
        if (!cache) return fail("trtforge_config_set_timing_cache", "createTimingCache failed: the cache is corrupt");
        // ignoreMismatch = true, as trtexec (samples/utils/timingCache.cpp): a cache from another
        // device or version is then ignored with a warning instead of failing every build.
        if (!config->c->setTimingCache(*cache, true)) {
            return fail("trtforge_config_set_timing_cache", "TensorRT refused the timing cache");
        }
        config->timing = std::move(cache);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_merge_timing_cache(trtforge_config* config, const void* file_data, size_t length,
                                                      trtforge_bytes** out, int32_t* combined) {
    return wall("trtforge_config_merge_timing_cache", [&]() -> int32_t {
        REQUIRE(config && out && combined, "trtforge_config_merge_timing_cache");
        const ITimingCache* ours = config->c->getTimingCache();
        if (!ours) return fail("trtforge_config_merge_timing_cache", "no timing cache attached");
        // The file as it is now (another build may have written it since ours was loaded), then
        // ours combined into it, as trtexec's updateTimingCacheFile does.
        std::unique_ptr<ITimingCache> file(config->c->createTimingCache(file_data, file_data ? length : 0));
        if (!file) return fail("trtforge_config_merge_timing_cache", "the timing cache file is corrupt");
        // A mismatch (another device or version) leaves the file's cache as it is.
        *combined = file->combine(*ours, false) ? 1 : 0;
        std::unique_ptr<IHostMemory> mem(file->serialize());
        if (!mem) return fail("trtforge_config_merge_timing_cache", "serializing the timing cache failed");
        *out = new trtforge_bytes{std::move(mem), {}};
        return TRTFORGE_OK;
    });
}

// ---- optimization profiles ----

extern "C" int32_t trtforge_profile_create(trtforge_builder* builder, trtforge_profile** out) {
    return wall("trtforge_profile_create", [&]() -> int32_t {
        REQUIRE(builder && out, "trtforge_profile_create");
        IOptimizationProfile* p = builder->b->createOptimizationProfile();
        if (!p) return fail("trtforge_profile_create", "createOptimizationProfile failed");
        *out = new trtforge_profile{p};
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_profile_destroy(trtforge_profile* profile) {
    delete profile;
}

extern "C" int32_t trtforge_profile_set(trtforge_profile* profile, const char* input, int32_t nb_dims,
                                        const int64_t* min, const int64_t* opt, const int64_t* max) {
    return wall("trtforge_profile_set", [&]() -> int32_t {
        REQUIRE(profile && input && min && opt && max, "trtforge_profile_set");
        Dims dmin{}, dopt{}, dmax{};
        if (!trtforge::make_dims(nb_dims, min, dmin) || !trtforge::make_dims(nb_dims, opt, dopt) ||
            !trtforge::make_dims(nb_dims, max, dmax)) {
            return fail("trtforge_profile_set", "rank out of range");
        }
        bool ok = profile->p->setDimensions(input, OptProfileSelector::kMIN, dmin) &&
                  profile->p->setDimensions(input, OptProfileSelector::kOPT, dopt) &&
                  profile->p->setDimensions(input, OptProfileSelector::kMAX, dmax);
        if (!ok) return fail("trtforge_profile_set", std::string("TensorRT rejected the shapes for input ") + input);
        return TRTFORGE_OK;
    });
}

extern "C" int32_t trtforge_config_add_profile(trtforge_config* config, trtforge_profile* profile,
                                               int32_t calibration) {
    return wall("trtforge_config_add_profile", [&]() -> int32_t {
        REQUIRE(config && profile, "trtforge_config_add_profile");
#if NV_TENSORRT_MAJOR >= 11
        // Refuse before touching the config: an UNSUPPORTED call must leave nothing behind.
        if (calibration) {
            return unsupported("trtforge_config_add_profile", "TensorRT 11 has no calibration profile (no calibrator)");
        }
#endif
        if (config->c->addOptimizationProfile(profile->p) < 0) {
            return fail("trtforge_config_add_profile", "invalid optimization profile (see the TensorRT log)");
        }
#if NV_TENSORRT_MAJOR < 11
        if (calibration && !config->c->setCalibrationProfile(profile->p)) {
            return fail("trtforge_config_add_profile", "TensorRT rejected the calibration profile");
        }
#endif
        return TRTFORGE_OK;
    });
}
