#!/usr/bin/env bash
# Compile, lint and test the TensorRT path against real TensorRT headers, without TensorRT's
# libraries or a GPU. For each header set:
#   1. every sys/*.cpp compiles with -Wall -Wextra -Werror;
#   2. the whole shim links into a shared library with --no-undefined and only libdl: TensorRT is
#      loaded at run time, so nothing of libnvinfer is needed to build;
#   3. `cargo clippy --features tensorrt --all-targets -D warnings`: the library, binary, tests
#      and benches type-check with the feature (bindings are committed: no libclang; build.rs
#      runs cc only);
#   4. the calibrator harness (the C++ calibrator driven as TensorRT drives it), the TensorRT
#      test double's call-sequence tests (tests/trt_double.rs, one per rule) and the build
#      pipeline and engine executor against the double (tests/trt_pipeline.rs) run.
# Everything builds with the release profile: it reuses the dependencies scripts/test.sh built
# instead of a second, debug copy of them (CI's disk is small).
# usage: scripts/check-tensorrt.sh [INCLUDE_DIR...]
#   default: TENSORRT_INCLUDE_DIR, else every ../shared/reference/tensorrt-headers/*/include.
#   CUDA headers: CUDA_INCLUDE_DIR, else the wheels scripts/setup-tensorrt-check.sh unpacks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ -z "${CUDA_INCLUDE_DIR:-}" ]; then
    eval "$(bash scripts/setup-tensorrt-check.sh)"
fi
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ] && [ -n "${TENSORRT_INCLUDE_DIR:-}" ]; then
    dirs=("$TENSORRT_INCLUDE_DIR")
fi
if [ ${#dirs[@]} -eq 0 ]; then
    shopt -s nullglob
    dirs=("$root"/../shared/reference/tensorrt-headers/*/include)
    shopt -u nullglob
    if [ ${#dirs[@]} -eq 0 ]; then
        echo "no TensorRT headers: ../shared/reference/tensorrt-headers is absent; pass include folders (scripts/fetch-tensorrt-headers.sh fetches them)" >&2
        exit 1
    fi
    # Oldest first (8.5, 8.6, 10.3, 10.16, 11.1).
    mapfile -t dirs < <(printf '%s\n' "${dirs[@]}" | sort -V)
fi

CXX=${CXX:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for inc in "${dirs[@]}"; do
    ver=$(bash scripts/tensorrt-version.sh "$inc")
    echo "== TensorRT headers $ver ($inc), CUDA headers $CUDA_INCLUDE_DIR"
    flags=(-std=c++17 -Wall -Wextra -Werror -Wno-deprecated-declarations -isystem "$inc" -isystem "$CUDA_INCLUDE_DIR" -Isys)
    shim=(sys/library.cpp sys/builder.cpp sys/config.cpp sys/runtime.cpp sys/calibrator.cpp sys/common.cpp)
    for f in "${shim[@]}" sys/harness/harness.cpp; do
        "$CXX" "${flags[@]}" -fsyntax-only "$f"
    done
    echo "   sys/*.cpp compile"
    "$CXX" "${flags[@]}" -shared -fPIC "${shim[@]}" -Wl,--no-undefined -ldl -o "$tmp/libshim.so"
    echo "   the shim links without libnvinfer (TensorRT is loaded at run time)"
    export TENSORRT_INCLUDE_DIR="$inc"
    cargo clippy -q --release --features tensorrt --all-targets -- -D warnings
    echo "   cargo clippy --features tensorrt --all-targets: clean"
    TRTFORGE_REQUIRE_HARNESS=1 RUST_BACKTRACE=0 \
        cargo test -q --release --features tensorrt --lib -- trt:: 2>&1 | grep -E "test result|FAILED|panicked"
    for t in trt_double trt_pipeline; do
        cargo test -q --release --features tensorrt --test "$t" 2>&1 | grep -E "test result|FAILED|panicked"
    done
done
