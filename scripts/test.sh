#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/setup.sh), then runs them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
# Release: calibration and evaluation tests push real images through real models.
cargo test --release "$@"
