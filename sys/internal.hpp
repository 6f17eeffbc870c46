// Internal C++ declarations shared by the shim's translation units (not part of the C ABI).
#pragma once
#include <string>

#include "trtforge_shim.h"

namespace trtforge {
// Set the thread-local message trtforge_last_error() returns.
void set_error(std::string msg);
void clear_error();
} // namespace trtforge

#ifdef TRTFORGE_WITH_TENSORRT_TYPES
#include <NvInfer.h>
// The TensorRT object behind a calibrator handle (nullptr on TensorRT 11+).
nvinfer1::IInt8Calibrator* trtforge_calibrator_as_trt(trtforge_calibrator* calibrator);
#endif
