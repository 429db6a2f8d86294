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

A case may instead name a Hugging Face folder (hf_folder, and tower_folder for an original LLaVA checkpoint): the
script then reads its config.json and safetensors itself (single or sharded via model.safetensors.index.json; F32,
F16, BF16) and maps the names as transformers does -- llava-hf new prefixes (model.vision_tower.*,
model.multi_modal_projector.*) to the old ones, and original LLaVA (model.mm_projector.{0,2} or model.mm_projector,
mm_vision_select_layer / mm_vision_select_feature / mm_projector_type, tower weights vision_model.* from the CLIP
folder) as convert_llava_weights_to_hf.py and LLaVA's clip_encoder.py do.

Optionally (--gguf FILE --layout legacy|explicit|all|converted) it also opens the mmproj GGUF the C# test wrote with
llama.cpp's own gguf-py reader and checks that it holds exactly these weights under llama.cpp's naming and
dimension conventions (legacy converter: last block dropped, fc1 named ffn_down), so the test's GGUF writer
is anchored to llama.cpp rather than to the engine it is testing.
"""
import argparse
import json
import os
import struct
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


def read_safetensors(path):
    """The safetensors format by hand: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dtype = info["dtype"]
        if dtype == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dtype == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {dtype}")
        out[name] = torch.from_numpy(a.astype(np.float64).reshape(info["shape"]))
    return out


def read_checkpoint(folder):
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        out.update(read_safetensors(os.path.join(folder, shard)))
    missing = set(weight_map) - set(out)
    if missing:
        raise SystemExit(f"{folder}: tensors in the index but not in the shards: {sorted(missing)}")
    return out


def load_hf_folder(folder, tower_folder):
    """(cfg in the shape llava_image_features expects, weights under llava-hf's old names)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    raw = read_checkpoint(folder)
    w = {}
    if tower_folder is None:
        for k, v in raw.items():
            if k.startswith("model.vision_tower.") or k.startswith("model.multi_modal_projector."):
                k = k[len("model."):]  # transformers >= 4.52 _checkpoint_conversion_mapping, reversed
            if k.startswith(TOWER) or k.startswith("multi_modal_projector."):
                w[k] = v
        cfg = {
            "vision_config": config["vision_config"],
            "vision_feature_layer": config.get("vision_feature_layer", -2),
            "vision_feature_select_strategy": config.get("vision_feature_select_strategy", "default"),
            "projector_hidden_act": config.get("projector_hidden_act", "gelu"),
        }
        return cfg, w
    with open(os.path.join(tower_folder, "config.json")) as f:
        tower_config = json.load(f)
    vc = dict(tower_config["vision_config"] if tower_config["model_type"] == "clip" else tower_config)
    vc.setdefault("model_type", "clip_vision_model")
    for k, v in read_checkpoint(tower_folder).items():
        if k.startswith("vision_model."):
            w["vision_tower." + k] = v
    for k, v in raw.items():
        if k.startswith("model.mm_projector."):
            rest = k[len("model.mm_projector."):]
            # convert_llava_weights_to_hf: mm_projector.0 -> linear_1, mm_projector.2 -> linear_2 (Sequential index 1 = GELU)
            if rest.startswith("0."):
                w["multi_modal_projector.linear_1." + rest[2:]] = v
            elif rest.startswith("2."):
                w["multi_modal_projector.linear_2." + rest[2:]] = v
            else:
                w["multi_modal_projector.linear_1." + rest] = v
    cfg = {
        "vision_config": vc,
        "vision_feature_layer": config["mm_vision_select_layer"],
        # LLaVA clip_encoder.feature_select: 'patch' drops the CLS row, 'cls_patch' keeps it.
        "vision_feature_select_strategy": "default" if config.get("mm_vision_select_feature", "patch") == "patch" else "full",
        "projector_hidden_act": "gelu",  # nn.GELU() in LLaVA's builder
        "mm_projector_type": config.get("mm_projector_type", "linear"),
    }
    return cfg, w


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
    legacy = layout in ("legacy", "converted")  # the legacy converter names fc1 ffn_down, with or without feature_layer
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
    if layout == "converted":
        # Explicit feature layer: [non-negative hidden-state index], block_count = that index, later blocks dropped.
        layer = cfg["vision_feature_layer"]
        n_blocks = layer if layer >= 0 else n_layers + 1 + layer
        field = reader.get_field("clip.vision.feature_layer")
        stored = [int(field.parts[i][0]) for i in field.data]
        if stored != [n_blocks]:
            raise SystemExit(f"GGUF clip.vision.feature_layer {stored}, expected [{n_blocks}]")
        for key, want in (("clip.vision.image_size", vc["image_size"]), ("clip.vision.patch_size", vc["patch_size"]),
                          ("clip.vision.embedding_length", vc["hidden_size"]), ("clip.vision.feed_forward_length", vc["intermediate_size"]),
                          ("clip.vision.attention.head_count", vc["num_attention_heads"])):
            f = reader.get_field(key)
            if f is None or int(f.parts[f.data[0]][0]) != want:
                raise SystemExit(f"GGUF {key} is {None if f is None else f.parts[f.data[0]][0]}, expected {want}")
        for key, want in (("general.architecture", "clip"), ("clip.projector_type", "mlp")):
            f = reader.get_field(key)
            got = None if f is None else bytes(f.parts[f.data[0]]).decode()
            if got != want:
                raise SystemExit(f"GGUF {key} is {got!r}, expected {want!r}")
        for key in ("clip.has_vision_encoder", "clip.has_llava_projector"):
            f = reader.get_field(key)
            if f is None or not bool(f.parts[f.data[0]][0]):
                raise SystemExit(f"GGUF {key} is not true")
        w = {k: v for k, v in w.items() if not k.startswith(TOWER + "post_layernorm.")}
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


def run_case(hf_dir, pixels_path, out_dir, gguf, layout, gguf_py, hf_folder=None, tower_folder=None):
    if hf_folder:
        cfg, w = load_hf_folder(hf_folder, tower_folder)
    else:
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
    print(f"{hf_dir or hf_folder}: features {tuple(feats.shape)} projected {tuple(projected.shape)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf-dir")
    ap.add_argument("--pixels")
    ap.add_argument("--out-dir")
    ap.add_argument("--gguf")
    ap.add_argument("--layout", choices=["legacy", "explicit", "all", "converted"])
    ap.add_argument("--gguf-py")
    ap.add_argument("--cases", help="JSON list of {hf_dir, pixels, out_dir, gguf, layout}: several cases, one interpreter start")
    args = ap.parse_args()

    torch.set_default_dtype(torch.float64)
    if args.cases:
        with open(args.cases) as f:
            for case in json.load(f):
                run_case(case.get("hf_dir"), case["pixels"], case["out_dir"], case.get("gguf"), case.get("layout"), args.gguf_py,
                         case.get("hf_folder"), case.get("tower_folder"))
    else:
        run_case(args.hf_dir, args.pixels, args.out_dir, args.gguf, args.layout, args.gguf_py)


if __name__ == "__main__":
    main()
