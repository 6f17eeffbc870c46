"""Independent references for trtforge's image stream tests (numpy + OpenCV + Pillow).

Usage:
  preprocess_ref.py MODEL OUTDIR IMAGE...   MODEL in yolox | nanodet | fastestdet: writes
                                            OUTDIR/<i>.npy, float32 1x3xHxW, as the model's
                                            own pipeline prepares IMAGE number i. An IMAGE
                                            ending in .npy holds already decoded RGB pixels
                                            (HxWx3), used instead of cv2.imread's decoding
  preprocess_ref.py decode OUTDIR IMAGE...  OUTDIR/<i>.npy: cv2's decoded pixels, HxWx3 RGB
  preprocess_ref.py cmyk OUT.jpg OUT.npy    a CMYK JPEG (Adobe marker, as Pillow writes it)
                                            and the RGB it stands for, HxWx3 float32
  preprocess_ref.py exif OUT.jpg OUT.npy    a 64x32 JPEG tagged EXIF orientation 6 (rotate
                                            90 deg) and its stored (unrotated) pixels, HxWx3
  preprocess_ref.py npyinfo FILE...         one line per file: shape dtype sum
"""

import sys

import cv2
import numpy as np
from PIL import Image

# Pixels in stored order: trtforge ignores EXIF orientation, so must the reference.
READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def imread(path):
    if path.endswith(".npy"):
        return np.ascontiguousarray(np.load(path)[..., ::-1].round().astype(np.uint8))
    img = cv2.imread(path, READ_FLAGS)
    if img is None:
        raise SystemExit(f"{path}: cv2.imread failed")
    return img  # BGR, uint8


def yolox(img, size=(416, 416)):
    """YOLOX's ValTransform / preproc: top-left letterbox, pad 114, raw 0..255, BGR."""
    padded = np.ones((size[0], size[1], 3), dtype=np.uint8) * 114
    r = min(size[0] / img.shape[0], size[1] / img.shape[1])
    nw, nh = int(img.shape[1] * r), int(img.shape[0] * r)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    padded[:nh, :nw] = resized
    return padded.transpose(2, 0, 1).astype(np.float32)


def letterbox_centre(img, size, pad):
    """Ultralytics LetterBox (auto=False, scaleup=True, centre=True)."""
    h, w = img.shape[:2]
    r = min(size[0] / h, size[1] / w)
    new_unpad = (int(round(w * r)), int(round(h * r)))
    dw, dh = (size[1] - new_unpad[0]) / 2, (size[0] - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad,) * 3)


def nanodet(img):
    """NanoDet-m 320: centred letterbox, pad 0, BGR, (x - mean) / std."""
    x = letterbox_centre(img, (320, 320), 0).astype(np.float32)
    mean = np.array([103.53, 116.28, 123.675], dtype=np.float32)
    std = np.array([57.375, 57.12, 58.395], dtype=np.float32)
    return ((x - mean) / std).transpose(2, 0, 1)


def fastestdet(img):
    """FastestDet: plain resize to 352x352, BGR, / 255."""
    x = cv2.resize(img, (352, 352), interpolation=cv2.INTER_LINEAR)
    return (x.astype(np.float32) / 255.0).transpose(2, 0, 1)


MODELS = {"yolox": yolox, "nanodet": nanodet, "fastestdet": fastestdet}


def save(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def cmyk(out_jpg, out_npy):
    # 16x16 flat blocks aligned to the 8x8 DCT grid, no subsampling: only DC terms, so the
    # decoded samples are exact up to rounding and the test checks the colour conversion.
    blocks = [
        (255, 0, 0, 0),  # cyan ink only -> (0, 255, 255)
        (0, 255, 0, 0),  # magenta -> (255, 0, 255)
        (0, 0, 255, 0),  # yellow -> (255, 255, 0)
        (0, 0, 0, 128),  # half black -> grey 127
        (64, 128, 192, 32),
        (0, 0, 0, 0),  # no ink -> white
    ]
    arr = np.zeros((16, 16 * len(blocks), 4), dtype=np.uint8)
    for i, b in enumerate(blocks):
        arr[:, 16 * i : 16 * (i + 1)] = b
    Image.fromarray(arr, mode="CMYK").save(out_jpg, quality=100, subsampling=0)
    # What the file holds, as Pillow decodes it (ink amounts), then the standard naive
    # conversion R = 255 * (1 - C) * (1 - K).
    c = np.asarray(Image.open(out_jpg)).astype(np.float32)
    assert Image.open(out_jpg).mode == "CMYK"
    rgb = (255.0 - c[..., :3]) * (255.0 - c[..., 3:4]) / 255.0
    save(out_npy, rgb)


def exif(out_jpg, out_npy):
    y, x = np.mgrid[0:32, 0:64]
    arr = np.stack([x * 4, y * 8, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    im = Image.fromarray(arr, mode="RGB")
    ex = Image.Exif()
    ex[0x0112] = 6  # Orientation: rotate 90 CW to display
    im.save(out_jpg, quality=100, subsampling=0, exif=ex.tobytes())
    back = Image.open(out_jpg)
    assert back.getexif().get(0x0112) == 6
    save(out_npy, np.asarray(back).astype(np.float32))  # Pillow does not auto-rotate


def main(argv):
    cmd = argv[1]
    if cmd in MODELS:
        out = argv[2]
        for i, p in enumerate(argv[3:]):
            save(f"{out}/{i}.npy", MODELS[cmd](imread(p))[None])
    elif cmd == "decode":
        out = argv[2]
        for i, p in enumerate(argv[3:]):
            save(f"{out}/{i}.npy", imread(p)[..., ::-1])
    elif cmd == "cmyk":
        cmyk(argv[2], argv[3])
    elif cmd == "exif":
        exif(argv[2], argv[3])
    elif cmd == "npyinfo":
        for p in argv[2:]:
            a = np.load(p)
            print(tuple(a.shape), a.dtype, float(a.astype(np.float64).sum()))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
