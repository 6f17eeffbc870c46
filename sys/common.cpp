// The thread-local last error and the ABI version: no TensorRT include, so the calibrator
// harness links with it and without libnvinfer.
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
