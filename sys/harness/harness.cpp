// Calibrator harness: drives the bridge's C++ calibrator class exactly as TensorRT's builder
// does during INT8 calibration, without libnvinfer (the calibrator interfaces are header-only).
// Built as a shared library by the Rust test src/trt/harness_test.rs (or scripts/check-tensorrt.sh)
// and called through the C function below; the Rust bridge is behind the callbacks.
//
// TensorRT's order: readCalibrationCache(); if it returns data, use it and stop. Otherwise
// getBatchSize(), then getBatch(bindings, names, nbInputs) until it returns false, computing
// ranges from the device memory behind `bindings`; then writeCalibrationCache(text).
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "../internal.hpp"

#include <NvInfer.h>
#include <NvInferVersion.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {

// Per-run results the Rust test checks.
typedef struct trtforge_harness_report {
    int32_t cache_hit;        // readCalibrationCache returned data
    int32_t batch_size;       // getBatchSize()
    int32_t batches;          // getBatch calls that returned true
    double checksum;          // sum over every value read through the bindings
    float amax;               // max |value| seen
    int32_t wrote_cache;      // writeCalibrationCache was called
    int32_t algorithm;        // getAlgorithm() as TensorRT numbers it
    char interface_name[64];  // getInterfaceInfo() "kind major.minor" on TensorRT 10+, else ""
    char cache_header[64];    // first line of the cache read or written
} trtforge_harness_report;

// `elems_per_input` values are read from each binding (host memory in the test, as the GPU
// would read device memory). Returns 0 when the calibrator behaved, else -1 with a message.
int32_t trtforge_harness_drive(const trtforge_calibrator_callbacks* cb, int32_t algorithm, const char** input_names,
                               int32_t nb_inputs, int64_t elems_per_input, trtforge_harness_report* report) {
    try {
        std::memset(report, 0, sizeof(*report));
#if NV_TENSORRT_MAJOR >= 11
        (void)cb;
        (void)algorithm;
        (void)input_names;
        (void)nb_inputs;
        (void)elems_per_input;
        return TRTFORGE_UNSUPPORTED; // no calibrator interface to drive
#else
        trtforge_calibrator* handle = nullptr;
        int32_t st = trtforge_calibrator_create(cb, algorithm, &handle);
        if (st != TRTFORGE_OK) return st;
        nvinfer1::IInt8Calibrator* c = trtforge_calibrator_as_trt(handle);
        if (!c) {
            trtforge_calibrator_destroy(handle);
            return -1;
        }
        report->algorithm = static_cast<int32_t>(c->getAlgorithm());
#if NV_TENSORRT_MAJOR >= 10
        nvinfer1::InterfaceInfo info = c->getInterfaceInfo();
        std::snprintf(report->interface_name, sizeof(report->interface_name), "%s %d.%d", info.kind, info.major,
                      info.minor);
#endif
        size_t len = 0;
        const void* cache = c->readCalibrationCache(len);
        if (cache && len > 0) {
            report->cache_hit = 1;
            std::string text(static_cast<const char*>(cache), len);
            std::snprintf(report->cache_header, sizeof(report->cache_header), "%s", text.substr(0, text.find('\n')).c_str());
            trtforge_calibrator_destroy(handle);
            return 0;
        }
        report->batch_size = c->getBatchSize();
        std::vector<void*> bindings(static_cast<size_t>(nb_inputs), nullptr);
        float amax = 0.f;
        double sum = 0.0;
        while (c->getBatch(bindings.data(), input_names, nb_inputs)) {
            report->batches++;
            for (int32_t i = 0; i < nb_inputs; ++i) {
                const float* v = static_cast<const float*>(bindings[static_cast<size_t>(i)]);
                if (!v) {
                    trtforge_calibrator_destroy(handle);
                    return -1; // a "successful" batch must fill every binding
                }
                for (int64_t k = 0; k < elems_per_input; ++k) {
                    sum += v[k];
                    amax = std::max(amax, std::fabs(v[k]));
                }
            }
        }
        report->checksum = sum;
        report->amax = amax;
        // A cache as TensorRT writes it: header, then one scale (amax/127) per tensor as hex bits.
        float scale = amax / 127.f;
        uint32_t bits = 0;
        std::memcpy(&bits, &scale, sizeof(bits));
        char line[128];
        const char* algo = algorithm == TRTFORGE_CALIB_MINMAX ? "MinMaxCalibration" : "EntropyCalibration2";
        std::snprintf(line, sizeof(line), "TRT-%ld-%s\n", static_cast<long>(NV_TENSORRT_VERSION), algo);
        std::string text = line;
        for (int32_t i = 0; i < nb_inputs; ++i) {
            std::snprintf(line, sizeof(line), "%s: %08x\n", input_names[i], bits);
            text += line;
        }
        if (report->batches > 0) {
            c->writeCalibrationCache(text.data(), text.size());
            report->wrote_cache = 1;
            std::snprintf(report->cache_header, sizeof(report->cache_header), "%s", text.substr(0, text.find('\n')).c_str());
        }
        trtforge_calibrator_destroy(handle);
        return 0;
#endif
    } catch (...) {
        return -1;
    }
}

} // extern "C"
