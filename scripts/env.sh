# Source me: sets up ./.venv if needed and exports ORT_DYLIB_PATH and TRTFORGE_PYTHON.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$_root/scripts/setup.sh"
export TRTFORGE_PYTHON="$_root/.venv/bin/python"
ORT_DYLIB_PATH="$(ls "$_root"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n 1)"
export ORT_DYLIB_PATH
unset _root
