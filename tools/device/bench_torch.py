#!/usr/bin/env python3
"""PyTorch side of issue 7's GPU benchmark (tools/device/README.md, "GPU benchmark").

On the device machine (torch 2.11 + transformers 5.x): builds a random LLaVA-1.5-7B-shaped
LlavaForConditionalGeneration (CLIP ViT-L/14-336, feature layer -2, mlp2x projector to 4096; Llama 7B: dim 4096,
32 layers, 32 heads, ffn 11008, vocab 32064 as llava-hf/llava-1.5-7b-hf, image token 32000) in F16 on the GPU from
a fixed seed, saves it with save_pretrained (safetensors) for our GpuCheck --bench-llava, and times with CUDA
events (medians after warm-up):
  vision   the tower with all hidden states (what transformers' LLaVA runs), layer -2 minus the class row, the
           projector: ms per image, batch 1, 336x336;
  prefill  the language model's forward on inputs_embeds of 576 image rows + 64 token embeddings (DynamicCache),
           then lm_head on the last row: ms and tok/s;
  decode   a manual greedy loop: one token per forward with past_key_values, lm_head, argmax on the device (no host
           sync per step): tok/s over 128 tokens; also model.generate(inputs_embeds=..., greedy, 128 new tokens) for
           comparison.
Writes the JSON (--json), and pixels.npy / image_features.npy into --reference-dir so our run encodes the same image
and compares rows and greedy tokens.

Locally (no transformers, Debian's torch 1.13, no GPU): --dry-run runs the argument handling, the timing helpers on
the CPU, the pixel / prompt generation and the JSON / npy writing at a tiny shape, so the parts that do not need
transformers are exercised before the device sees them.
"""
import argparse
import json
import os
import statistics
import sys
import time

START = time.time()


def log(message):
    print(f"[{time.time() - START:7.1f} s] {message}", flush=True)


SHAPES = {
    # llava-hf/llava-1.5-7b-hf's config.json values (vocab 32064: 32000 + <image> + <pad> padded to a multiple of 64).
    "7b": dict(
        text=dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
                  hidden_act="silu", tie_word_embeddings=False),
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=336, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768),
        image_token=32000,
    ),
    # Tiny: same structure, seconds on a CPU (for trying the script where transformers is installed, no GPU).
    "tiny": dict(
        text=dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024, rms_norm_eps=1e-5,
                  hidden_act="silu", tie_word_embeddings=False),
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                    image_size=56, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32),
        image_token=7,
    ),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default="/tmp/llava7b", help="where save_pretrained writes the folder")
    p.add_argument("--reference-dir", default=None, help="pixels.npy and image_features.npy (default: MODEL_DIR/../llava7b-reference)")
    p.add_argument("--json", default=None, help="result JSON (default: stdout only)")
    p.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-tokens", type=int, default=64)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=5, help="timed repetitions of vision and prefill (decode: max(1, reps // 2))")
    p.add_argument("--copy-mib", type=int, default=1024, help="buffer size of the device-to-device copy")
    p.add_argument("--no-save", action="store_true", help="time only, do not write the folder")
    p.add_argument("--no-generate", action="store_true", help="skip the model.generate comparison")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="no transformers needed: tiny CPU run of the harness")
    args = p.parse_args(argv)
    if args.dry_run:
        args.shape, args.device = "tiny", "cpu"
        args.copy_mib = min(args.copy_mib, 8)
    if args.reference_dir is None:
        args.reference_dir = os.path.join(os.path.dirname(os.path.abspath(args.model_dir)), os.path.basename(os.path.abspath(args.model_dir)) + "-reference")
    if args.text_tokens < 1 or args.decode_tokens < 1 or args.reps < 1:
        p.error("--text-tokens, --decode-tokens and --reps must be positive")
    return args


class Timer:
    """Milliseconds of a callable: CUDA events on a GPU (synchronised), perf_counter on the CPU."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.startswith("cuda")

    def once(self, fn):
        t = self.torch
        if self.cuda:
            start, stop = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
            t.cuda.synchronize()
            start.record()
            result = fn()
            stop.record()
            t.cuda.synchronize()
            return start.elapsed_time(stop), result
        begin = time.perf_counter()
        result = fn()
        return (time.perf_counter() - begin) * 1000, result

    def median(self, fn, reps, warmup=1):
        for _ in range(warmup):
            self.once(fn)
        times = [self.once(fn)[0] for _ in range(reps)]
        return statistics.median(times), times


def copy_bandwidth(torch, timer, device, mib):
    """Device-to-device copy of MIB MiB; GB/s counting bytes read + written (as KINDS.md's figures)."""
    n = mib << 20
    a = torch.empty(n, dtype=torch.uint8, device=device)
    a.fill_(60)
    b = torch.empty_like(a)
    ms, _ = timer.median(lambda: b.copy_(a), reps=10, warmup=2)
    del a, b
    return 2.0 * n / (ms / 1000) / 1e9


def pixels_for(torch, image_size, seed):
    """Normalised CLIP-range pixels [3, S, S] float32 from a seeded generator (saved for our run)."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.rand(3, image_size, image_size, generator=g, dtype=torch.float32) * 4.0 - 1.8


def prompt_ids_for(torch, count, vocab, seed):
    g = torch.Generator().manual_seed(seed + 2)
    return torch.randint(3, min(vocab, 32000), (count,), generator=g)


def save_npy(numpy, path, tensor):
    numpy.save(path, tensor.detach().float().cpu().contiguous().numpy().astype(numpy.float32))


def sdpa_state(torch):
    b = torch.backends.cuda
    state = {}
    for name in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled"):
        if hasattr(b, name):
            state[name] = bool(getattr(b, name)())
    return state


def build_model(torch, transformers, shape, seed, device):
    """Random LLaVA in F16 on DEVICE (initialised there: normal init of 7B on the CPU takes minutes)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    s = SHAPES[shape]
    common = dict(
        vision_config=CLIPVisionConfig(**s["vision"]),
        text_config=LlamaConfig(**s["text"]),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        image_seq_length=(s["vision"]["image_size"] // s["vision"]["patch_size"]) ** 2,
    )
    # LlavaConfig's argument is image_token_index with image_token_id as its attribute alias; newer releases may
    # take image_token_id directly: try that, then the old name.
    try:
        config = LlavaConfig(image_token_id=s["image_token"], **common)
    except TypeError:
        config = LlavaConfig(image_token_index=s["image_token"], **common)
    token = getattr(config, "image_token_id", getattr(config, "image_token_index", None))
    if token != s["image_token"]:
        raise RuntimeError(f"LlavaConfig kept image token {token}, expected {s['image_token']}")
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model = model.to(device=device, dtype=torch.float16).eval()
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("sdpa")
        except Exception as e:  # older / newer API: keep the default and say so
            log(f"set_attn_implementation('sdpa') failed ({e}); keeping the default")
    return model


def parts(model):
    """(language model, lm_head, vision tower, projector) under the >= 4.52 names, else the older ones."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "language_model"):
        return inner.language_model, model.lm_head, inner.vision_tower, inner.multi_modal_projector
    return model.language_model.model, model.language_model.lm_head, model.vision_tower, model.multi_modal_projector


def check_saved_keys(folder):
    """The tensor names save_pretrained wrote, by prefix (our loader expects the >= 4.52 llava-hf layout)."""
    names = []
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            names = list(json.load(f)["weight_map"])
    else:
        from safetensors import safe_open
        with safe_open(os.path.join(folder, "model.safetensors"), framework="pt") as f:
            names = list(f.keys())
    prefixes = {}
    for n in names:
        key = ".".join(n.split(".")[:2]) if n.startswith("model.") else n.split(".")[0]
        prefixes[key] = prefixes.get(key, 0) + 1
    # transformers >= 4.52 names its modules model.language_model / model.vision_tower / model.multi_modal_projector;
    # some releases save under the older llava-hf names (language_model.model.*) for compatibility. Ours reads both.
    layouts = {
        "llava-hf new (model.language_model.*)": ["model.language_model.layers.0.self_attn.q_proj.weight",
                                                  "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                                                  "model.multi_modal_projector.linear_1.weight", "lm_head.weight"],
        "llava-hf old (language_model.model.*)": ["language_model.model.layers.0.self_attn.q_proj.weight",
                                                  "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                                                  "multi_modal_projector.linear_1.weight", "language_model.lm_head.weight"],
    }
    present = set(names)
    layout = next((name for name, keys in layouts.items() if all(k in present for k in keys)), "unknown")
    return {"tensors": len(names), "layout": layout, "prefixes": prefixes}


def run_transformers(args, torch, numpy, result):
    import transformers
    result["transformers"] = transformers.__version__
    timer = Timer(torch, args.device)
    s = SHAPES[args.shape]
    # Built and saved outside inference_mode (parameters made inside it would be inference tensors), under no_grad.
    with torch.no_grad():
        clock = time.time()
        model = build_model(torch, transformers, args.shape, args.seed, args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        result["build_s"] = time.time() - clock
        result["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
        result["parameters"] = sum(p.numel() for p in model.parameters())
        log(f"built {result['parameters'] / 1e9:.2f} B parameters in {result['build_s']:.1f} s (attention: {result['attn_implementation']})")

        if not args.no_save:
            clock = time.time()
            model.save_pretrained(args.model_dir)
            result["save_s"] = time.time() - clock
            result["saved_keys"] = check_saved_keys(args.model_dir)
            log(f"saved to {args.model_dir} in {result['save_s']:.1f} s: {result['saved_keys']}")

    with torch.inference_mode():
        lm, lm_head, tower, projector = parts(model)
        pixels = pixels_for(torch, s["vision"]["image_size"], args.seed)
        os.makedirs(args.reference_dir, exist_ok=True)
        save_npy(numpy, os.path.join(args.reference_dir, "pixels.npy"), pixels)
        pv = pixels[None].to(args.device, torch.float16)

        def vision():
            hidden = tower(pv, output_hidden_states=True).hidden_states[-2][:, 1:]  # layer -2, class row dropped
            return projector(hidden)

        result["vision_ms"], result["vision_ms_all"] = timer.median(vision, args.reps, warmup=2)
        rows = vision()  # [1, 576, 4096]
        save_npy(numpy, os.path.join(args.reference_dir, "image_features.npy"), rows[0])
        log(f"vision tower + projector: {result['vision_ms']:.2f} ms per image")

        ids = prompt_ids_for(torch, args.text_tokens, s["text"]["vocab_size"], args.seed).to(args.device)
        result["prompt_ids"] = ids.tolist()
        embeds = torch.cat([rows, lm.embed_tokens(ids)[None]], dim=1)  # [1, 640, 4096]
        positions = embeds.shape[1]

        def prefill():
            out = lm(inputs_embeds=embeds, use_cache=True)
            return out.past_key_values, lm_head(out.last_hidden_state[:, -1:])

        result["prefill_ms"], result["prefill_ms_all"] = timer.median(prefill, args.reps, warmup=1)
        result["prefill_positions"] = positions
        result["prefill_tok_s"] = positions / (result["prefill_ms"] / 1000)
        log(f"prefill {positions} positions: {result['prefill_ms']:.1f} ms = {result['prefill_tok_s']:.0f} tok/s")

        n = args.decode_tokens
        tokens = []

        def decode(cache, first):
            token = first
            out_tokens = [first]
            for _ in range(n):
                o = lm(input_ids=token, past_key_values=cache, use_cache=True)
                cache = o.past_key_values
                token = lm_head(o.last_hidden_state).argmax(-1)  # [1, 1], stays on the device
                out_tokens.append(token)
            return out_tokens

        times = []
        for rep in range(max(1, args.reps // 2) + 1):  # the first is the warm-up
            cache, logits = prefill()
            first = logits.argmax(-1)
            ms, out_tokens = timer.once(lambda: decode(cache, first))
            if rep > 0:
                times.append(ms)
            tokens = [int(t.item()) for t in out_tokens]
        ms = statistics.median(times)
        result["decode_method"] = "manual greedy loop: LlamaModel forward with DynamicCache past_key_values, lm_head, argmax on the device"
        result["decode_ms_all"] = times
        result["decode_tok_s"] = n / (ms / 1000)
        result["greedy_tokens"] = tokens
        log(f"decode: {result['decode_tok_s']:.1f} tok/s ({ms / n:.3f} ms/token, {n} tokens after {positions})")

        if not args.no_generate:
            try:
                def generate():
                    return model.generate(inputs_embeds=embeds, max_new_tokens=n, min_new_tokens=n, do_sample=False)
                gen_ms, _ = timer.median(generate, reps=1, warmup=1)
                result["generate_ms"] = gen_ms
                result["generate_tok_s_incl_prefill"] = n / (gen_ms / 1000)
                result["generate_decode_tok_s"] = n / max((gen_ms - result["prefill_ms"]) / 1000, 1e-9)
                log(f"model.generate: {gen_ms:.0f} ms for {n} tokens incl. prefill (≈ {result['generate_decode_tok_s']:.1f} tok/s after it)")
            except Exception as e:
                result["generate_error"] = f"{type(e).__name__}: {e}"
                log(f"model.generate failed: {result['generate_error']}")


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
        import numpy
    except ImportError as e:
        print(f"bench_torch.py: {e}; needs torch and numpy", file=sys.stderr)
        return 2
    result = {"torch": torch.__version__, "shape": args.shape, "device_kind": args.device, "seed": args.seed,
              "dry_run": args.dry_run, "model_dir": args.model_dir, "reference_dir": args.reference_dir}
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("bench_torch.py: no CUDA device (use --dry-run for the CPU harness check)", file=sys.stderr)
            return 2
        result["device"] = torch.cuda.get_device_name(0)
        result["sdpa"] = sdpa_state(torch)
    log(f"torch {torch.__version__} on {result.get('device', args.device)}; shape {args.shape}")
    timer = Timer(torch, args.device)
    result["copy_gb_s"] = copy_bandwidth(torch, timer, args.device, args.copy_mib)
    log(f"copy bandwidth {result['copy_gb_s']:.0f} GB/s (read + written, {args.copy_mib} MiB)")

    if args.dry_run:
        s = SHAPES[args.shape]
        pixels = pixels_for(torch, s["vision"]["image_size"], args.seed)
        os.makedirs(args.reference_dir, exist_ok=True)
        save_npy(numpy, os.path.join(args.reference_dir, "pixels.npy"), pixels)
        result["prompt_ids"] = prompt_ids_for(torch, args.text_tokens, s["text"]["vocab_size"], args.seed).tolist()
        w = torch.randn(s["text"]["hidden_size"], s["text"]["hidden_size"])
        x = torch.randn(1, s["text"]["hidden_size"])
        result["timer_check_ms"], _ = timer.median(lambda: x @ w.T, reps=3)
        log("dry run: harness only (no transformers); vision / prefill / decode not measured")
    else:
        run_transformers(args, torch, numpy, result)

    text = json.dumps(result, indent=1)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            f.write(text)
        log(f"wrote {args.json}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
