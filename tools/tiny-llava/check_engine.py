"""Compares what the C# engine can already do with the tiny LLaVA against the PyTorch reference:
  1. `llava tokenize` ids vs the legacy SentencePiece encoding the model was trained on (prompts with <image>);
  2. `llava eval` logits of the text-only reference case vs tests/data/tiny-llava-eval/reference/text_only.logits.npy.

  /usr/bin/python3 tools/tiny-llava/check_engine.py --repo . [--llava "dotnet src/Cli/bin/Release/net10.0/llava.dll"]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402

PROMPTS = [
    "USER: <image>\nWhat color is the star? ASSISTANT:",
    "USER: <image>\n<image>\nWhich image has more objects? ASSISTANT:",
    "USER: What is written in the image? ASSISTANT:",
    "USER: <image>\nDescribe the image. ASSISTANT: A red star at the top right. It says 7.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--llava", default="dotnet src/Cli/bin/Release/net10.0/llava.dll")
    args = ap.parse_args()
    import sentencepiece as spm
    hf = os.path.join(args.repo, "models/tiny-llava/hf")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(hf, "tokenizer.model"))
    cli = shlex.split(args.llava)
    ok = True
    for text in PROMPTS:
        out = subprocess.run(cli + ["tokenize", "-m", hf, "--text", text, "--json"], cwd=args.repo,
                             capture_output=True, text=True, check=True).stdout
        engine = [t["id"] for t in json.loads(out)]
        ours = [M.BOS] + M.encode_legacy(sp, text)
        same = engine == ours
        ok &= same
        print(f"tokenize {'same' if same else 'DIFFERENT'}: {text!r}\n  engine {engine}\n  torch  {ours}")
    ref = os.path.join(args.repo, "tests/data/tiny-llava-eval/reference")
    cases = json.load(open(os.path.join(ref, "cases.json")))["cases"]
    case = next(c for c in cases if c["name"] == "text_only")
    out_path = "/tmp/tiny-llava-text-only-logits.npy"
    subprocess.run(cli + ["eval", "-m", hf, "--tokens", ",".join(map(str, case["input_ids"])), "--logits-out",
                          out_path], cwd=args.repo, check=True, capture_output=True)
    got = np.load(out_path)
    want = np.load(os.path.join(ref, case["files"]["logits"]))
    diff = np.abs(got.astype(np.float64) - want)
    print(f"eval text_only: logits {got.shape}, max abs diff {diff.max():.3e}, reference std {want.std():.3f}, "
          f"argmax equal at {int((got.argmax(-1) == want.argmax(-1)).sum())}/{len(want)} positions")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
