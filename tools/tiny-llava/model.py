"""The tiny LLaVA in plain PyTorch, with Hugging Face transformers semantics (LlavaForConditionalGeneration,
llava-1.5 layout): CLIP vision tower -> hidden_states[-2] -> drop CLS -> mlp2x_gelu projector -> Llama decoder.

Module attribute names reproduce the OLD llava-hf checkpoint keys, so `state_dict()` is the checkpoint:
  vision_tower.vision_model.*, multi_modal_projector.linear_{1,2}.*, language_model.model.*, language_model.lm_head.weight

Prompt format (llava-hf llava-1.5 chat template): "USER: <image>\\n{question} ASSISTANT:" with one "<image>\\n" per
image, images first; the answer is " {answer}" followed by </s>. Tokenization follows Llama's legacy SentencePiece
behaviour (HF LlamaTokenizer legacy=True, llama.cpp): the text is split around "<image>" and every text piece is
encoded on its own with the dummy prefix, so a "▁" follows each "<image>". Each "<image>" id is then expanded to
IMAGE_TOKENS copies (HF processor), and the projected patch features replace those rows in order.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG = {
    "image_size": 48, "patch_size": 16, "num_channels": 3,
    "vision_hidden": 128, "vision_layers": 3, "vision_heads": 4, "vision_intermediate": 256,
    "text_hidden": 128, "text_layers": 3, "text_heads": 4, "text_kv_heads": 4, "text_intermediate": 384,
    "vocab_size": 512, "max_position_embeddings": 512, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
    "layer_norm_eps": 1e-5, "vision_feature_layer": -2,
}
IMAGE_TOKENS = (CONFIG["image_size"] // CONFIG["patch_size"]) ** 2  # 9, one per grid cell (CLS dropped)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
BOS, EOS = 1, 2


# ----------------------------------------------------------------------------------------------- vision
class ClipEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["vision_hidden"], c["patch_size"]
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        self.patch_embedding = nn.Conv2d(c["num_channels"], d, kernel_size=p, stride=p, bias=False)
        self.num_positions = (c["image_size"] // p) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, d)

    def forward(self, pixels):  # [B, 3, S, S] -> [B, 1 + n_patches, d]
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(pixels.shape[0], 1, -1)
        x = torch.cat([cls, patches], dim=1)
        return x + self.position_embedding.weight[None]


class ClipAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):  # bidirectional
        b, t, d = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2) * self.head_dim ** -0.5
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return self.out_proj((a @ v).transpose(1, 2).reshape(b, t, d))


class ClipMlp(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, inter), nn.Linear(inter, d)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class ClipEncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, eps = c["vision_hidden"], c["layer_norm_eps"]
        self.self_attn = ClipAttention(d, c["vision_heads"])
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = ClipMlp(d, c["vision_intermediate"])
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([ClipEncoderLayer(c) for _ in range(c["vision_layers"])])


class ClipVisionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["vision_hidden"]
        self.embeddings = ClipEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.encoder = ClipEncoder(c)
        self.post_layernorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])  # exported, never used by LLaVA

    def hidden_states(self, pixels, upto):
        """HF hidden_states[0..upto]: [0] = embeddings after pre_layrnorm, [i] = output of layer i."""
        x = self.pre_layrnorm(self.embeddings(pixels))
        states = [x]
        for layer in self.encoder.layers[:upto]:
            x = layer(x)
            states.append(x)
        return states


class VisionTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vision_model = ClipVisionModel(c)


class Projector(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.linear_1 = nn.Linear(c["vision_hidden"], c["text_hidden"])
        self.linear_2 = nn.Linear(c["text_hidden"], c["text_hidden"])

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))  # exact erf GELU


# ----------------------------------------------------------------------------------------------- text
class RmsNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def rope_cos_sin(t, head_dim, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["text_hidden"]
        self.heads, self.kv_heads = c["text_heads"], c["text_kv_heads"]
        self.head_dim = d // self.heads
        self.q_proj = nn.Linear(d, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        a = torch.softmax(s, dim=-1)
        if getattr(self, "capture", None) is not None:  # training aid (train.py --attn-aid): keep the probabilities
            self.capture.append(a)
        return self.o_proj((a @ v).transpose(1, 2).reshape(b, t, -1))


class LlamaMlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, i = c["text_hidden"], c["text_intermediate"]
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = LlamaAttention(c)
        self.mlp = LlamaMlp(c)
        self.input_layernorm = RmsNorm(c["text_hidden"], c["rms_norm_eps"])
        self.post_attention_layernorm = RmsNorm(c["text_hidden"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["text_hidden"])
        self.layers = nn.ModuleList([LlamaLayer(c) for _ in range(c["text_layers"])])
        self.norm = RmsNorm(c["text_hidden"], c["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c["text_hidden"], c["vocab_size"], bias=False)


# ----------------------------------------------------------------------------------------------- llava
class TinyLlava(nn.Module):
    def __init__(self, c, image_token_index):
        super().__init__()
        self.c = c
        self.image_token_index = image_token_index
        self.vision_tower = VisionTower(c)
        self.multi_modal_projector = Projector(c)
        self.language_model = LlamaForCausalLM(c)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def selected_vision_features(self, pixels):  # [n_img, 3, S, S] -> [n_img, IMAGE_TOKENS, vision_hidden]
        layer = self.c["vision_feature_layer"]
        n = len(self.vision_tower.vision_model.encoder.layers)
        upto = n + 1 + layer  # hidden_states has n+1 entries; -2 -> index n-1 -> run n-1 layers
        states = self.vision_tower.vision_model.hidden_states(pixels, upto)
        return states[upto][:, 1:]  # strategy "default": drop CLS

    def image_features(self, pixels):  # [n_img, 3, S, S] -> [n_img, IMAGE_TOKENS, text_hidden]
        return self.multi_modal_projector(self.selected_vision_features(pixels))

    def forward(self, ids, pixels=None, vision_out=None):
        """ids: [B, T] with IMAGE_TOKENS image-token ids per image (already expanded); pixels: [n_img, 3, S, S]
        in the order the images appear (row-major over the batch). Returns logits [B, T, V].
        vision_out: optional list that receives the selected vision features (training's auxiliary loss)."""
        lm = self.language_model
        x = lm.model.embed_tokens(ids)
        if pixels is not None and pixels.shape[0] > 0:
            selected = self.selected_vision_features(pixels)
            if vision_out is not None:
                vision_out.append(selected)
            feats = self.multi_modal_projector(selected).reshape(-1, x.shape[-1]).to(x.dtype)
            mask = (ids == self.image_token_index)
            assert int(mask.sum()) == feats.shape[0], "image tokens and image features do not match"
            x = x.masked_scatter(mask[..., None], feats)  # same order as HF masked_scatter
        t = ids.shape[1]
        head_dim = self.c["text_hidden"] // self.c["text_heads"]
        cos, sin = rope_cos_sin(t, head_dim, self.c["rope_theta"], x.dtype)
        cos, sin = cos.to(x.device), sin.to(x.device)
        causal = torch.full((t, t), float("-inf"), dtype=x.dtype, device=x.device).triu(1)
        for layer in lm.model.layers:
            x = layer(x, cos, sin, causal)
        return lm.lm_head(lm.model.norm(x))


# ----------------------------------------------------------------------------------------------- prompts
def prompt_text(question, n_images):
    """llava-hf llava-1.5 chat template, one user turn with add_generation_prompt."""
    return "USER: " + "<image>\n" * n_images + question + " ASSISTANT:"


def encode_legacy(sp, text):
    """Llama legacy SentencePiece tokenization of a text with '<image>' markers: split around every marker and
    encode each piece separately (dummy prefix '▁' on each piece), as HF LlamaTokenizer(legacy=True) does with
    '<image>' as a special added token and as llama.cpp does after a special/user-defined token. No BOS."""
    image_id = sp.piece_to_id("<image>")
    out = []
    for k, piece in enumerate(text.split("<image>")):
        if k > 0:
            out.append(image_id)
        if piece:
            out.extend(sp.encode(piece))
    return out


def expand_image_tokens(ids, image_id):
    out = []
    for i in ids:
        out.extend([image_id] * IMAGE_TOKENS if i == image_id else [i])
    return out


def prompt_ids(sp, question, n_images):
    """[BOS] + legacy tokenization of the prompt, image markers expanded (what the decoder sees)."""
    return expand_image_tokens([BOS] + encode_legacy(sp, prompt_text(question, n_images)), sp.piece_to_id("<image>"))


def answer_ids(sp, answer):
    """The answer as it follows 'ASSISTANT:' (' ' + answer, i.e. '▁answer...'), then </s>."""
    return sp.encode(answer) + [EOS]


def pixel_values(img):
    """CLIPImageProcessor for a 48x48 RGB image with shortest_edge = crop = 48: the bicubic resize and the
    crop are identities, so x / 255 then (x - mean) / std, CHW float32."""
    import numpy as np
    a = np.asarray(img.convert("RGB"), dtype=np.float32) * np.float32(1 / 255)
    a = (a - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


@torch.no_grad()
def greedy_answer(model, sp, question, pixels, max_new=40):
    """Greedy decoding until </s>; returns the decoded text (leading space stripped) and the new ids."""
    ids = prompt_ids(sp, question, pixels.shape[0])
    new = []
    for _ in range(max_new):
        logits = model(torch.tensor([ids + new]), pixels)
        nxt = int(logits[0, -1].argmax())
        if nxt == EOS:
            break
        new.append(nxt)
    return sp.decode(new).strip(), new
