#!/usr/bin/env bash
# Print the TensorRT version of an include folder (major.minor.patch.build). NvInferVersion.h
# defines NV_TENSORRT_* as numbers up to 10.x and as aliases of TRT_*_ENTERPRISE from 10.16 on.
#   usage: scripts/tensorrt-version.sh INCLUDE_DIR
set -euo pipefail
awk '
  /^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH|BUILD)(_ENTERPRISE)? / { v[$2] = $3 }
  END {
    n = split("MAJOR MINOR PATCH BUILD", f, " ")
    for (i = 1; i <= n; i++) {
      x = v["NV_TENSORRT_" f[i]]
      if (x == "" || x !~ /^[0-9]+$/) x = v["TRT_" f[i] "_ENTERPRISE"]
      out = out (i > 1 ? "." : "") x
    }
    print out
  }' "$1/NvInferVersion.h"
