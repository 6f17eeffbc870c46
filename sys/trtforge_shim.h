/* trtforge_shim.h: the C ABI between trtforge (Rust) and TensorRT (C++).
 *
 * Pure C: no TensorRT or CUDA include. Conventions:
 * - opaque handles, created by trtforge_<object>_create / destroyed by trtforge_<object>_destroy;
 * - every fallible function returns int32_t status (TRTFORGE_OK = 0) with results in
 *   out-parameters; on failure trtforge_last_error() (thread-local) says why;
 * - no C++ exception leaves the library, and callbacks into Rust must not unwind;
 * - TensorRT's libraries are loaded at run time (trtforge_library_load), as trtexec loads them,
 *   so building needs only headers; nothing here works before a successful load.
 * Lifetimes follow TensorRT's rules (factories outlive what they made, except builder -> engine);
 * the Rust wrapper keeps parents alive, and a network owns the ONNX parser that filled it. */
#ifndef TRTFORGE_SHIM_H
#define TRTFORGE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature or struct below changes. */
#define TRTFORGE_ABI_VERSION 3

enum {
    TRTFORGE_OK = 0,
    TRTFORGE_ERROR = 1,           /* see trtforge_last_error() */
    TRTFORGE_UNSUPPORTED = 2,     /* not available in this TensorRT version */
    TRTFORGE_PARSE_FAILED = 3,    /* ONNX parser errors: see trtforge_network_parser_error */
    TRTFORGE_UNAVAILABLE = 4      /* the TensorRT libraries are not loaded (or cannot be) */
};

int32_t trtforge_abi_version(void);
/* NV_TENSORRT_VERSION of the headers the shim was compiled against. */
int32_t trtforge_header_version(void);
/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
const char* trtforge_last_error(void);

/* ---- logger ---- */
/* Severity as TensorRT numbers it: 0 internal error, 1 error, 2 warning, 3 info, 4 verbose. */
typedef void (*trtforge_log_fn)(void* user, int32_t severity, const char* msg);
typedef struct trtforge_logger trtforge_logger;
int32_t trtforge_logger_create(trtforge_log_fn fn, void* user, trtforge_logger** out);
void trtforge_logger_destroy(trtforge_logger* logger);

/* ---- libraries ---- */
/* dlopen libnvinfer, libnvonnxparser and libnvinfer_plugin (NULL: "lib<name>.so.<major of the
 * headers>"), resolve createInferBuilder_INTERNAL, createInferRuntime_INTERNAL,
 * createNvOnnxParser_INTERNAL, getInferLibVersion and initLibNvInferPlugins, and register the
 * standard plugins with `logger` (which must then live until the process ends). The first
 * successful load stays; later calls load nothing and return TRTFORGE_OK.
 * TRTFORGE_UNAVAILABLE (with every name tried) when a library or symbol is missing. */
int32_t trtforge_library_load(const char* nvinfer, const char* onnxparser, const char* plugins,
                              trtforge_logger* logger);
/* getInferLibVersion() of the loaded libnvinfer; -1 before a successful load. */
int32_t trtforge_library_version(void);

/* ---- calibrator bridge (sys/calibrator.cpp) ---- */
typedef struct trtforge_calibrator_callbacks {
    void* user;
    int32_t (*batch_size)(void* user);
    /* 1 = bindings filled, 0 = end of stream, -1 = failure (kept on the Rust side) */
    int32_t (*get_batch)(void* user, void** bindings, const char** names, int32_t nb_bindings);
    /* 1 = data and length set, 0 = no cache, -1 = failure */
    int32_t (*read_cache)(void* user, const void** data, size_t* length);
    /* 0 = stored, -1 = failure */
    int32_t (*write_cache)(void* user, const void* data, size_t length);
} trtforge_calibrator_callbacks;

enum { TRTFORGE_CALIB_ENTROPY2 = 0, TRTFORGE_CALIB_MINMAX = 1 };
typedef struct trtforge_calibrator trtforge_calibrator;
/* TRTFORGE_UNSUPPORTED on TensorRT 11+ (no calibrator: explicit Q/DQ only). */
int32_t trtforge_calibrator_create(const trtforge_calibrator_callbacks* callbacks, int32_t algorithm,
                                   trtforge_calibrator** out);
void trtforge_calibrator_destroy(trtforge_calibrator* calibrator);

/* ---- builder, network, ONNX parser ---- */
typedef struct trtforge_builder trtforge_builder;
typedef struct trtforge_network trtforge_network;
typedef struct trtforge_config trtforge_config;
typedef struct trtforge_profile trtforge_profile;
typedef struct trtforge_bytes trtforge_bytes;

int32_t trtforge_builder_create(trtforge_logger* logger, trtforge_builder** out);
void trtforge_builder_destroy(trtforge_builder* builder);
/* IBuilder::getNbDLACores (0 on GPUs and on Jetsons without DLA, such as Orin Nano). */
int32_t trtforge_builder_nb_dla_cores(trtforge_builder* builder, int32_t* out);
/* Explicit batch network (the only kind from 10 on); strongly typed where asked and available
 * (TensorRT 11 networks always are). */
int32_t trtforge_network_create(trtforge_builder* builder, int32_t strongly_typed, trtforge_network** out);
/* Destroys the network's parser first, then the network (trtexec's order). */
void trtforge_network_destroy(trtforge_network* network);
/* Parse an ONNX file into the network with a new parser that the network then owns: TensorRT
 * holds the parsed weights by reference until the engine is built. Once per network.
 * TRTFORGE_PARSE_FAILED when the model has errors: read them with the two calls below. */
int32_t trtforge_network_parse_onnx(trtforge_network* network, trtforge_logger* logger, const char* path,
                                    int32_t verbosity);
int32_t trtforge_network_parser_nb_errors(trtforge_network* network, int32_t* out);
/* node index (-1 if none), node name ("" before TensorRT 10), description, code. */
int32_t trtforge_network_parser_error(trtforge_network* network, int32_t index, int32_t* node,
                                      const char** node_name, const char** desc, int32_t* code);
int32_t trtforge_network_nb_inputs(trtforge_network* network, int32_t* out);
int32_t trtforge_network_nb_outputs(trtforge_network* network, int32_t* out);
int32_t trtforge_network_nb_layers(trtforge_network* network, int32_t* out);
/* Tensor descriptions: name valid while the network lives, dims copied into dims[0..8],
 * dtype in TensorRT's DataType numbering. */
int32_t trtforge_network_input(trtforge_network* network, int32_t index, const char** name, int32_t* nb_dims,
                               int64_t dims[8], int32_t* dtype);
int32_t trtforge_network_output(trtforge_network* network, int32_t index, const char** name, int32_t* nb_dims,
                                int64_t dims[8], int32_t* dtype);
int32_t trtforge_network_layer_name(trtforge_network* network, int32_t index, const char** name);
/* Set layer `index`'s precision and every output type (TensorRT DataType numbering).
 * TRTFORGE_UNSUPPORTED on TensorRT 11 (strongly typed: precision comes from the model). */
int32_t trtforge_network_set_layer_precision(trtforge_network* network, int32_t index, int32_t dtype);

/* ---- builder config ---- */
enum {
    TRTFORGE_FLAG_FP16 = 0,
    TRTFORGE_FLAG_INT8 = 1,
    TRTFORGE_FLAG_GPU_FALLBACK = 2,
    TRTFORGE_FLAG_DIRECT_IO = 3,
    TRTFORGE_FLAG_OBEY_PRECISION_CONSTRAINTS = 4,
    TRTFORGE_FLAG_PREFER_PRECISION_CONSTRAINTS = 5,
    TRTFORGE_FLAG_SPARSE_WEIGHTS = 6,
    TRTFORGE_FLAG_VERSION_COMPATIBLE = 7,
    TRTFORGE_FLAG_EXCLUDE_LEAN_RUNTIME = 8
};
enum {
    TRTFORGE_POOL_WORKSPACE = 0,
    TRTFORGE_POOL_DLA_MANAGED_SRAM = 1,
    TRTFORGE_POOL_DLA_LOCAL_DRAM = 2,
    TRTFORGE_POOL_DLA_GLOBAL_DRAM = 3
};
/* Bits of trtforge_config_set_tactic_sources (mapped to TensorRT's TacticSource by name: its
 * numbering changed in 11). */
enum {
    TRTFORGE_TACTIC_CUBLAS = 1 << 0,
    TRTFORGE_TACTIC_CUBLAS_LT = 1 << 1,
    TRTFORGE_TACTIC_CUDNN = 1 << 2,
    TRTFORGE_TACTIC_EDGE_MASK_CONVOLUTIONS = 1 << 3,
    TRTFORGE_TACTIC_JIT_CONVOLUTIONS = 1 << 4
};

int32_t trtforge_config_create(trtforge_builder* builder, trtforge_config** out);
void trtforge_config_destroy(trtforge_config* config);
/* TRTFORGE_UNSUPPORTED when this TensorRT version has no such flag (kFP16, kINT8 and the
 * precision-constraint flags are gone in 11). */
int32_t trtforge_config_set_flag(trtforge_config* config, int32_t flag, int32_t on);
int32_t trtforge_config_set_memory_pool(trtforge_config* config, int32_t pool, uint64_t bytes);
/* core < 0: GPU; else DLA core `core` as the default device type. */
int32_t trtforge_config_set_device(trtforge_config* config, int32_t core);
/* TRTFORGE_UNSUPPORTED before 8.6. */
int32_t trtforge_config_set_optimization_level(trtforge_config* config, int32_t level);
/* TensorRT's ProfilingVerbosity numbering: 0 layer names only, 1 none, 2 detailed. */
int32_t trtforge_config_set_profiling_verbosity(trtforge_config* config, int32_t verbosity);
/* Enable then disable TRTFORGE_TACTIC_* bits on the config's current tactic sources. */
int32_t trtforge_config_set_tactic_sources(trtforge_config* config, uint32_t enable, uint32_t disable);
/* TensorRT's HardwareCompatibilityLevel numbering; TRTFORGE_UNSUPPORTED before 8.6. */
int32_t trtforge_config_set_hardware_compatibility(trtforge_config* config, int32_t level);
/* Not owned: the calibrator must outlive the build. TRTFORGE_UNSUPPORTED on 11. */
int32_t trtforge_config_set_calibrator(trtforge_config* config, trtforge_calibrator* calibrator);
/* Load `data` (NULL/0 for a new cache) and attach it, ignoring a device or version mismatch as
 * trtexec does (TensorRT then warns and starts over). TRTFORGE_ERROR for a corrupt cache. */
int32_t trtforge_config_set_timing_cache(trtforge_config* config, const void* data, size_t length);
/* The cache to store: `file_data` (the file as it is now, NULL/0 when absent) combined with the
 * config's cache, serialized, so concurrent builds add to each other's entries. A file from
 * another device or TensorRT version cannot take our entries (combine refuses a mismatch): then
 * the file's cache comes back unchanged and *combined is 0, as trtexec keeps the file. */
int32_t trtforge_config_merge_timing_cache(trtforge_config* config, const void* file_data, size_t length,
                                           trtforge_bytes** out, int32_t* combined);

int32_t trtforge_profile_create(trtforge_builder* builder, trtforge_profile** out);
/* Frees the handle; the TensorRT profile itself belongs to the builder. */
void trtforge_profile_destroy(trtforge_profile* profile);
int32_t trtforge_profile_set(trtforge_profile* profile, const char* input, int32_t nb_dims, const int64_t* min,
                             const int64_t* opt, const int64_t* max);
/* Add the profile to the config; with `calibration` it is also the calibration profile
 * (TRTFORGE_UNSUPPORTED on 11). */
int32_t trtforge_config_add_profile(trtforge_config* config, trtforge_profile* profile, int32_t calibration);

/* ---- build ---- */
int32_t trtforge_build_serialized(trtforge_builder* builder, trtforge_network* network, trtforge_config* config,
                                  trtforge_bytes** out);
void trtforge_bytes_destroy(trtforge_bytes* bytes);
const void* trtforge_bytes_data(const trtforge_bytes* bytes);
size_t trtforge_bytes_size(const trtforge_bytes* bytes);

/* ---- runtime, engine ---- */
typedef struct trtforge_runtime trtforge_runtime;
typedef struct trtforge_engine trtforge_engine;
int32_t trtforge_runtime_create(trtforge_logger* logger, trtforge_runtime** out);
void trtforge_runtime_destroy(trtforge_runtime* runtime);
int32_t trtforge_runtime_nb_dla_cores(trtforge_runtime* runtime, int32_t* out);
/* The DLA core engines deserialized from now on run on; before trtforge_engine_deserialize. */
int32_t trtforge_runtime_set_dla_core(trtforge_runtime* runtime, int32_t core);
int32_t trtforge_engine_deserialize(trtforge_runtime* runtime, const void* data, size_t length,
                                    trtforge_engine** out);
void trtforge_engine_destroy(trtforge_engine* engine);
int32_t trtforge_engine_nb_io(trtforge_engine* engine, int32_t* out);
/* is_input 1/0; dims as built (-1 dynamic). */
int32_t trtforge_engine_io(trtforge_engine* engine, int32_t index, const char** name, int32_t* is_input,
                           int32_t* nb_dims, int64_t dims[8], int32_t* dtype);
int32_t trtforge_engine_nb_profiles(trtforge_engine* engine, int32_t* out);
/* selector: 0 min, 1 opt, 2 max. */
int32_t trtforge_engine_profile_shape(trtforge_engine* engine, const char* input, int32_t profile,
                                      int32_t selector, int32_t* nb_dims, int64_t dims[8]);
/* JSON of every layer (engine inspector, as detailed as the build's profiling verbosity). */
int32_t trtforge_engine_layer_info_json(trtforge_engine* engine, trtforge_bytes** out);

/* ---- execution (enqueueV3: set shapes and addresses, then enqueue on a CUDA stream) ---- */
typedef struct trtforge_context trtforge_context;
int32_t trtforge_context_create(trtforge_engine* engine, trtforge_context** out);
void trtforge_context_destroy(trtforge_context* context);
int32_t trtforge_context_set_input_shape(trtforge_context* context, const char* name, int32_t nb_dims,
                                         const int64_t* dims);
/* The shape of `name` with the input shapes set so far (outputs resolve once inputs are set). */
int32_t trtforge_context_tensor_shape(trtforge_context* context, const char* name, int32_t* nb_dims,
                                      int64_t dims[8]);
int32_t trtforge_context_set_tensor_address(trtforge_context* context, const char* name, void* address);
/* `stream` is a cudaStream_t (the same handle as the driver's CUstream). */
int32_t trtforge_context_enqueue(trtforge_context* context, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* TRTFORGE_SHIM_H */
