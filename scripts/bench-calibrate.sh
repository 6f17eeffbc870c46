#!/usr/bin/env bash
# Calibration benchmark (prints figures; not a test): YOLOX-nano 416x416 on coco128-train.
#   (a) trtforge calibrate, entropy (release build): whole-process wall time and peak RSS
#   (b) ONNX Runtime's Python calibrator, CalibrationMethod.Entropy, on the same preprocessed
#       inputs: create_calibrator + collect_data + compute_data only (scripts/ort_calibrator_bench.py)
#   (c) plain ONNX Runtime FP32 inference over the same inputs (the floor)
# plus the peak RSS of (a) for 32 and for 128 images (memory must not grow with the image count).
#
# Usage: scripts/bench-calibrate.sh [N]      (N images, default 128)
# Env:   ORT_BENCH_IMAGES=M  run (b) on the first M inputs only (default N; (b) needs ~17 GB at 128)
#        TRTFORGE_ORT_THREADS=T  ONNX Runtime intra-op threads for (a)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh >/dev/null
n="${1:-128}"
nb="${ORT_BENCH_IMAGES:-$n}"
recipe=engines/yolox-nano-int8.yaml
model="$(cd engines && realpath ../../shared/models/yolox_nano/yolox_nano.onnx)"
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time missing; install it: apt-get install time" >&2; exit 1; }
cargo build --release --quiet --bin trtforge
bin="$root/target/release/trtforge"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# measure NAME CMD...: runs CMD under /usr/bin/time -v; sets WALL (s) and RSS (MiB).
measure() {
  local name="$1"; shift
  /usr/bin/time -v -o "$tmp/$name.time" "$@" > "$tmp/$name.out"
  WALL="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$tmp/$name.time")"
  RSS="$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tmp/$name.time")"
}
# field FILE KEY: a number from the JSON line of ort_calibrator_bench.py
field() { "$TRTFORGE_PYTHON" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }

echo "preprocessing $n images to .npy (not timed) ..." >&2
"$bin" calibrate "$recipe" --limit "$n" --algorithm minmax --out "$tmp/dump-out" --dump-inputs "$tmp/npy" --force > /dev/null

echo "(a) trtforge calibrate, $n images ..." >&2
measure a "$bin" calibrate "$recipe" --limit "$n" --out "$tmp/a" --force --json
a_wall=$WALL a_rss=$RSS
measure a32 "$bin" calibrate "$recipe" --limit 32 --out "$tmp/a32" --force --json
a32_rss=$RSS

echo "(c) ONNX Runtime FP32 inference, $n images ..." >&2
measure c "$TRTFORGE_PYTHON" scripts/ort_calibrator_bench.py infer "$model" "$tmp/npy" "$n"
c_wall=$WALL c_rss=$RSS c_loop="$(field "$tmp/c.out" seconds)"

echo "(b) ONNX Runtime entropy calibrator, $nb images (slow, memory-hungry) ..." >&2
measure b "$TRTFORGE_PYTHON" scripts/ort_calibrator_bench.py calibrator "$model" "$tmp/npy" "$nb"
b_wall=$WALL b_rss=$RSS b_part="$(field "$tmp/b.out" seconds)"

cores="$(nproc)"
printf '\nYOLOX-nano 416x416, coco128-train, %s CPU cores, ONNX Runtime %s\n' "$cores" \
  "$("$TRTFORGE_PYTHON" -c 'import onnxruntime; print(onnxruntime.__version__)')"
printf '%-58s %7s %10s %12s\n' "run" "images" "wall (s)" "peak RSS MiB"
printf '%-58s %7s %10s %12s\n' "(a) trtforge calibrate --algorithm entropy (whole process)" "$n" "$a_wall" "$a_rss"
printf '%-58s %7s %10s %12s\n' "(a) same, 32 images" 32 "-" "$a32_rss"
printf '%-58s %7s %10s %12s\n' "(b) ORT calibrator Entropy (create+collect+compute)" "$nb" "$b_part" "$b_rss"
printf '%-58s %7s %10s %12s\n' "(c) ORT FP32 inference (session + runs, npy loads)" "$n" "$c_loop" "$c_rss"
awk -v a="$a_wall" -v b="$b_part" -v c="$c_loop" -v ar="$a_rss" -v br="$b_rss" -v n="$n" -v nb="$nb" 'BEGIN {
  bs = b * n / nb   # (b) scaled to n images when run on fewer (it is linear in the image count)
  printf "\n(b)/(a) time: %.1fx (target >= 10)%s\n", bs / a, (nb != n ? " [(b) scaled linearly from " nb " images]" : "")
  printf "(a)/(b) peak RSS: 1/%.0f (target <= 1/20)%s\n", br / ar, (nb != n ? " [(b) RSS at " nb " images]" : "")
  printf "(a)/(c) time: %.2fx (target <= 1.5)\n", a / c }'
