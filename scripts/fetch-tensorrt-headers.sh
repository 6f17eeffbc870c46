#!/usr/bin/env bash
# Fetch public TensorRT headers (NVIDIA/TensorRT include/ per version) and CUDA headers (pip
# wheels) OUTSIDE the repository, for scripts/check-tensorrt.sh. Never commit them.
# NvOnnxParser.h: up to 10.x from onnx/onnx-tensorrt; from 10.16 on the TensorRT repository's
# own include/ has it, and only that one matches (the 11.x IParser dropped supportsModel and
# parseWithWeightDescriptors: an onnx-tensorrt 10.x header has another vtable).
#   usage: scripts/fetch-tensorrt-headers.sh [DEST]   (default /work/trt-headers)
# Produces DEST/<8.5|8.6|10.3|10.16|11.1>/ and DEST/cuda/include.
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
git --git-dir="$trt" fetch --quiet origin 'refs/heads/release/8.5:refs/heads/release/8.5' \
    'refs/tags/v8.6.1:refs/tags/v8.6.1' 'refs/tags/v10.3.0:refs/tags/v10.3.0' \
    'refs/tags/v10.16:refs/tags/v10.16' 'refs/tags/v11.1:refs/tags/v11.1' || true
# version:TensorRT ref:onnx-tensorrt ref ("-": the TensorRT include/ has NvOnnxParser.h)
for pair in "8.5:release/8.5:8.5-GA" "8.6:v8.6.1:8.6-GA" "10.3:v10.3.0:10.1-GA" "10.16:v10.16:-" "11.1:v11.1:-"; do
    IFS=: read -r v ref oref <<<"$pair"
    d="$DEST/$v/include"
    mkdir -p "$d"
    git --git-dir="$trt" archive "$ref" include | tar -x -C "$d" --strip-components=1
    if [ "$oref" != - ]; then
        git --git-dir="$onnx" show "$oref:NvOnnxParser.h" >"$d/NvOnnxParser.h"
    fi
    echo "$d: TensorRT $(bash "$(dirname "$0")/tensorrt-version.sh" "$d")"
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
