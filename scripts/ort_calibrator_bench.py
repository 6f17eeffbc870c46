#!/usr/bin/env python3
"""Reference figures for scripts/bench-calibrate.sh, on preprocessed inputs dumped as .npy.

  ort_calibrator_bench.py calibrator MODEL NPY_DIR [N]   ONNX Runtime's entropy calibrator
  ort_calibrator_bench.py infer MODEL NPY_DIR [N]        plain FP32 inference (the floor)

Times only the measured part (calibrator: create_calibrator + collect_data + compute_data;
infer: session creation + one run per input) and prints one JSON line with the seconds and
this process's peak RSS (ru_maxrss). Inputs are read lazily, one file per run.
"""
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort


def inputs(npy_dir, n):
    files = sorted(f for f in os.listdir(npy_dir) if f.endswith(".npy"))
    if n:
        files = files[:n]
    if not files:
        sys.exit(f"error: {npy_dir}: no .npy inputs; dump them with `trtforge calibrate --dump-inputs`")
    return [os.path.join(npy_dir, f) for f in files]


def input_name(model):
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return s.get_inputs()[0].name


def calibrator(model, files):
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    name = input_name(model)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(files)

        def get_next(self):
            f = next(self.it, None)
            return None if f is None else {name: np.load(f)}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cal = create_calibrator(
            model,
            augmented_model_path=os.path.join(tmp, "augmented.onnx"),
            calibrate_method=CalibrationMethod.Entropy,
            providers=["CPUExecutionProvider"],
        )
        cal.collect_data(Reader())
        ranges = cal.compute_data()
        seconds = time.perf_counter() - t0
    return seconds, {"tensors": len(ranges.data)}


def infer(model, files):
    name = input_name(model)
    t0 = time.perf_counter()
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for f in files:
        s.run(None, {name: np.load(f)})
    return time.perf_counter() - t0, {}


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("calibrator", "infer"):
        sys.exit(__doc__)
    mode, model, npy_dir = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    files = inputs(npy_dir, n)
    seconds, extra = (calibrator if mode == "calibrator" else infer)(model, files)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "images": len(files), "seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024, 1), **extra}))


if __name__ == "__main__":
    main()
