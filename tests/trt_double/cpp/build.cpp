// buildSerializedNetwork: the rules checked before a build, calibration, and the plan (JSON
// describing what TensorRT would have built; never an engine).
#include "double.hpp"

namespace trtforge_double {

namespace {

using nvinfer1::BuilderFlag;

bool fail(Json& b, const std::string& why) {
    b["error"] = why;
    return false;
}

// Dynamic inputs need a profile giving all their shapes, consistent with the static dims.
bool check_profiles(Network& net, Config& cfg, Json& b) {
    for (Tensor* in : net.inputs_) {
        if (!has_dynamic(in->dims_)) continue;
        if (cfg.profiles_.empty()) {
            violation("dynamic-input-without-profile",
                      "input " + in->name_ + " is dynamic but the config has no optimization profile");
            return fail(b, "no optimization profile for dynamic input " + in->name_);
        }
        for (size_t p = 0; p < cfg.profiles_.size(); ++p) {
            auto it = cfg.profiles_[p].find(in->name_);
            if (it == cfg.profiles_[p].end()) {
                return fail(b, "optimization profile " + std::to_string(p) + " has no shapes for input " + in->name_);
            }
            for (const Dims& d : it->second.d) {
                bool fits = d.nbDims == in->dims_.nbDims;
                for (int32_t i = 0; fits && i < d.nbDims; ++i) {
                    fits = in->dims_.d[i] < 0 || in->dims_.d[i] == d.d[i];
                }
                if (!fits) {
                    return fail(b, "optimization profile " + std::to_string(p) + " does not fit input " + in->name_);
                }
            }
        }
    }
    return true;
}

// DLA rules: the core must exist; DLA runs FP16 or INT8 only; MinMax calibration is not
// supported on DLA; without GPU fallback the I/O must not be reformatted (trtexec sets
// kDIRECT_IO, samples/common/sampleEngines.cpp).
bool check_dla(Config& cfg, Json& b) {
    int cores = state().knobs.dla_cores;
    if (cfg.dla_core_ < 0 || cfg.dla_core_ >= cores) {
        violation("dla-core-out-of-range", "DLA core " + std::to_string(cfg.dla_core_) + " asked for, " +
                                               std::to_string(cores) + " core(s) here");
        return fail(b, "no such DLA core");
    }
#ifdef TD_HAS_CALIBRATOR
    if (!cfg.has(BuilderFlag::kFP16) && !cfg.has(BuilderFlag::kINT8)) {
        violation("dla-fp32", "a DLA build without kFP16 or kINT8: DLA has no FP32");
        return fail(b, "FP32 on DLA");
    }
    if (cfg.has(BuilderFlag::kINT8) && cfg.calibrator_ &&
        cfg.calibrator_->getAlgorithm() == nvinfer1::CalibrationAlgoType::kMINMAX_CALIBRATION) {
        violation("dla-minmax-calibrator", "IInt8MinMaxCalibrator is not supported on DLA");
        return fail(b, "MinMax calibration on DLA");
    }
#endif
    if (!cfg.has(BuilderFlag::kGPU_FALLBACK) && !cfg.has(BuilderFlag::kDIRECT_IO)) {
        violation("dla-without-direct-io", "a DLA build without kGPU_FALLBACK needs kDIRECT_IO");
        return fail(b, "DLA without GPU fallback or direct I/O");
    }
    return true;
}

std::string layer_kind(const Layer& l) {
    switch (l.getType()) {
    case nvinfer1::LayerType::kCONVOLUTION: return "Convolution";
    case nvinfer1::LayerType::kACTIVATION: return "Activation";
    case nvinfer1::LayerType::kQUANTIZE: return "Quantize";
    case nvinfer1::LayerType::kDEQUANTIZE: return "Dequantize";
    default: return l.op_;
    }
}

DataType layer_precision(const Layer& l, const Network& net, const Config& cfg, bool int8_scales) {
    if (l.precision_set_) return l.precision_;
    if (net.strongly_typed()) return l.outputs_.empty() ? DataType::kFLOAT : l.outputs_[0]->type_;
#ifdef TD_HAS_CALIBRATOR
    if (cfg.has(BuilderFlag::kINT8) && int8_scales && l.getType() == nvinfer1::LayerType::kCONVOLUTION) {
        return DataType::kINT8;
    }
    if (cfg.has(BuilderFlag::kFP16)) return DataType::kHALF;
#else
    (void)cfg;
    (void)int8_scales;
#endif
    return DataType::kFLOAT;
}

} // namespace

std::string build_plan(Builder&, Network& net, Config& cfg, Json& b) {
    // TensorRT holds the parser's weights by reference until the engine is built.
    if (net.parser_ && !net.parser_alive_) {
        violation("parser-destroyed-before-build",
                  "network " + std::to_string(net.id()) + " was filled by parser " + std::to_string(net.parser_) +
                      ", destroyed before buildSerializedNetwork");
        fail(b, "the parser that filled the network is gone (its weights with it)");
        return {};
    }
    if (net.outputs_.empty()) {
        fail(b, "the network has no outputs");
        return {};
    }
    if (!check_profiles(net, cfg, b)) return {};
    TimingCache* cache = nullptr;
    if (cfg.timing_) {
        cache = dynamic_cast<TimingCache*>(live_object(cfg.timing_id_));
        if (!cache) {
            violation("timing-cache-destroyed-before-build", "the attached timing cache was destroyed before the build");
            fail(b, "timing cache destroyed");
            return {};
        }
    }
    bool dla = cfg.device_ == nvinfer1::DeviceType::kDLA;
    if (dla && !check_dla(cfg, b)) return {};

    bool calibrated = false;
    bool qdq = net.has_qdq();
    b["explicit_quantization"] = qdq;
#ifdef TD_HAS_CALIBRATOR
    if (cfg.has(BuilderFlag::kINT8)) {
        if (cfg.calibrator_ && qdq) {
            // Explicit quantization: TensorRT warns and does not call the calibrator.
            b["calibrator_ignored"] = true;
            log(nvinfer1::ILogger::Severity::kWARNING, "calibrator ignored: the network has Q/DQ layers");
        } else if (cfg.calibrator_) {
            if (!calibrate(net, cfg, b)) return {};
            calibrated = true;
        } else if (!qdq) {
            b["int8_without_scales"] = true;
            log(nvinfer1::ILogger::Severity::kWARNING, "kINT8 without calibrator or Q/DQ: missing scales");
        }
    }
#endif

    Json plan = Json::object();
    plan["format"] = "trtforge-double-plan";
    plan["trt_version"] = static_cast<int64_t>(NV_TENSORRT_VERSION);
    plan["network"] = net.name_;
    Json io = Json::array();
    for (int pass = 0; pass < 2; ++pass) {
        for (Tensor* t : pass == 0 ? net.inputs_ : net.outputs_) {
            Json j = Json::object();
            j["name"] = t->name_;
            j["input"] = pass == 0;
            j["dims"] = dims_json(t->dims_);
            j["dtype"] = static_cast<int32_t>(t->type_);
            io.push(j);
        }
    }
    plan["io"] = io;
    Json profiles = Json::array();
    for (const auto& p : cfg.profiles_) profiles.push(profile_json(p));
    plan["profiles"] = profiles;
    Json layers = Json::array();
    for (const auto& lp : net.layers_) {
        const Layer& l = lp->impl;
        Json j = Json::object();
        j["name"] = l.name_;
        j["type"] = layer_kind(l);
        j["device"] = dla ? "DLA" : "GPU";
        j["precision"] = dtype_name(layer_precision(l, net, cfg, calibrated || qdq));
        Json ins = Json::array();
        for (Tensor* t : l.inputs_) ins.push(t->name_);
        j["inputs"] = ins;
        Json outs = Json::array();
        for (Tensor* t : l.outputs_) outs.push(t->name_);
        j["outputs"] = outs;
        layers.push(j);
    }
    plan["layers"] = layers;
    plan["dla_core"] = dla ? cfg.dla_core_ : -1;
    plan["flags"] = static_cast<int64_t>(cfg.flags_);
    plan["profiling_verbosity"] = static_cast<int32_t>(cfg.verbosity_);
    plan["calibrated"] = calibrated;
    plan["strongly_typed"] = net.strongly_typed();
    std::string entry = net.name_ + "|flags=" + hex(cfg.flags_) + "|" + (dla ? "DLA" : "GPU");
    plan["timing_cache_entry"] = entry;
    if (cache) cache->add(entry);
    b["plan"] = plan;
    return plan.dump();
}

} // namespace trtforge_double
