"""Cross-checks the exported reference image embeddings against the repo's independent float64 vision reference
(tests/LlavaNative.Reference.Tests/Vision/torch_reference.py, written separately from model.py): dumps the
vision tower + projector weights of models/tiny-llava/hf/model.safetensors as .npy, runs that script on each
reference case's pixel values and compares its projected.npy with <case>.image_embeds.npy.

  /usr/bin/python3 tools/tiny-llava/crosscheck_vision.py --repo .
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    args = ap.parse_args()
    hf = os.path.join(args.repo, "models/tiny-llava/hf")
    ref = os.path.join(args.repo, "tests/data/tiny-llava-eval/reference")
    script = os.path.join(args.repo, "tests/LlavaNative.Reference.Tests/Vision/torch_reference.py")
    weights = read_safetensors(os.path.join(hf, "model.safetensors"))
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        wdir = os.path.join(tmp, "hf")
        os.makedirs(wdir)
        with open(os.path.join(hf, "config.json")) as f:
            json.dump(json.load(f), open(os.path.join(wdir, "config.json"), "w"))
        for name, t in weights.items():
            if name.startswith(("vision_tower.", "multi_modal_projector.")):
                np.save(os.path.join(wdir, name + ".npy"), t.numpy().astype(np.float32))
        for case in json.load(open(os.path.join(ref, "cases.json")))["cases"]:
            if "image_embeds" not in case["files"]:
                continue
            ours = np.load(os.path.join(ref, case["files"]["image_embeds"]))
            for k, pix in enumerate(case["files"]["pixel_values"]):
                out = os.path.join(tmp, f"{case['name']}-{k}")
                os.makedirs(out)
                subprocess.run([sys.executable, script, "--hf-dir", wdir, "--pixels", os.path.join(ref, pix),
                                "--out-dir", out], check=True)
                theirs = np.load(os.path.join(out, "projected.npy"))
                d = float(np.abs(theirs.astype(np.float64) - ours[k]).max())
                worst = max(worst, d)
                print(f"{case['name']} image {k}: shape {theirs.shape} vs {ours[k].shape}, max abs {d:.3e}, "
                      f"embedding std {ours[k].std():.3f}")
    print(f"worst max abs {worst:.3e}")
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == "__main__":
    main()
