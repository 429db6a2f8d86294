#!/usr/bin/python3
"""Independent float64 reference for the LLaVA vision tower + projector, following HF transformers' forward
semantics (modeling_clip.py / modeling_siglip.py / modeling_llava.py) with plain torch primitives, because HF
transformers itself is not installable here.

Input: a directory in HF layout -- config.json (LlavaConfig fields: vision_config, vision_feature_layer,
vision_feature_select_strategy, projector_hidden_act, and mm_projector_type "linear" for original LLaVA v1) and
one float32 .npy per tensor named by its HF key (vision_tower.vision_model.*, multi_modal_projector.*) -- and
normalized planar pixels [3, S, S] as .npy.
Output: features.npy [n_tokens, hidden] (hidden_states[vision_feature_layer] after the select strategy, no
post_layernorm) and projected.npy [n_tokens, text_hidden], both float32 (computed in float64).

Optionally (--gguf FILE --layout legacy|explicit|all) it also opens the mmproj GGUF the C# test wrote with
llama.cpp's own gguf-py reader and checks that it holds exactly these weights under llama.cpp's naming and
dimension conventions (legacy converter: last block dropped, fc1 named ffn_down), so the test's GGUF writer
is anchored to llama.cpp rather than to the engine it is testing.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOWER = "vision_tower.vision_model."


def load_weights(directory):
    weights = {}
    for name in os.listdir(directory):
        if name.endswith(".npy"):
            weights[name[:-4]] = torch.from_numpy(np.load(os.path.join(directory, name)).astype(np.float64))
    return weights


def activation(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return lambda x: F.gelu(x)  # exact erf form
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError(f"unknown hidden_act {name}")


def linear(x, w, b):
    y = x @ w.T
    return y + b if b is not None else y


def vision_tower(cfg, w, pixels):
    """Returns HF's hidden_states tuple as a list: [embeddings (after pre_layrnorm for CLIP), block 1 output, ...]."""
    vc = cfg["vision_config"]
    clip = vc["model_type"] == "clip_vision_model"
    d, heads, p = vc["hidden_size"], vc["num_attention_heads"], vc["patch_size"]
    eps = vc.get("layer_norm_eps", 1e-5 if clip else 1e-6)
    act = activation(vc.get("hidden_act", "quick_gelu" if clip else "gelu_pytorch_tanh"))
    head_dim = d // heads

    x = pixels[None]  # [1, 3, S, S]
    patch = F.conv2d(x, w[TOWER + "embeddings.patch_embedding.weight"],
                     w.get(TOWER + "embeddings.patch_embedding.bias"), stride=p)  # [1, D, G, G]
    emb = patch.flatten(2).transpose(1, 2)  # [1, P, D]
    if clip:
        cls = w[TOWER + "embeddings.class_embedding"].reshape(1, 1, d)
        emb = torch.cat([cls, emb], dim=1)
    emb = emb + w[TOWER + "embeddings.position_embedding.weight"][None]
    if clip:
        h = F.layer_norm(emb, (d,), w[TOWER + "pre_layrnorm.weight"], w[TOWER + "pre_layrnorm.bias"], eps)
    else:
        h = emb
    hidden_states = [h]
    n = h.shape[1]
    for i in range(vc["num_hidden_layers"]):
        pre = f"{TOWER}encoder.layers.{i}."
        residual = h
        t = F.layer_norm(h, (d,), w[pre + "layer_norm1.weight"], w[pre + "layer_norm1.bias"], eps)
        q = linear(t, w[pre + "self_attn.q_proj.weight"], w[pre + "self_attn.q_proj.bias"]) * head_dim ** -0.5
        k = linear(t, w[pre + "self_attn.k_proj.weight"], w[pre + "self_attn.k_proj.bias"])
        v = linear(t, w[pre + "self_attn.v_proj.weight"], w[pre + "self_attn.v_proj.bias"])
        q, k, v = (z.view(1, n, heads, head_dim).transpose(1, 2) for z in (q, k, v))  # [1, H, N, hd]
        probs = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # no mask: bidirectional
        att = (probs @ v).transpose(1, 2).reshape(1, n, d)
        h = residual + linear(att, w[pre + "self_attn.out_proj.weight"], w[pre + "self_attn.out_proj.bias"])
        residual = h
        t = F.layer_norm(h, (d,), w[pre + "layer_norm2.weight"], w[pre + "layer_norm2.bias"], eps)
        t = linear(act(linear(t, w[pre + "mlp.fc1.weight"], w[pre + "mlp.fc1.bias"])), w[pre + "mlp.fc2.weight"], w[pre + "mlp.fc2.bias"])
        h = residual + t
        hidden_states.append(h)
    return hidden_states


def llava_image_features(cfg, w, pixels):
    hidden_states = vision_tower(cfg, w, pixels)
    selected = hidden_states[cfg["vision_feature_layer"]]  # Python indexing, as HF: -2 = second to last
    if cfg["vision_feature_select_strategy"] == "default":
        selected = selected[:, 1:]
    feats = selected[0]
    if cfg.get("mm_projector_type") == "linear":
        projected = linear(feats, w["multi_modal_projector.linear_1.weight"], w.get("multi_modal_projector.linear_1.bias"))
    else:
        act = activation(cfg.get("projector_hidden_act", "gelu"))
        projected = linear(act(linear(feats, w["multi_modal_projector.linear_1.weight"], w.get("multi_modal_projector.linear_1.bias"))),
                           w["multi_modal_projector.linear_2.weight"], w.get("multi_modal_projector.linear_2.bias"))
    return feats, projected


def gguf_name(hf, layout, n_blocks):
    """llama.cpp's mmproj tensor name for an HF key (legacy converter's get_tensor_name), or None if dropped."""
    fixed = {
        TOWER + "embeddings.patch_embedding.weight": "v.patch_embd.weight",
        TOWER + "embeddings.patch_embedding.bias": "v.patch_embd.bias",
        TOWER + "embeddings.class_embedding": "v.class_embd",
        TOWER + "embeddings.position_embedding.weight": "v.position_embd.weight",
        TOWER + "pre_layrnorm.weight": "v.pre_ln.weight",
        TOWER + "pre_layrnorm.bias": "v.pre_ln.bias",
    }
    if hf in fixed:
        return fixed[hf]
    if hf.startswith("multi_modal_projector.linear_1."):
        return "mm.0." + hf.rsplit(".", 1)[1]
    if hf.startswith("multi_modal_projector.linear_2."):
        return "mm.2." + hf.rsplit(".", 1)[1]
    rest = hf[len(TOWER + "encoder.layers."):]
    layer, module = rest.split(".", 1)
    if int(layer) >= n_blocks:
        return None
    module, suffix = module.rsplit(".", 1)
    legacy = layout == "legacy"
    names = {"layer_norm1": "ln1", "layer_norm2": "ln2", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.out_proj": "attn_out",
             "mlp.fc1": "ffn_down" if legacy else "ffn_up", "mlp.fc2": "ffn_up" if legacy else "ffn_down"}
    return f"v.blk.{layer}.{names[module]}.{suffix}"


def check_gguf(path, layout, cfg, w, gguf_py):
    sys.path.insert(0, gguf_py)
    from gguf import GGUFReader  # llama.cpp's reader
    from gguf.quants import dequantize

    reader = GGUFReader(path)
    vc = cfg["vision_config"]
    n_layers = vc["num_hidden_layers"]
    n_blocks = n_layers - 1 if layout == "legacy" else n_layers
    field = reader.get_field("clip.vision.block_count")
    block_count = int(field.parts[field.data[0]][0])
    if block_count != n_blocks:
        raise SystemExit(f"GGUF block_count {block_count}, expected {n_blocks} for layout {layout}")
    tensors = {t.name: t for t in reader.tensors}
    expected = {}
    for hf, value in w.items():
        name = gguf_name(hf, layout, n_blocks)
        if name is not None:
            expected[name] = value
    if set(expected) != set(tensors):
        raise SystemExit(f"GGUF tensors differ: missing {sorted(set(expected) - set(tensors))}, extra {sorted(set(tensors) - set(expected))}")
    for name, t in tensors.items():
        data = dequantize(t.data, t.tensor_type).astype(np.float64)
        # gguf-py shapes numpy arrays as reversed ne, i.e. PyTorch order.
        want = expected[name].numpy()
        if data.shape != want.shape:
            raise SystemExit(f"GGUF tensor {name}: numpy shape {data.shape}, HF shape {want.shape}")
        if not np.array_equal(data, want):
            raise SystemExit(f"GGUF tensor {name}: values differ from the HF weights (max {np.abs(data - want).max()})")


def run_case(hf_dir, pixels_path, out_dir, gguf, layout, gguf_py):
    with open(os.path.join(hf_dir, "config.json")) as f:
        cfg = json.load(f)
    w = load_weights(hf_dir)
    if gguf:
        check_gguf(gguf, layout, cfg, w, gguf_py)
    pixels = torch.from_numpy(np.load(pixels_path).astype(np.float64))
    with torch.no_grad():
        feats, projected = llava_image_features(cfg, w, pixels)
    os.makedirs(out_dir, exist_ok=True)
    # C order: the slicing and transposes above can leave Fortran-ordered views.
    np.save(os.path.join(out_dir, "features.npy"), np.ascontiguousarray(feats.numpy(), dtype=np.float32))
    np.save(os.path.join(out_dir, "projected.npy"), np.ascontiguousarray(projected.numpy(), dtype=np.float32))
    print(f"{hf_dir}: features {tuple(feats.shape)} projected {tuple(projected.shape)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf-dir")
    ap.add_argument("--pixels")
    ap.add_argument("--out-dir")
    ap.add_argument("--gguf")
    ap.add_argument("--layout", choices=["legacy", "explicit", "all"])
    ap.add_argument("--gguf-py")
    ap.add_argument("--cases", help="JSON list of {hf_dir, pixels, out_dir, gguf, layout}: several cases, one interpreter start")
    args = ap.parse_args()

    torch.set_default_dtype(torch.float64)
    if args.cases:
        with open(args.cases) as f:
            for case in json.load(f):
                run_case(case["hf_dir"], case["pixels"], case["out_dir"], case.get("gguf"), case.get("layout"), args.gguf_py)
    else:
        run_case(args.hf_dir, args.pixels, args.out_dir, args.gguf, args.layout, args.gguf_py)


if __name__ == "__main__":
    main()
