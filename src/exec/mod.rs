//! Executors: ONNX Runtime on CPU (always), TensorRT (feature `tensorrt`).
