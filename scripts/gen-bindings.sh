#!/usr/bin/env bash
# Regenerate src/trt/sys.rs from sys/trtforge_shim.h (needs libclang: apt-get install
# libclang-dev). tests/bindings.rs fails when the two disagree.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TRTFORGE_UPDATE_BINDINGS=1 cargo test -q --test bindings

TRTFORGE_UPDATE_BINDINGS= cargo test -q --test bindings
