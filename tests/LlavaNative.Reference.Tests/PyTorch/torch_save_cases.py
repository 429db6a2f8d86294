"""Writes PyTorch checkpoints with torch.save for PyTorchCheckpointTests (run with /usr/bin/python3, torch >= 1.6).

  tensors OUT     random state dicts (F32/F16/BF16, shared storages, offset views, parameters, protocols 2 and 4,
                  a sharded checkpoint, a strided view, the legacy format) + manifest.json with every tensor's
                  exact bytes (hex), dtype and shape as PyTorch itself reports them
  malicious OUT   pickles that run code when PyTorch loads them (os.system, builtins.eval, a custom class), each
                  touching OUT/<name>.marker if ever executed; proves one payload is live with pickle.loads
  model SRC DST SHARDS
                  the safetensors weights of the Hugging Face folder SRC (read by the parser below, not by
                  LlavaNative) saved with torch.save into DST as pytorch_model.bin, or SHARDS shards + index
"""
import collections, io, json, os, pickle, struct, sys, zipfile
import numpy as np
import torch


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def describe(sd):
    return {k: {"dtype": DTYPE_NAMES[v.dtype], "shape": list(v.shape), "hex": raw_bytes(v).hex()}
            for k, v in sd.items() if isinstance(v, torch.Tensor)}


def tensors(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    manifest = {}

    # An nn.Module state dict: an OrderedDict carrying a _metadata attribute (BUILD), parameters and a buffer.
    module = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3, bias=False))
    module.register_buffer("position_ids", torch.arange(7).reshape(1, 7))
    sd = module.state_dict()
    sd["half"] = torch.randn(3, 4, generator=g).half()
    sd["bf16"] = torch.randn(2, 3, 5, generator=g).bfloat16()
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 4)
    torch.save(sd, os.path.join(out, "module.bin"))
    manifest["module.bin"] = describe(sd)

    # Views of one storage: offsets, a sliced row block, the whole base; plus nn.Parameter (_rebuild_parameter).
    base = torch.randn(120, generator=g)
    big = torch.randn(8, 6, generator=g).half()
    shared = collections.OrderedDict()
    shared["base"] = base
    shared["window"] = base[10:30].view(4, 5)
    shared["tail"] = base[100:]
    shared["rows"] = big[2:5]
    shared["big"] = big
    shared["param"] = torch.nn.Parameter(torch.randn(5, 2, generator=g).bfloat16(), requires_grad=False)
    shared["not_a_tensor"] = 7
    torch.save(shared, os.path.join(out, "shared.bin"))
    manifest["shared.bin"] = describe(shared)
    torch.save(shared, os.path.join(out, "shared-protocol4.bin"), pickle_protocol=4)
    manifest["shared-protocol4.bin"] = describe(shared)

    # A sharded checkpoint with its index.
    shard_dir = os.path.join(out, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    parts = [collections.OrderedDict(a=torch.randn(4, 8, generator=g), b=torch.randn(8, generator=g).half()),
             collections.OrderedDict(c=torch.randn(3, 3, generator=g).bfloat16())]
    weight_map = {}
    for i, part in enumerate(parts):
        name = f"pytorch_model-{i + 1:05d}-of-{len(parts):05d}.bin"
        torch.save(part, os.path.join(shard_dir, name))
        weight_map.update({k: name for k in part})
    with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    manifest["sharded/pytorch_model.bin.index.json"] = describe({k: v for p in parts for k, v in p.items()})

    torch.save({"t": torch.randn(4, 6, generator=g).t()}, os.path.join(out, "strided.bin"))
    torch.save({"t": torch.randn(4, generator=g)}, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)


class SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


class CustomObject:
    """Pickled as NEWOBJ on GLOBAL '__main__ CustomObject' (an arbitrary class import)."""
    def __init__(self):
        self.x = 1


def malicious(out):
    os.makedirs(out, exist_ok=True)
    t = torch.randn(3)
    cases = {
        "os-system.bin": (lambda m: {"w": t, "x": SystemPayload(m)}, 2),
        "builtins-eval.bin": (lambda m: {"x": EvalPayload(m), "w": t}, 2),
        "os-system-protocol4.bin": (lambda m: collections.OrderedDict(w=t, x=SystemPayload(m)), 4),
        "custom-class.bin": (lambda m: {"w": t, "x": CustomObject()}, 2),
    }
    for name, (make, protocol) in cases.items():
        marker = os.path.join(out, name + ".marker")
        torch.save(make(marker), os.path.join(out, name), pickle_protocol=protocol)

    # The payloads are live: a plain pickle.loads of the os.system one touches its marker (then it is removed).
    proof = os.path.join(out, "proof.marker")
    pickle.loads(pickle.dumps({"x": SystemPayload(proof)}, protocol=2))
    if not os.path.exists(proof):
        sys.exit("the os.system payload did not run under pickle.loads; the malicious cases prove nothing")
    os.remove(proof)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    result = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = bytearray(data[begin:end])
        if info["dtype"] == "F32":
            t = torch.from_numpy(np.frombuffer(buf, dtype=np.float32).copy())
        elif info["dtype"] == "F16":
            t = torch.from_numpy(np.frombuffer(buf, dtype=np.float16).copy())
        elif info["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(buf, dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            raise ValueError(f"{path}: dtype {info['dtype']} not handled")
        result[name] = t.reshape(info["shape"])
    return result


def model(src, dst, shards):
    os.makedirs(dst, exist_ok=True)
    sd = collections.OrderedDict()
    index = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for f in files:
        sd.update(read_safetensors(os.path.join(src, f)))
    for f in os.listdir(src):
        if f.endswith(".json") and not f.endswith(".index.json"):
            with open(os.path.join(src, f), "rb") as a, open(os.path.join(dst, f), "wb") as b:
                b.write(a.read())
    if shards == 1:
        torch.save(sd, os.path.join(dst, "pytorch_model.bin"))
        return
    names = list(sd)
    weight_map = {}
    for i in range(shards):
        part = collections.OrderedDict((k, sd[k]) for k in names[i::shards])
        fname = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        torch.save(part, os.path.join(dst, fname))
        weight_map.update({k: fname for k in part})
    with open(os.path.join(dst, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tensors":
        tensors(sys.argv[2])
    elif mode == "malicious":
        malicious(sys.argv[2])
    elif mode == "model":
        model(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode}")
