// The thread-local last error, versions and byte buffers: no TensorRT call, so the calibrator
// harness links with this file and without libnvinfer.
#define TRTFORGE_WITH_TENSORRT_TYPES 1
#include "internal.hpp"

namespace {
thread_local std::string g_last_error;
}

void trtforge::set_error(std::string msg) {
    g_last_error = std::move(msg);
}

void trtforge::clear_error() {
    g_last_error.clear();
}

extern "C" int32_t trtforge_abi_version(void) {
    return TRTFORGE_ABI_VERSION;
}

extern "C" const char* trtforge_last_error(void) {
    return g_last_error.c_str();
}

extern "C" int32_t trtforge_header_version(void) {
    return NV_TENSORRT_VERSION;
}

extern "C" int32_t trtforge_logger_create(trtforge_log_fn fn, void* user, trtforge_logger** out) {
    return trtforge::wall("trtforge_logger_create", [&]() -> int32_t {
        REQUIRE(out, "trtforge_logger_create");
        *out = new trtforge_logger(fn, user);
        return TRTFORGE_OK;
    });
}

extern "C" void trtforge_logger_destroy(trtforge_logger* logger) {
    delete logger;
}

extern "C" void trtforge_bytes_destroy(trtforge_bytes* bytes) {
    delete bytes;
}

extern "C" const void* trtforge_bytes_data(const trtforge_bytes* bytes) {
    if (!bytes) return nullptr;
    return bytes->mem ? bytes->mem->data() : bytes->owned.data();
}

extern "C" size_t trtforge_bytes_size(const trtforge_bytes* bytes) {
    if (!bytes) return 0;
    return bytes->mem ? bytes->mem->size() : bytes->owned.size();
}
