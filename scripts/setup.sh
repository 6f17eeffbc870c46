#!/usr/bin/env bash
# Installs what trtforge needs at run and test time into ./.venv (idempotent):
# ONNX Runtime's shared library (from the onnxruntime wheel) plus the Python test references
# and the CI schema validators of scripts/validate-ci.sh.
# Prints the ORT_DYLIB_PATH line to eval; scripts/env.sh does that for you.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/scripts/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
