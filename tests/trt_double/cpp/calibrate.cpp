// Implicit INT8 calibration, driven the way TensorRT's builder drives an IInt8Calibrator:
// readCalibrationCache first (a cache means no batches), then getBatchSize, then getBatch until
// it returns false, reading volume(dims) * sizeof(type) bytes from every binding, then
// writeCalibrationCache. dims are the input's static dims, or for a dynamic input the
// calibration profile's kOPT, else the first profile's kOPT.
#include "double.hpp"

#ifdef TD_HAS_CALIBRATOR

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace trtforge_double {

namespace {

float half_to_float(uint16_t h) {
    uint32_t sign = (h >> 15) & 1U, exp = (h >> 10) & 0x1FU, man = h & 0x3FFU;
    float v;
    if (exp == 0) {
        v = std::ldexp(static_cast<float>(man), -24);
    } else if (exp == 31) {
        v = man ? NAN : INFINITY;
    } else {
        v = std::ldexp(static_cast<float>(man | 0x400U), static_cast<int>(exp) - 25);
    }
    return sign ? -v : v;
}

std::string scale_hex(float scale) {
    uint32_t bits = 0;
    std::memcpy(&bits, &scale, sizeof bits);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", bits);
    return buf;
}

const char* algorithm_name(nvinfer1::CalibrationAlgoType a) {
    switch (a) {
    case nvinfer1::CalibrationAlgoType::kLEGACY_CALIBRATION: return "kLEGACY_CALIBRATION";
    case nvinfer1::CalibrationAlgoType::kENTROPY_CALIBRATION: return "kENTROPY_CALIBRATION";
    case nvinfer1::CalibrationAlgoType::kENTROPY_CALIBRATION_2: return "kENTROPY_CALIBRATION_2";
    case nvinfer1::CalibrationAlgoType::kMINMAX_CALIBRATION: return "kMINMAX_CALIBRATION";
    default: return "other";
    }
}

// The cache header TensorRT writes (`TRT-<NV_TENSORRT_VERSION>-<algorithm>`).
const char* cache_algorithm(nvinfer1::CalibrationAlgoType a) {
    switch (a) {
    case nvinfer1::CalibrationAlgoType::kMINMAX_CALIBRATION: return "MinMaxCalibration";
    case nvinfer1::CalibrationAlgoType::kENTROPY_CALIBRATION: return "EntropyCalibration";
    case nvinfer1::CalibrationAlgoType::kLEGACY_CALIBRATION: return "LegacyCalibration";
    default: return "EntropyCalibration2";
    }
}

struct Input {
    Tensor* t;
    Dims dims;
    size_t bytes;
    float amax = 0;
};

} // namespace

bool calibrate(Network& net, Config& cfg, Json& b) {
    nvinfer1::IInt8Calibrator* c = cfg.calibrator_;
    Json cal = Json::object();
    Json seq = Json::array(); // the calibrator methods in the order they were called
    auto algorithm = c->getAlgorithm();
    seq.push("getAlgorithm");
    cal["algorithm"] = algorithm_name(algorithm);
    auto done = [&](bool ok, const std::string& why) {
        cal["sequence"] = seq;
        if (!ok) b["error"] = "calibration failed: " + why;
        b["calibration"] = cal;
        return ok;
    };

    // What TensorRT reads for each input.
    std::vector<Input> inputs;
    Json ins = Json::array();
    for (Tensor* t : net.inputs_) {
        Dims d = t->dims_;
        if (has_dynamic(d)) {
            const ProfileShapes* p = cfg.calib_profile_set_ ? &cfg.calib_profile_shapes_
                                     : cfg.profiles_.empty() ? nullptr
                                                             : &cfg.profiles_[0];
            auto it = p ? p->find(t->name_) : ProfileShapes::const_iterator{};
            if (!p || it == p->end() || !it->second.set[1]) {
                return done(false, "no calibration shape for dynamic input " + t->name_);
            }
            d = it->second.d[1];
        }
        size_t bytes = static_cast<size_t>(volume(d)) * dtype_size(t->type_);
        inputs.push_back(Input{t, d, bytes});
        Json j = Json::object();
        j["name"] = t->name_;
        j["dims"] = dims_json(d);
        j["dtype"] = dtype_name(t->type_);
        j["bytes"] = static_cast<int64_t>(bytes);
        j["from"] = has_dynamic(t->dims_) ? (cfg.calib_profile_set_ ? "calibration_profile" : "first_profile") : "static";
        ins.push(j);
    }
    cal["inputs"] = ins;

    std::size_t length = 0;
    const void* cache = c->readCalibrationCache(length);
    seq.push("readCalibrationCache");
    cal["read_cache_bytes"] = static_cast<int64_t>(cache ? length : 0);
    if (cache && length > 0) {
        cal["cache_used"] = true;
        return done(true, "");
    }

    int32_t batch = c->getBatchSize();
    seq.push("getBatchSize");
    cal["batch_size"] = batch;
    if (batch <= 0) return done(false, "getBatchSize returned " + std::to_string(batch));

    std::vector<const char*> names;
    for (const Input& in : inputs) names.push_back(in.t->name_.c_str());
    std::vector<void*> bindings(inputs.size());
    Json batches = Json::array();
    int calls = 0;
    size_t (*oracle)(const void*) = state().knobs.oracle;
    for (;;) {
        std::fill(bindings.begin(), bindings.end(), nullptr);
        ++calls;
        bool more = c->getBatch(bindings.data(), names.data(), static_cast<int32_t>(bindings.size()));
        seq.push(more ? "getBatch" : "getBatch(end)");
        if (!more) break;
        Json bj = Json::array();
        for (size_t i = 0; i < inputs.size(); ++i) {
            Input& in = inputs[i];
            Json one = Json::object();
            one["name"] = in.t->name_;
            one["expected_bytes"] = static_cast<int64_t>(in.bytes);
            if (!bindings[i]) {
                violation("calibration-null-binding", "getBatch returned true with no binding for " + in.t->name_);
                cal["batches"] = batches;
                return done(false, "null binding");
            }
            size_t have = oracle ? oracle(bindings[i]) : 0;
            one["oracle_bytes"] = static_cast<int64_t>(have);
            if (have && have < in.bytes) {
                violation("calibration-binding-too-small",
                          "binding for " + in.t->name_ + " holds " + std::to_string(have) + " bytes but TensorRT reads " +
                              std::to_string(in.bytes) + " (dims " + dims_json(in.dims).dump() + ")");
                bj.push(one);
                batches.push(bj);
                cal["batches"] = batches;
                return done(false, "binding too small");
            }
            // Only read what is known to be there (host memory in tests; device memory never).
            if (have >= in.bytes && (in.t->type_ == DataType::kFLOAT || in.t->type_ == DataType::kHALF)) {
                double sum = 0;
                size_t n = in.bytes / dtype_size(in.t->type_);
                for (size_t k = 0; k < n; ++k) {
                    float v;
                    if (in.t->type_ == DataType::kFLOAT) {
                        std::memcpy(&v, static_cast<const char*>(bindings[i]) + 4 * k, 4);
                    } else {
                        uint16_t h;
                        std::memcpy(&h, static_cast<const char*>(bindings[i]) + 2 * k, 2);
                        v = half_to_float(h);
                    }
                    sum += v;
                    in.amax = std::max(in.amax, std::fabs(v));
                }
                one["sum"] = sum;
            }
            bj.push(one);
        }
        batches.push(bj);
        if (calls > 100000) return done(false, "the calibrator never ends its stream");
    }
    cal["batches"] = batches;
    cal["get_batch_calls"] = calls;
    if (batches.size() == 0) return done(false, "the calibrator gave no batch");

    std::string text = "TRT-" + std::to_string(NV_TENSORRT_VERSION) + "-" + cache_algorithm(algorithm) + "\n";
    for (const Input& in : inputs) {
        text += in.t->name_ + ": " + scale_hex(in.amax > 0 ? in.amax / 127.0f : 1.0f / 127.0f) + "\n";
    }
    for (const auto& l : net.layers_) {
        for (Tensor* t : l->impl.outputs_) text += t->name_ + ": 3c010a14\n";
    }
    c->writeCalibrationCache(text.data(), text.size());
    seq.push("writeCalibrationCache");
    cal["wrote_cache_bytes"] = static_cast<int64_t>(text.size());
    return done(true, "");
}

} // namespace trtforge_double

#endif
