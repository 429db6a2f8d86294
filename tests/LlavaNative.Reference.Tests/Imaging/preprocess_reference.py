# Reference preprocessing with Pillow + numpy, following transformers' image processors step by step
# (CLIPImageProcessor: shortest-edge resize + center crop; LLaVA expand2square + resize; SiglipImageProcessor:
# direct resize), for LlavaNative's preprocessing tests.
# usage: preprocess_reference.py INPUT.npy MODE SIZE OUT_FITTED.npy OUT_PIXELS.npy
#   INPUT: uint8 [H, W, 3]; MODE: crop | pad | stretch | resize_then_pad
#   OUT_FITTED: float32 [S, S, 3] (the uint8 values); OUT_PIXELS: float32 [3, S, S]
import math
import sys

import numpy as np
from PIL import Image

src, mode, size, out_fitted, out_pixels = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
image = Image.fromarray(np.load(src), mode="RGB")
if mode in ("crop",):
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
elif mode in ("pad", "resize_then_pad"):
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
else:
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
pad_color = tuple(int(x * 255) for x in mean)

w, h = image.size
if mode == "crop":
    short, long = (h, w) if w >= h else (w, h)
    new_long = int(size * long / short)
    new_w, new_h = (new_long, size) if w >= h else (size, new_long)
    resized = np.asarray(image.resize((new_w, new_h), resample=Image.BICUBIC))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    fitted = resized[top:top + size, left:left + size]
elif mode == "pad":
    side = max(w, h)
    square = Image.new("RGB", (side, side), pad_color)
    if w > h:
        square.paste(image, (0, (w - h) // 2))
    else:
        square.paste(image, ((h - w) // 2, 0))
    fitted = np.asarray(square.resize((size, size), resample=Image.BICUBIC))
elif mode == "resize_then_pad":
    scale = size / max(w, h)
    nw, nh = min(size, math.ceil(w * scale)), min(size, math.ceil(h * scale))
    small = image.resize((nw, nh), resample=Image.BICUBIC)
    canvas = Image.new("RGB", (size, size), pad_color)
    canvas.paste(small, ((size - nw) // 2, (size - nh) // 2))
    fitted = np.asarray(canvas)
else:
    fitted = np.asarray(image.resize((size, size), resample=Image.BICUBIC))

# transformers rescale(): float64 multiply then cast to float32; normalize(): float32 arithmetic.
rescaled = (fitted.astype(np.float64) * 0.00392156862745098).astype(np.float32)
normalized = (rescaled - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
np.save(out_fitted, fitted.astype(np.float32))
np.save(out_pixels, np.ascontiguousarray(normalized.transpose(2, 0, 1)).astype(np.float32))
