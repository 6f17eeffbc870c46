#!/usr/bin/env bash
# Fetch public TensorRT headers (NVIDIA/TensorRT include/ per version, NvOnnxParser.h from
# onnx/onnx-tensorrt) and CUDA headers (pip wheels) OUTSIDE the repository, for
# scripts/check-tensorrt.sh. Never commit them.
#   usage: scripts/fetch-tensorrt-headers.sh [DEST]   (default /work/trt-headers)
# Produces DEST/<8.5|8.6|10.3>/ and DEST/cuda/include.
set -euo pipefail
DEST=${1:-/work/trt-headers}
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

clone() { # url dir
    [ -d "$2" ] || git clone --bare --filter=blob:none --quiet "$1" "$2"
}
trt="$DEST/.git-TensorRT"
onnx="$DEST/.git-onnx-tensorrt"
clone https://github.com/NVIDIA/TensorRT.git "$trt"
clone https://github.com/onnx/onnx-tensorrt.git "$onnx"
git --git-dir="$trt" fetch --quiet origin 'refs/heads/release/8.5:refs/heads/release/8.5' 'refs/tags/v8.6.1:refs/tags/v8.6.1' 'refs/tags/v10.3.0:refs/tags/v10.3.0' || true
for pair in "8.5:release/8.5:8.5-GA" "8.6:v8.6.1:8.6-GA" "10.3:v10.3.0:10.1-GA"; do
    IFS=: read -r v ref oref <<<"$pair"
    d="$DEST/$v"
    mkdir -p "$d"
    git --git-dir="$trt" archive "$ref" include | tar -x -C "$d" --strip-components=1
    git --git-dir="$onnx" show "$oref:NvOnnxParser.h" >"$d/NvOnnxParser.h"
    echo "$d: TensorRT $(awk '/define NV_TENSORRT_(MAJOR|MINOR|PATCH|BUILD) /{printf "%s.", $3}' "$d/NvInferVersion.h" | sed 's/\.$//')"
done

if [ ! -f "$DEST/cuda/include/crt/host_defines.h" ]; then
    PY=${TRTFORGE_PYTHON:-python3}
    "$PY" -m pip download --quiet --no-deps -d "$work" nvidia-cuda-runtime-cu12 nvidia-cuda-nvcc-cu12
    for w in "$work"/*.whl; do unzip -q -o "$w" 'nvidia/*/include/*' -d "$work/x"; done
    mkdir -p "$DEST/cuda/include"
    cp -r "$work"/x/nvidia/cuda_runtime/include/. "$DEST/cuda/include/"
    cp -rn "$work"/x/nvidia/cuda_nvcc/include/. "$DEST/cuda/include/"
fi
echo "CUDA headers: $DEST/cuda/include"
