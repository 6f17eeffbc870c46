// The calibrator bridge, C++ side: classes deriving TensorRT's calibrator interfaces whose
// methods forward to Rust function pointers. Only inline TensorRT code is used here (the
// interfaces are header-only), so this translation unit links without libnvinfer, which lets
// sys/harness drive it on machines without TensorRT.
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

#include <NvInfer.h>
#include <NvInferVersion.h>

#if NV_TENSORRT_MAJOR < 11
#define TRTFORGE_HAS_CALIBRATOR 1
#endif

#ifdef TRTFORGE_HAS_CALIBRATOR
namespace {

// Forwards each call to the Rust table; every body is noexcept and catches everything, so
// nothing unwinds into TensorRT. Failures are kept on the Rust side and read after the build.
template <class Base>
class Bridge final : public Base {
public:
    explicit Bridge(const trtforge_calibrator_callbacks& cb) : cb_(cb) {}

    int32_t getBatchSize() const noexcept override {
        try {
            return cb_.batch_size ? cb_.batch_size(cb_.user) : 0;
        } catch (...) {
            return 0;
        }
    }

    bool getBatch(void* bindings[], char const* names[], int32_t nbBindings) noexcept override {
        try {
            return cb_.get_batch && cb_.get_batch(cb_.user, bindings, names, nbBindings) == 1;
        } catch (...) {
            return false;
        }
    }

    void const* readCalibrationCache(std::size_t& length) noexcept override {
        length = 0;
        try {
            const void* data = nullptr;
            size_t len = 0;
            if (cb_.read_cache && cb_.read_cache(cb_.user, &data, &len) == 1 && data && len > 0) {
                length = len;
                return data;
            }
        } catch (...) {
        }
        return nullptr;
    }

    void writeCalibrationCache(void const* ptr, std::size_t length) noexcept override {
        try {
            if (cb_.write_cache) {
                cb_.write_cache(cb_.user, ptr, length);
            }
        } catch (...) {
        }
    }

private:
    trtforge_calibrator_callbacks cb_;
};

} // namespace
#endif

struct trtforge_calibrator {
#ifdef TRTFORGE_HAS_CALIBRATOR
    nvinfer1::IInt8Calibrator* trt = nullptr;
    ~trtforge_calibrator() { delete trt; }
#endif
};

#ifdef TRTFORGE_HAS_CALIBRATOR
nvinfer1::IInt8Calibrator* trtforge_calibrator_as_trt(trtforge_calibrator* calibrator) {
    return calibrator ? calibrator->trt : nullptr;
}
#endif

extern "C" int32_t trtforge_calibrator_create(const trtforge_calibrator_callbacks* callbacks, int32_t algorithm,
                                              trtforge_calibrator** out) {
    try {
        trtforge::clear_error();
        if (!callbacks || !out) {
            trtforge::set_error("trtforge_calibrator_create: null argument");
            return TRTFORGE_ERROR;
        }
        *out = nullptr;
#ifdef TRTFORGE_HAS_CALIBRATOR
        auto* c = new trtforge_calibrator();
        if (algorithm == TRTFORGE_CALIB_MINMAX) {
            c->trt = new Bridge<nvinfer1::IInt8MinMaxCalibrator>(*callbacks);
        } else if (algorithm == TRTFORGE_CALIB_ENTROPY2) {
            c->trt = new Bridge<nvinfer1::IInt8EntropyCalibrator2>(*callbacks);
        } else {
            delete c;
            trtforge::set_error("trtforge_calibrator_create: unknown algorithm " + std::to_string(algorithm));
            return TRTFORGE_ERROR;
        }
        *out = c;
        return TRTFORGE_OK;
#else
        (void)algorithm;
        trtforge::set_error("TensorRT " + std::to_string(NV_TENSORRT_MAJOR) +
                            " has no calibrator: build from a Q/DQ (explicitly quantized) ONNX model");
        return TRTFORGE_UNSUPPORTED;
#endif
    } catch (const std::exception& e) {
        trtforge::set_error(std::string("trtforge_calibrator_create: ") + e.what());
    } catch (...) {
        trtforge::set_error("trtforge_calibrator_create: unknown C++ exception");
    }
    return TRTFORGE_ERROR;
}

extern "C" void trtforge_calibrator_destroy(trtforge_calibrator* calibrator) {
    delete calibrator;
}
