# Reference preprocessing driven by a Hugging Face preprocessor_config.json, with Pillow + numpy following
# transformers' processors step by step: CLIPImageProcessor (resize so the shortest edge is size.shortest_edge,
# long side int-truncated as get_resize_output_image_size(default_to_square=False) does, then center_crop with
# top = (H - h) // 2, left = (W - w) // 2), SiglipImageProcessor (resize to size.height x size.width), original
# LLaVA's expand2square (image_aspect_ratio "pad" in config.json: paste centred on a square of int(mean * 255)),
# then rescale (float64 multiply, float32 cast) and normalize (float32), output CHW.
# usage: hf_preprocess_reference.py INPUT.npy MODEL_FOLDER [TOWER_FOLDER|-] OUT_PIXELS.npy
import json
import os
import sys

import numpy as np
from PIL import Image

src, folder, tower, out_pixels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tower = None if tower == "-" else tower
image = Image.fromarray(np.load(src), mode="RGB")

proc_path = next(os.path.join(d, "preprocessor_config.json") for d in (folder, tower)
                 if d and os.path.exists(os.path.join(d, "preprocessor_config.json")))
with open(proc_path) as f:
    p = json.load(f)
with open(os.path.join(folder, "config.json")) as f:
    config = json.load(f)
assert p.get("resample", 3) == 3
mean, std = p["image_mean"], p["image_std"]

if config.get("image_aspect_ratio") == "pad":
    w, h = image.size
    side = max(w, h)
    square = Image.new("RGB", (side, side), tuple(int(x * 255) for x in mean))
    square.paste(image, ((side - w) // 2, (side - h) // 2))
    image = square

size = p["size"]
if "shortest_edge" in size:
    edge = size["shortest_edge"]
    w, h = image.size
    short, long = (h, w) if w >= h else (w, h)
    new_long = int(edge * long / short)
    new_w, new_h = (new_long, edge) if w >= h else (edge, new_long)
    arr = np.asarray(image.resize((new_w, new_h), resample=Image.BICUBIC))
else:
    arr = np.asarray(image.resize((size["width"], size["height"]), resample=Image.BICUBIC))
if p.get("do_center_crop", "shortest_edge" in size):
    ch, cw = p["crop_size"]["height"], p["crop_size"]["width"]
    top, left = (arr.shape[0] - ch) // 2, (arr.shape[1] - cw) // 2
    arr = arr[top:top + ch, left:left + cw]

rescaled = (arr.astype(np.float64) * p.get("rescale_factor", 1 / 255)).astype(np.float32)
normalized = (rescaled - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
np.save(out_pixels, np.ascontiguousarray(normalized.transpose(2, 0, 1)).astype(np.float32))
