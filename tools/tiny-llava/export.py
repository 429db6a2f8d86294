"""Exports a trained checkpoint as a llava-hf folder, sample images, the held-out evaluation set and reference
tensors for the C# engine; measures the exported model's accuracy.

  /usr/bin/python3 tools/tiny-llava/export.py --ckpt RUN/best.pt --tokenizer RUN/tokenizer.model --repo .

Writes (paths relative to --repo):
  models/tiny-llava/hf/                 config.json, model.safetensors (F32 or F16, old llava-hf key names), tokenizer.model,
                                        tokenizer_config.json, special_tokens_map.json, chat_template.json,
                                        generation_config.json, preprocessor_config.json, processor_config.json
  samples/                              a few PNG images from the generator
  tests/data/tiny-llava-eval/           PNG images + items.jsonl (data seed EVAL_SEED, never used in training)
  tests/data/tiny-llava-eval/reference/ cases.json + .npy tensors computed in float64 from the stored weights
Every number is computed from the weights as written (read back from model.safetensors), not from the checkpoint.
"""
import argparse
import json
import os
import shutil
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402

EVAL_SEED = 3  # held out: training uses data seed 1, checkpoint selection seed 2, the tokenizer corpus 12345

LLAVA_15_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")


# ----------------------------------------------------------------------------------------------- safetensors
def write_safetensors(path, tensors, dtype="F16"):
    """safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}} padded with spaces to a
    multiple of 8, then the raw little-endian tensor bytes in header order."""
    np_dtype = {"F16": "<f2", "F32": "<f4"}[dtype]
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype(np_dtype)).tobytes()
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Independent re-read of the file just written (checks the writer, returns float32 tensors)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = {"F16": np.float16, "F32": np.float32}[info["dtype"]]
        out[name] = torch.from_numpy(np.frombuffer(body[a:b], dtype=dt).reshape(info["shape"]).astype(np.float32))
    return out


# ----------------------------------------------------------------------------------------------- configs
def hf_config(c, image_token_index):
    head_dim = c["text_hidden"] // c["text_heads"]
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": image_token_index,
        "image_seq_length": M.IMAGE_TOKENS,
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": True,
        "vision_feature_layer": c["vision_feature_layer"],
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "text_config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": c["vocab_size"],
            "hidden_size": c["text_hidden"],
            "intermediate_size": c["text_intermediate"],
            "num_hidden_layers": c["text_layers"],
            "num_attention_heads": c["text_heads"],
            "num_key_value_heads": c["text_kv_heads"],
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": c["max_position_embeddings"],
            "rms_norm_eps": c["rms_norm_eps"],
            "rope_theta": c["rope_theta"],
            "rope_scaling": None,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "tie_word_embeddings": False,
            "initializer_range": 0.02,
            "use_cache": True,
            "bos_token_id": M.BOS,
            "eos_token_id": M.EOS,
            "torch_dtype": "float16",
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": c["vision_hidden"],
            "intermediate_size": c["vision_intermediate"],
            "num_hidden_layers": c["vision_layers"],
            "num_attention_heads": c["vision_heads"],
            "num_channels": c["num_channels"],
            "image_size": c["image_size"],
            "patch_size": c["patch_size"],
            "hidden_act": "quick_gelu",
            "layer_norm_eps": c["layer_norm_eps"],
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "projection_dim": c["vision_hidden"],
            "initializer_range": 0.02,
            "initializer_factor": 1.0,
            "torch_dtype": "float16",
        },
    }


def special(content):
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
            "special": True}


def write_hf_folder(folder, state, c, image_token_index, tokenizer_path, dtype):
    os.makedirs(folder, exist_ok=True)
    dump = lambda name, obj: open(os.path.join(folder, name), "w").write(json.dumps(obj, indent=2) + "\n")
    config = hf_config(c, image_token_index)
    torch_dtype = {"F16": "float16", "F32": "float32"}[dtype]
    for section in (config, config["text_config"], config["vision_config"]):
        section["torch_dtype"] = torch_dtype
    dump("config.json", config)
    dump("generation_config.json", {"bos_token_id": M.BOS, "eos_token_id": M.EOS})
    write_safetensors(os.path.join(folder, "model.safetensors"), state, dtype)
    shutil.copyfile(tokenizer_path, os.path.join(folder, "tokenizer.model"))
    # LlamaTokenizer, legacy=True: '<image>' is listed as a special added token, so transformers splits the text
    # around it before SentencePiece (and SentencePiece adds its dummy '▁' to the text that follows).
    dump("tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {"0": special("<unk>"), "1": special("<s>"), "2": special("</s>"),
                                 str(image_token_index): special("<image>")},
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": c["max_position_embeddings"],
        "padding_side": "left",
        "processor_class": "LlavaProcessor",
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "use_default_system_prompt": False,
    })
    dump("special_tokens_map.json", {"bos_token": special("<s>"), "eos_token": special("</s>"),
                                     "unk_token": special("<unk>")})
    dump("chat_template.json", {"chat_template": LLAVA_15_CHAT_TEMPLATE})
    s = c["image_size"]
    dump("preprocessor_config.json", {
        "crop_size": {"height": s, "width": s},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": M.CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": M.CLIP_STD,
        "processor_class": "LlavaProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": s},
    })
    dump("processor_config.json", {"image_token": "<image>", "num_additional_image_tokens": 1,
                                   "patch_size": c["patch_size"], "processor_class": "LlavaProcessor",
                                   "vision_feature_select_strategy": "default"})


# ----------------------------------------------------------------------------------------------- eval set
EVAL_PLAN = [("single", t, 30) for t in data.SINGLE_KINDS] + [("multi", t, 30) for t in data.MULTI_KINDS] + \
            [("caption", "caption", 16)]


def eval_items():
    items, index = [], 0
    for kind, task, n in EVAL_PLAN:
        for _ in range(n):
            it = data.make_item(EVAL_SEED, index, kind=kind, kinds=None if kind == "caption" else [task])
            index += 1
            items.append(it)
    return items


def write_eval_set(folder, items):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "items.jsonl"), "w") as f:
        for i, it in enumerate(items):
            names = []
            for k, spec in enumerate(it["specs"]):
                name = f"{i:03d}_{k}.png"
                data.render(spec).save(os.path.join(folder, name), optimize=True)
                names.append(name)
            f.write(json.dumps({"id": i, "images": names, "question": it["question"], "answer": it["answer"],
                                "kind": it["kind"], "task": it["task"]}) + "\n")


# ----------------------------------------------------------------------------------------------- reference
def reference_cases(folder, model64, sp, items):
    """Fixed inputs -> ids after placeholder expansion, pixel values, projected image embeddings, logits; all in
    float64 from the weights as written, saved as float32 (ids as int64)."""
    os.makedirs(folder, exist_ok=True)
    single = next(i for i, it in enumerate(items) if it["task"] == "where")
    multi = next(i for i, it in enumerate(items) if it["task"] == "change")
    cases = [
        ("text_only", "What color is the star?", []),
        ("single_image", items[single]["question"], [(single, 0)]),
        ("two_images", items[multi]["question"], [(multi, 0), (multi, 1)]),
    ]
    meta = []
    for name, question, images in cases:
        prompt = M.prompt_text(question, len(images))
        unexpanded = [M.BOS] + M.encode_legacy(sp, prompt)
        ids = M.prompt_ids(sp, question, len(images))
        files = [f"{i:03d}_{k}.png" for i, k in images]
        from PIL import Image
        pix = [M.pixel_values(Image.open(os.path.join(os.path.dirname(folder), f))) for f in files]
        entry = {"name": name, "prompt": prompt, "images": files, "input_ids_unexpanded": unexpanded,
                 "input_ids": ids, "files": {}}
        np.save(os.path.join(folder, f"{name}.input_ids.npy"), np.array(ids, np.int64))
        entry["files"]["input_ids"] = f"{name}.input_ids.npy"
        pixels = torch.stack(pix).double() if pix else None
        with torch.no_grad():
            if pixels is not None:
                for k, p in enumerate(pix):
                    np.save(os.path.join(folder, f"{name}.pixel_values.{k}.npy"), p.numpy().astype(np.float32))
                feats = model64.image_features(pixels)  # [n_img, 9, text_hidden]
                np.save(os.path.join(folder, f"{name}.image_embeds.npy"), feats.numpy().astype(np.float32))
                entry["files"]["pixel_values"] = [f"{name}.pixel_values.{k}.npy" for k in range(len(pix))]
                entry["files"]["image_embeds"] = f"{name}.image_embeds.npy"
            logits = model64(torch.tensor([ids]), pixels)[0]
        np.save(os.path.join(folder, f"{name}.logits.npy"), logits.numpy().astype(np.float32))
        entry["files"]["logits"] = f"{name}.logits.npy"
        top = logits[-1].argmax().item()
        entry["next_token_argmax"] = top
        entry["next_token_piece"] = sp.id_to_piece(top)
        entry["logits_std"] = float(logits.std())
        meta.append(entry)
    info = {"computed_with": "PyTorch float64 from the weights as stored in models/tiny-llava/hf/model.safetensors "
                             "(tools/tiny-llava/export.py); saved as float32, ids int64",
            "image_embeds_shape": "[n_images, image_seq_length, text hidden]", "logits_shape": "[n_tokens, vocab]",
            "pixel_values_shape": "[3, S, S] per image", "cases": meta}
    with open(os.path.join(folder, "cases.json"), "w") as f:
        f.write(json.dumps(info, indent=1) + "\n")


@torch.no_grad()
def measure(model, sp, items, folder):
    from PIL import Image
    res, rows = {}, []
    t0 = time.time()
    for i, it in enumerate(items):
        pix = torch.stack([M.pixel_values(Image.open(os.path.join(folder, f"{i:03d}_{k}.png")))
                           for k in range(len(it["specs"]))])
        got, _ = M.greedy_answer(model, sp, it["question"], pix, max_new=60)
        ok = got == it["answer"]
        for key in (it["kind"], f"{it['kind']}/{it['task']}"):
            c, n = res.get(key, (0, 0))
            res[key] = (c + ok, n + 1)
        rows.append({"id": i, "got": got, "expected": it["answer"], "ok": ok})
    return res, rows, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--report", default=None, help="write accuracy json here")
    ap.add_argument("--dtype", choices=["F32", "F16"], default="F32",
                    help="weights in model.safetensors (F32: 5.2 MB, so the engine can be checked to float32 precision)")
    ap.add_argument("--no-measure", action="store_true", help="skip the accuracy run (and torch-answers.json)")
    ap.add_argument("--checkpoint-name", default=None, help="how torch-answers.json names the checkpoint, e.g. 'run 7 step 8454'")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    ck = torch.load(args.ckpt)
    c, image_id = ck["config"], ck["image_token_index"]
    assert c == M.CONFIG

    hf = os.path.join(args.repo, "models/tiny-llava/hf")
    write_hf_folder(hf, ck["model"], c, image_id, args.tokenizer, args.dtype)
    weights = read_safetensors(os.path.join(hf, "model.safetensors"))
    model = M.TinyLlava(c, image_id)
    missing = set(model.state_dict()) ^ set(weights)
    assert not missing, missing
    model.load_state_dict(weights)  # the values as written (F16-rounded with --dtype F16), float32 compute
    model.eval()
    model64 = M.TinyLlava(c, image_id).double()
    model64.load_state_dict({k: v.double() for k, v in weights.items()})
    model64.eval()

    samples = os.path.join(args.repo, "samples")
    os.makedirs(samples, exist_ok=True)
    for i in range(4):
        spec = data.random_spec(__import__("random").Random(100 + i))
        data.render(spec).save(os.path.join(samples, f"tiny-llava-{i}.png"), optimize=True)
        print(f"samples/tiny-llava-{i}.png: {data.caption(spec)}")

    ev = os.path.join(args.repo, "tests/data/tiny-llava-eval")
    items = eval_items()
    write_eval_set(ev, items)
    reference_cases(os.path.join(ev, "reference"), model64, sp, items)

    if args.no_measure:
        return
    res, rows, secs = measure(model, sp, items, ev)
    summary = {k: {"correct": c_, "total": n, "accuracy": round(c_ / n, 4)} for k, (c_, n) in sorted(res.items())}
    print(json.dumps(summary, indent=1))
    print(f"eval: {len(items)} items in {secs:.1f}s; params {sum(p.numel() for p in model.parameters())}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"summary": summary, "rows": rows, "checkpoint_step": ck["step"]}, f, indent=1)
    # What the engine's tests compare with (TinyLlavaFiles.cs): torch's answer per held-out item and its accuracy.
    with open(os.path.join(ev, "torch-answers.json"), "w") as f:
        json.dump({"model": "models/tiny-llava/hf (F32)", "checkpoint": args.checkpoint_name or f"step {ck['step']}",
                   "decoding": "greedy, float32 PyTorch (tools/tiny-llava/model.py), stop at </s>, max 60 new tokens, "
                               "answer = decoded text stripped",
                   "summary": summary,
                   "answers": [{"id": r["id"], "torch_answer": r["got"], "ok": r["ok"]} for r in rows]}, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
