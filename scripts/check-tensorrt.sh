#!/usr/bin/env bash
# Compile-check sys/ against real TensorRT headers and run the calibrator harness, without
# TensorRT libraries or a GPU:
#   1. g++ -fsyntax-only on sys/trtforge_shim.cpp (the libnvinfer-facing shim);
#   2. the calibrator (sys/calibrator.cpp) + harness linked with -Wl,--no-undefined: proof the
#      calibrator class links without libnvinfer;
#   3. `cargo check --features tensorrt --lib --bins` (build.rs + bindgen + cc; nothing is linked;
#      integration tests do not use the feature, and one on main does not compile: tests/inspect.rs);
#   4. the harness test: the C++ calibrator driven as TensorRT drives it, Rust bridge behind it.
# usage: TENSORRT_INCLUDE_DIR=... CUDA_INCLUDE_DIR=... scripts/check-tensorrt.sh
#    or: scripts/check-tensorrt.sh DIR...   (each DIR a TensorRT include folder; CUDA_INCLUDE_DIR
#        still needed). scripts/fetch-tensorrt-headers.sh fetches both.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CUDA_INCLUDE_DIR:?set CUDA_INCLUDE_DIR to a folder with cuda_runtime_api.h (see scripts/fetch-tensorrt-headers.sh)}"
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
    : "${TENSORRT_INCLUDE_DIR:?set TENSORRT_INCLUDE_DIR or pass include folders}"
    dirs=("$TENSORRT_INCLUDE_DIR")
fi

# bindgen needs libclang.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && [ -z "${LIBCLANG_PATH:-}" ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libclang-dev clang >/dev/null
    else
        echo "bindgen needs libclang: install libclang-dev (or set LIBCLANG_PATH)" >&2
        exit 1
    fi
fi

CXX=${CXX:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for inc in "${dirs[@]}"; do
    ver=$(awk '/define NV_TENSORRT_(MAJOR|MINOR|PATCH|BUILD) /{printf "%s.", $3}' "$inc/NvInferVersion.h" | sed 's/\.$//')
    echo "== TensorRT headers $ver ($inc), CUDA headers $CUDA_INCLUDE_DIR"
    flags=(-std=c++17 -Wall -Wextra -Werror -Wno-deprecated-declarations -isystem "$inc" -isystem "$CUDA_INCLUDE_DIR" -Isys)
    "$CXX" "${flags[@]}" -fsyntax-only sys/trtforge_shim.cpp
    echo "   shim compiles"
    "$CXX" "${flags[@]}" -shared -fPIC sys/calibrator.cpp sys/common.cpp sys/harness/harness.cpp \
        -Wl,--no-undefined -o "$tmp/libharness.so"
    echo "   calibrator + harness link without libnvinfer"
    TENSORRT_INCLUDE_DIR="$inc" cargo check -q --features tensorrt --lib --bins
    echo "   cargo check --features tensorrt: ok"
    TENSORRT_INCLUDE_DIR="$inc" TRTFORGE_REQUIRE_HARNESS=1 RUST_BACKTRACE=0 \
        cargo test -q --lib -- trt::harness_test --nocapture 2>&1 | grep -E "^harness|came back|test result"
done
