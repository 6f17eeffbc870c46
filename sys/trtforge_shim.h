/* trtforge_shim.h: the C ABI between trtforge (Rust) and TensorRT (C++).
 *
 * Pure C: no TensorRT or CUDA include. Conventions:
 * - opaque handles, created by trtforge_<object>_create / destroyed by trtforge_<object>_destroy;
 * - every fallible function returns int32_t status (TRTFORGE_OK = 0) with results in
 *   out-parameters; on failure trtforge_last_error() (thread-local) says why;
 * - no C++ exception leaves the library, and callbacks into Rust must not unwind.
 * Children keep no reference to parents: the Rust wrapper keeps parents alive. */
#ifndef TRTFORGE_SHIM_H
#define TRTFORGE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature or struct below changes. */
#define TRTFORGE_ABI_VERSION 1

enum {
    TRTFORGE_OK = 0,
    TRTFORGE_ERROR = 1,           /* see trtforge_last_error() */
    TRTFORGE_UNSUPPORTED = 2,     /* not available in this TensorRT version */
    TRTFORGE_PARSE_FAILED = 3     /* ONNX parser errors: see trtforge_parser_error */
};

int32_t trtforge_abi_version(void);
/* NV_TENSORRT_VERSION of the headers the shim was compiled against. */
int32_t trtforge_header_version(void);
/* getInferLibVersion() of the loaded libnvinfer. */
int32_t trtforge_library_version(void);
/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
const char* trtforge_last_error(void);

/* ---- logger ---- */
/* Severity as TensorRT numbers it: 0 internal error, 1 error, 2 warning, 3 info, 4 verbose. */
typedef void (*trtforge_log_fn)(void* user, int32_t severity, const char* msg);
typedef struct trtforge_logger trtforge_logger;
int32_t trtforge_logger_create(trtforge_log_fn fn, void* user, trtforge_logger** out);
void trtforge_logger_destroy(trtforge_logger* logger);

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

/* ---- builder, network, parser ---- */
typedef struct trtforge_builder trtforge_builder;
typedef struct trtforge_network trtforge_network;
typedef struct trtforge_parser trtforge_parser;
typedef struct trtforge_config trtforge_config;
typedef struct trtforge_profile trtforge_profile;
typedef struct trtforge_bytes trtforge_bytes;

int32_t trtforge_builder_create(trtforge_logger* logger, trtforge_builder** out);
void trtforge_builder_destroy(trtforge_builder* builder);
int32_t trtforge_builder_platform(trtforge_builder* builder, int32_t* fast_fp16, int32_t* fast_int8,
                                  int32_t* nb_dla_cores);
/* Explicit batch network (the only kind from 10 on); strongly typed where asked and available. */
int32_t trtforge_network_create(trtforge_builder* builder, int32_t strongly_typed, trtforge_network** out);
void trtforge_network_destroy(trtforge_network* network);
int32_t trtforge_network_nb_inputs(trtforge_network* network, int32_t* out);
int32_t trtforge_network_nb_outputs(trtforge_network* network, int32_t* out);
int32_t trtforge_network_nb_layers(trtforge_network* network, int32_t* out);
/* Tensor descriptions: name valid while the network lives, dims copied into dims[0..8]. */
int32_t trtforge_network_input(trtforge_network* network, int32_t index, const char** name, int32_t* nb_dims,
                               int64_t dims[8], int32_t* dtype);
int32_t trtforge_network_output(trtforge_network* network, int32_t index, const char** name, int32_t* nb_dims,
                                int64_t dims[8], int32_t* dtype);
/* Set layer `index`'s precision (TensorRT DataType numbering) and its output types. */
int32_t trtforge_network_layer_name(trtforge_network* network, int32_t index, const char** name);
int32_t trtforge_network_set_layer_precision(trtforge_network* network, int32_t index, int32_t dtype);

int32_t trtforge_parser_create(trtforge_network* network, trtforge_logger* logger, trtforge_parser** out);
void trtforge_parser_destroy(trtforge_parser* parser);
/* TRTFORGE_PARSE_FAILED when the model has errors: read them with the two calls below. */
int32_t trtforge_parser_parse_file(trtforge_parser* parser, const char* path, int32_t verbosity);
int32_t trtforge_parser_nb_errors(trtforge_parser* parser, int32_t* out);
/* node index (-1 if none), node name ("" before TensorRT 10), description, code. */
int32_t trtforge_parser_error(trtforge_parser* parser, int32_t index, int32_t* node, const char** node_name,
                              const char** desc, int32_t* code);

/* ---- builder config ---- */
enum {
    TRTFORGE_PRECISION_FP32 = 0,
    TRTFORGE_PRECISION_FP16 = 1,
    TRTFORGE_PRECISION_INT8 = 2,
    TRTFORGE_PRECISION_BEST = 3 /* FP16 + INT8 */
};
enum { TRTFORGE_CONSTRAINTS_NONE = 0, TRTFORGE_CONSTRAINTS_PREFER = 1, TRTFORGE_CONSTRAINTS_OBEY = 2 };

int32_t trtforge_config_create(trtforge_builder* builder, trtforge_config** out);
void trtforge_config_destroy(trtforge_config* config);
int32_t trtforge_config_set_precision(trtforge_config* config, int32_t precision);
int32_t trtforge_config_set_constraints(trtforge_config* config, int32_t constraints);
int32_t trtforge_config_set_workspace(trtforge_config* config, uint64_t bytes);
/* core < 0: GPU. */
int32_t trtforge_config_set_dla(trtforge_config* config, int32_t core, int32_t gpu_fallback);
/* TRTFORGE_UNSUPPORTED before 8.6. */
int32_t trtforge_config_set_optimization_level(trtforge_config* config, int32_t level);
/* Not owned: the calibrator must outlive the build. */
int32_t trtforge_config_set_calibrator(trtforge_config* config, trtforge_calibrator* calibrator);
/* Load (data may be NULL/0 for a new cache) and attach a timing cache. */
int32_t trtforge_config_set_timing_cache(trtforge_config* config, const void* data, size_t length);
int32_t trtforge_config_serialize_timing_cache(trtforge_config* config, trtforge_bytes** out);
/* Detailed profiling verbosity, so the inspector can describe layers. */
int32_t trtforge_config_set_detailed_profiling(trtforge_config* config);

int32_t trtforge_profile_create(trtforge_builder* builder, trtforge_profile** out);
int32_t trtforge_profile_set(trtforge_profile* profile, const char* input, int32_t nb_dims, const int64_t* min,
                             const int64_t* opt, const int64_t* max);
/* The config takes the profile (TensorRT owns it with the builder); `calibration` also
 * makes it the calibration profile. */
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
int32_t trtforge_engine_deserialize(trtforge_runtime* runtime, const void* data, size_t length,
                                    trtforge_engine** out);
void trtforge_engine_destroy(trtforge_engine* engine);
int32_t trtforge_engine_nb_io(trtforge_engine* engine, int32_t* out);
/* is_input 1/0; dims of profile 0's current shape (-1 dynamic). */
int32_t trtforge_engine_io(trtforge_engine* engine, int32_t index, const char** name, int32_t* is_input,
                           int32_t* nb_dims, int64_t dims[8], int32_t* dtype);
/* JSON of every layer (engine inspector; TRTFORGE_UNSUPPORTED before 8.2). */
int32_t trtforge_engine_layer_info_json(trtforge_engine* engine, trtforge_bytes** out);

#ifdef __cplusplus
}
#endif

#endif /* TRTFORGE_SHIM_H */
