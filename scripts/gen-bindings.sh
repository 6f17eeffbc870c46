#!/usr/bin/env bash
# Regenerate src/trt/sys.rs from sys/trtforge_shim.h with the libclang wheel CI uses
# (scripts/setup-tensorrt-check.sh installs it). tests/bindings.rs fails when the two disagree.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(bash scripts/setup-tensorrt-check.sh)"
TRTFORGE_UPDATE_BINDINGS=1 cargo test -q --test bindings

TRTFORGE_UPDATE_BINDINGS= cargo test -q --test bindings
