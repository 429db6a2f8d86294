"""Torch's greedy answers for the shipped samples/*.png, so `llava run` without -m (the README's first command)
can be checked against the model it ships: tests/data/tiny-llava-eval/torch_sample_answers.jsonl.

Uses the trainer's plain-PyTorch model (tools/tiny-llava/model.py: prompt, legacy tokenization, greedy decoding,
preprocessing) on the weights as stored in models/tiny-llava/hf/model.safetensors, float32 as the exported
held-out answers (torch-answers.json) are. Run from the repository root after a new export:

  /usr/bin/python3 tools/tiny-llava/torch_sample_answers.py [--model-py-dir tools/tiny-llava]
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np

QUESTIONS = ["What color is the circle?", "How many objects are there?", "What is written in the image?"]


def read_safetensors_f32(path):
    """{name: float32 array}; the file must hold F32 tensors only (the shipped export)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, this script reads F32 only")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(blob[a:b], dtype="<f4").reshape(info["shape"]).copy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--model-py-dir", default=os.path.dirname(os.path.abspath(__file__)),
                    help="folder with the trainer's model.py (default: beside this script)")
    args = ap.parse_args()
    sys.path.insert(0, args.model_py_dir)
    import torch
    import sentencepiece as spm
    from PIL import Image
    import model as M

    hf = os.path.join(args.repo, "models/tiny-llava/hf")
    config = json.load(open(os.path.join(hf, "config.json")))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(hf, "tokenizer.model"))
    weights = {k: torch.from_numpy(v) for k, v in read_safetensors_f32(os.path.join(hf, "model.safetensors")).items()}
    model = M.TinyLlava(M.CONFIG, config["image_token_index"])
    model.load_state_dict(weights)
    model.eval()

    out_path = os.path.join(args.repo, "tests/data/tiny-llava-eval/torch_sample_answers.jsonl")
    with open(out_path, "w") as out:
        for image in sorted(glob.glob(os.path.join(args.repo, "samples/tiny-llava-*.png"))):
            pixels = M.pixel_values(Image.open(image))[None]
            for q in QUESTIONS:
                answer, ids = M.greedy_answer(model, sp, q, pixels, max_new=60)
                row = {"image": "samples/" + os.path.basename(image), "question": q, "torch_answer": answer, "ids": ids}
                out.write(json.dumps(row) + "\n")
                print(row)


if __name__ == "__main__":
    main()
