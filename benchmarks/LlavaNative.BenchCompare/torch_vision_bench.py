#!/usr/bin/python3
"""PyTorch CPU timing of the LLaVA vision tower + projector, for tools/bench-vision.sh.

The forward pass is tests/LlavaNative.Reference.Tests/Vision/torch_reference.py's (HF transformers semantics, plain
torch ops), imported, not copied; here it runs in float32 instead of the tests' float64. Weights come from the HF-layout
directory the C# side wrote next to the mmproj GGUF (float32 .npy holding exactly the values the GGUF decodes to: for
an F16 GGUF, the F16-rounded weights, computed in float32 -- CPU half matmul is not a fair baseline).

Prints one JSON line: median and individual ms per image (one warm-up first), thread count, BLAS in use.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "LlavaNative.Reference.Tests", "Vision"))
import torch_reference  # noqa: E402


def blas_in_use():
    """The BLAS library the process actually mapped (torch.__config__ only says how it was built)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower() and line.split()[-1].startswith("/")}
    return ", ".join(sorted(libs)) or "none mapped"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf-dir", required=True)
    ap.add_argument("--pixels", required=True)
    ap.add_argument("--blocks", type=int, required=True, help="blocks the mmproj GGUF runs (the hidden state it selects)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", help="write the projected output [tokens, text_hidden] of the warm-up run here (.npy)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.hf_dir, "config.json")) as f:
        cfg = json.load(f)
    # Run exactly the blocks the engine runs: hidden_states[feature_layer] of the full tower is the last hidden state
    # of a tower cut after that block (LLaVA-1.5's -2 would otherwise cost torch one extra block).
    cfg["vision_config"]["num_hidden_layers"] = args.blocks
    cfg["vision_feature_layer"] = -1
    w = {k: v.float() for k, v in torch_reference.load_weights(args.hf_dir).items()}
    pixels = torch.from_numpy(np.load(args.pixels).astype(np.float32))

    runs = []
    with torch.no_grad():
        for i in range(args.reps + 1):
            start = time.perf_counter()
            _, projected = torch_reference.llava_image_features(cfg, w, pixels)
            ms = (time.perf_counter() - start) * 1000
            if i == 0:
                if args.out:
                    np.save(args.out, np.ascontiguousarray(projected.numpy(), dtype=np.float32))
            else:
                runs.append(ms)
    print(json.dumps({
        "median_ms": statistics.median(runs), "runs_ms": runs, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "blas_built": "BLAS_INFO=" + torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0],
        "blas_mapped": blas_in_use(), "dtype": str(projected.dtype), "shape": list(projected.shape),
    }))


if __name__ == "__main__":
    main()
