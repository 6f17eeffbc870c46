#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/setup.sh; for the bundle
# registry test scripts/setup-registry.sh; for the TensorRT checks scripts/setup-tensorrt-check.sh),
# then runs them:
#   1. every test, release build, default features (real images through real models);
#   2. the TensorRT path against each header set in ../shared/reference/tensorrt-headers
#      (scripts/check-tensorrt.sh: compile, lint, call sequences on the test double).
# TRTFORGE_SKIP_TENSORRT_CHECK=1 runs step 1 only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
eval "$(bash scripts/setup-tensorrt-check.sh)"
bash scripts/setup-registry.sh
cargo test --release "$@"
if [ -n "${TRTFORGE_SKIP_TENSORRT_CHECK:-}" ]; then
    echo "TensorRT checks skipped (TRTFORGE_SKIP_TENSORRT_CHECK)"
elif [ -d ../shared/reference/tensorrt-headers ] || [ "${CI:-}" = true ]; then
    bash scripts/check-tensorrt.sh
else
    echo "SKIP: TensorRT checks need ../shared/reference/tensorrt-headers (absent here)"
fi
