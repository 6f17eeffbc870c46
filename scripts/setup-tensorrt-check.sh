#!/usr/bin/env bash
# Installs what the TensorRT compile checks need (idempotent), from the package registry only:
# CUDA headers unpacked from the nvidia-cuda-runtime/nvcc wheels into .venv/cuda-include (only
# include/ is kept: nothing to link, no driver), and the libclang wheel into .venv (bindgen
# loads it at run time for tests/bindings.rs). TensorRT's own headers are not installed: the
# checks read ../shared/reference/tensorrt-headers (or TENSORRT_INCLUDE_DIR).
# Prints the lines scripts/env.sh exports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
venv="$root/.venv"
req="$root/scripts/requirements-tensorrt-check.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
stamp="$venv/.tensorrt-check.sha256"
inc="$venv/cuda-include"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f "$inc/crt/host_defines.h" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    grep -E '^nvidia-' "$req" >"$work/cuda.txt"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        -r "$work/cuda.txt" -d "$work/wheels" >&2
    for w in "$work"/wheels/*.whl; do
        "$venv/bin/python" -m zipfile -e "$w" "$work/x"
    done
    rm -rf "$inc"
    mkdir -p "$inc"
    cp -r "$work"/x/nvidia/cuda_runtime/include/. "$inc/"
    cp -rn "$work"/x/nvidia/cuda_nvcc/include/. "$inc/"
    grep -E '^libclang' "$req" >"$work/clang.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$work/clang.txt" >&2
    echo "$want" >"$stamp"
fi
clang="$(ls -d "$venv"/lib/python3*/site-packages/clang/native 2>/dev/null | head -n 1)"
echo "export CUDA_INCLUDE_DIR=$inc"
echo "export LIBCLANG_PATH=$clang"
