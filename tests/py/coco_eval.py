"""Reference COCO bbox evaluation with pycocotools, for trtforge's mAP tests.

Usage: coco_eval.py GT.json DT.json
GT.json is a COCO ground-truth file; DT.json a COCO results list
([{image_id, category_id, bbox: [x, y, w, h], score}]).
Prints one JSON object on stdout: {"map50": ..., "map50_95": ..., "per_class": {cat_id: ap50_95}}.
pycocotools' own progress text goes to stderr so stdout stays machine-readable.
"""
import contextlib
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main() -> None:
    gt_path, dt_path = sys.argv[1], sys.argv[2]
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(gt_path)
        with open(dt_path) as f:
            dts = json.load(f)
        if not dts:
            print(json.dumps({"map50": 0.0, "map50_95": 0.0, "per_class": {}}), file=sys.__stdout__)
            return
        dt = gt.loadRes(dts)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision: [T, R, K, A, M]; area "all" is index 0, maxDets 100 is the last.
    prec = ev.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = prec[:, :, k]
        if (p > -1).any():
            per_class[str(cat)] = float(np.mean(p[p > -1]))
    out = {"map50": float(ev.stats[1]), "map50_95": float(ev.stats[0]), "per_class": per_class}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
