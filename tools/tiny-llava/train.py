"""Trains the tiny LLaVA (CPU, fixed seeds). See README.md in this folder for the command and what each stage does.

  tokenizer  SentencePiece BPE (byte_fallback, '<image>' user-defined symbol, Llama ids unk 0 / <s> 1 / </s> 2)
             trained on the generator's questions and answers.
  stage 0    vision pretraining (stands in for CLIP's pretraining, which we cannot download): a linear
             per-patch classifier on the selected features (hidden_states[-2], CLS dropped) predicts, for each
             of the 9 cells, the shape (or none), the colour (or none) and the written word/digit (or none).
             The classifier is a training aid only: it is not part of LLaVA and is not exported. This loss is
             kept (weight AUX_WEIGHT) in stages 1 and 2.
  stage 1    caption pretraining: "Describe the image." -> caption, loss on caption tokens. No pretrained CLIP
             or Llama exists here, so the whole model (vision tower, projector, decoder) trains from scratch in
             this stage: it is where the vision tower learns to see and the projector to align.
  stage 2    instruction tuning on the QA mixture (single-image, two-image, 10 % captions), loss on answer
             tokens (and the closing </s>) only; all parameters train.

Progress goes to OUT/train.log; checkpoints to OUT/ckpt.pt (latest) and OUT/best.pt (best validation exact match).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402

TRAIN_SEED = 1       # data seed for training items
VAL_SEED = 2         # data seed for the validation items used to pick the best checkpoint
TORCH_SEED = 0
SP_CORPUS_SEED = 12345  # data.all_texts()


def train_tokenizer(out_dir, vocab_size):
    import sentencepiece as spm
    corpus = os.path.join(out_dir, "sp-corpus.txt")
    texts = data.all_texts()
    # The role words appear in every prompt: repeat them so BPE learns them as pieces.
    texts += ["USER:", "ASSISTANT:"] * 300
    with open(corpus, "w") as f:
        f.write("\n".join(texts) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(out_dir, "tokenizer"), vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, user_defined_symbols=["<image>"], normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return os.path.join(out_dir, "tokenizer.model")


AUX_WEIGHT = 0.3
AUX_POSITION = False  # --aux-position
TEXT_CLASSES = data.WORDS + data.DIGITS


def patch_labels(spec):
    """[9, 3] long: per cell (row-major) the shape (0 none, 1..5), colour (0 none, 1..6), text (0 none, 1..18);
    with --aux-position a 4th column, the cell's own index (0..8: keeps the grid position readable in the features)."""
    lab = torch.zeros(data.GRID * data.GRID, 4 if AUX_POSITION else 3, dtype=torch.long)
    if AUX_POSITION:
        lab[:, 3] = torch.arange(data.GRID * data.GRID)
    for shape, color, row, col, *_ in spec["objects"]:
        lab[row * data.GRID + col, 0] = 1 + data.SHAPES.index(shape)
        lab[row * data.GRID + col, 1] = 1 + list(data.COLORS).index(color)
    if spec["text"] is not None:
        text, row, col, _ = spec["text"]
        lab[row * data.GRID + col, 2] = 1 + TEXT_CLASSES.index(text)
    return lab


class PatchClassifier(torch.nn.Module):
    """Training aid for the vision tower (not exported): per-patch shape / colour / text / cell logits."""
    def __init__(self, d):
        super().__init__()
        self.sizes = [1 + len(data.SHAPES), 1 + len(data.COLORS), 1 + len(TEXT_CLASSES)] + ([data.GRID * data.GRID] if AUX_POSITION else [])
        self.head = torch.nn.Linear(d, sum(self.sizes))

    def loss(self, feats, labels):  # feats [n_img, 9, d], labels [n_img, 9, 3]
        logits = self.head(feats).split(self.sizes, dim=-1)
        return sum(F.cross_entropy(l.reshape(-1, l.shape[-1]), labels[..., k].reshape(-1)) for k, l in enumerate(logits))

    @torch.no_grad()
    def accuracy(self, feats, labels):
        logits = self.head(feats).split(self.sizes, dim=-1)
        return [float((l.argmax(-1) == labels[..., k]).float().mean()) for k, l in enumerate(logits)]


TASK_WEIGHTS = {}  # --task-weights: question types drawn with these relative weights (default 1 each)


def pick_task(rng, tasks):
    if not TASK_WEIGHTS:
        return rng.choice(tasks)
    return rng.choices(tasks, weights=[TASK_WEIGHTS.get(t, 1.0) for t in tasks])[0]


def training_item(index, stage):
    """Item `index` of the training stream. Without --task-weights exactly data.make_item(TRAIN_SEED, index)."""
    if stage == 1:
        return data.make_item(TRAIN_SEED, index, kind="caption")
    if not TASK_WEIGHTS:
        return data.make_item(TRAIN_SEED, index)
    rng = random.Random(TRAIN_SEED * 15485863 + index)
    kind = rng.choices(["single", "multi", "caption"], weights=[0.55, 0.35, 0.10])[0]
    if kind == "caption":
        return data.make_item(TRAIN_SEED, index, kind="caption")
    task = pick_task(rng, data.SINGLE_KINDS if kind == "single" else data.MULTI_KINDS)
    return data.make_item(TRAIN_SEED, index, kind=kind, kinds=[task])


def add_turns(item, index, max_extra):
    """Extra question/answer turns about the same single image (more supervised answers per rendered image).
    Turn 1 is exactly the llava-hf prompt; later turns follow original LLaVA (answer</s>, then 'USER: ...')."""
    if item["kind"] != "single" or max_extra == 0:
        return item
    rng = random.Random(TRAIN_SEED * 104729 + index)
    turns = []
    for _ in range(rng.randint(0, max_extra)):
        task = pick_task(rng, data.SINGLE_KINDS)
        qa = data.single_question(rng, item["specs"][0], task)
        if qa is not None:
            turns.append((qa[0], qa[1], task))
    return dict(item, turns=turns)


ATTN_AID = 0.0  # --attn-aid: weight of the attention training aid (0: off)
ATTN_LAYER = -1  # which decoder layer's head 0 is guided


def target_cell(question, specs, task):
    """For a question that names one object (or the written text), (image index, cell index) of what it is about;
    None for questions about the whole image (count, more, change) or when nothing is written."""
    words = question.rstrip("?").replace(".", "").split()
    color = next((w for w in words if w in data.COLORS), None)
    shape = next((w for w in words if w in data.SHAPES), None)
    if task == "text":
        t = specs[0]["text"]
        return None if t is None else (0, t[1] * data.GRID + t[2])
    if task not in ("color", "shape", "where", "which"):
        return None
    for k, spec in enumerate(specs):
        for o in spec["objects"]:
            if (shape is None or o[0] == shape) and (color is None or o[1] == color):
                return k, o[2] * data.GRID + o[3]
    return None


def build_batch(sp, items, with_labels=False, with_targets=False):
    """Renders the items; returns ids [B,T], labels [B,T] (-100 outside answers), pixels [n_img,3,S,S]
    (+ per-patch labels [n_img,9,k] with with_labels; + attention targets [(row, query pos, key pos)] with
    with_targets: the position predicting an answer's first token and the image token of the object asked about)."""
    seqs, labels, pixels, plabels, targets = [], [], [], [], []
    image_id = sp.piece_to_id("<image>")
    for b, it in enumerate(items):
        p = M.prompt_ids(sp, it["question"], len(it["specs"]))
        a = M.answer_ids(sp, it["answer"])
        image_starts = [i for i in range(len(p)) if p[i] == image_id and (i == 0 or p[i - 1] != image_id)]
        cell = target_cell(it["question"], it["specs"], it["task"])
        if cell is not None:
            targets.append((b, len(p) - 1, image_starts[cell[0]] + cell[1]))
        seq, lab = p + a, [-100] * len(p) + a
        for q2, a2, task2 in it.get("turns", []):
            p2 = M.encode_legacy(sp, M.prompt_text(q2, 0))
            cell = target_cell(q2, it["specs"], task2)
            if cell is not None:
                targets.append((b, len(seq) + len(p2) - 1, image_starts[cell[0]] + cell[1]))
            a2 = M.answer_ids(sp, a2)
            seq += p2 + a2
            lab += [-100] * len(p2) + a2
        seqs.append(seq)
        labels.append(lab)
        pixels.extend(M.pixel_values(data.render(s)) for s in it["specs"])
        if with_labels:
            plabels.extend(patch_labels(s) for s in it["specs"])
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), M.EOS, dtype=torch.long)
    lab = torch.full((len(seqs), t), -100, dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        ids[i, :len(s)] = torch.tensor(s)
        lab[i, :len(l)] = torch.tensor(l)
    out = (ids, lab, torch.stack(pixels))
    if with_labels:
        out += (torch.stack(plabels),)
    if with_targets:
        out += (targets,)
    return out


DEVICE = torch.device("cpu")  # --device


def loss_fn(model, ids, lab, pixels, aux=None, plabels=None, targets=None):
    ids, lab, pixels = ids.to(DEVICE), lab.to(DEVICE), pixels.to(DEVICE)
    if plabels is not None:
        plabels = plabels.to(DEVICE)
    vision_out = []
    guided = model.language_model.model.layers[ATTN_LAYER].self_attn
    guided.capture = [] if ATTN_AID and targets else None
    logits = model(ids, pixels, vision_out=vision_out)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=-100)
    if aux is not None:
        loss = loss + AUX_WEIGHT * aux.loss(vision_out[0], plabels)
    if guided.capture:
        # attention training aid: head 0 of the guided layer, at the position that predicts an answer, should look
        # at the image token of the object the question names (not exported: it only shapes the weights)
        a = guided.capture[0]
        b, qp, kp = (torch.tensor(v, device=DEVICE) for v in zip(*targets))
        loss = loss - ATTN_AID * torch.log(a[b, 0, qp, kp] + 1e-6).mean()
    guided.capture = None
    return loss


@torch.no_grad()
def exact_match(model, sp, items, batch=32):
    """Teacher-forced exact match: every answer token and the closing </s> is the argmax. This equals greedy
    decoding producing exactly the answer. Returns {kind: (correct, total)}."""
    model.eval()
    res = {}
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        ids, lab, pixels = build_batch(sp, chunk)
        pred = model(ids.to(DEVICE), pixels.to(DEVICE)).argmax(-1).cpu()
        for j, it in enumerate(chunk):
            m = lab[j, 1:] != -100
            ok = bool((pred[j, :-1][m] == lab[j, 1:][m]).all())
            c, n = res.get(it["kind"], (0, 0))
            res[it["kind"]] = (c + ok, n + 1)
    model.train()
    return res


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stage0-steps", type=int, default=400)
    ap.add_argument("--resume", default=None, help="checkpoint to continue stage 2 from")
    ap.add_argument("--extra-turns", type=int, default=0, help="up to this many extra QA turns per single-image item")
    ap.add_argument("--index-offset", type=int, default=0, help="first training item index (to continue a stream)")
    ap.add_argument("--stage1-steps", type=int, default=600)
    ap.add_argument("--stage2-steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stage2-minutes", type=float, default=0,
                    help="if > 0, stage 2 runs for this many wall-clock minutes and its learning-rate schedule follows "
                         "the elapsed fraction of that time instead of --stage2-steps (for a shared, loaded machine)")
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda): the same recipe on a GPU machine")
    ap.add_argument("--aux-position", action="store_true",
                    help="the per-patch training aid also predicts each cell's index (tried in run 6; not in runs 3-5)")
    ap.add_argument("--init-hf", default=None,
                    help="continue stage 2 from an exported llava-hf folder (models/tiny-llava/hf): its weights and "
                         "its tokenizer.model (no tokenizer training, no stage 0/1)")
    ap.add_argument("--tokenizer", default=None,
                    help="use this tokenizer.model instead of training one (required with --resume: the checkpoint's)")
    ap.add_argument("--task-weights", default="",
                    help="relative weights of the question types in stage 2, e.g. 'where=2,which=2,count=0.3' "
                         "(types: " + ", ".join(data.SINGLE_KINDS + data.MULTI_KINDS) + "; default 1 each)")
    ap.add_argument("--attn-aid", type=float, default=0.0,
                    help="weight of the attention training aid: head 0 of a decoder layer (--attn-layer) is taught to "
                         "look, from the position that predicts an answer, at the image token of the object the "
                         "question names (colour/shape/where/which/text questions). 0: off (runs 3-6)")
    ap.add_argument("--attn-layer", type=int, default=-1, help="decoder layer guided by --attn-aid (default: last)")
    args = ap.parse_args()
    global DEVICE, AUX_POSITION, ATTN_AID, ATTN_LAYER
    ATTN_AID, ATTN_LAYER = args.attn_aid, args.attn_layer
    DEVICE = torch.device(args.device)
    AUX_POSITION = args.aux_position
    for part in filter(None, args.task_weights.split(",")):
        name, value = part.split("=")
        if name not in data.SINGLE_KINDS + data.MULTI_KINDS:
            raise SystemExit(f"--task-weights: unknown question type '{name}'")
        TASK_WEIGHTS[name] = float(value)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(TORCH_SEED)
    random.seed(TORCH_SEED)

    import sentencepiece as spm
    tokenizer_from = args.tokenizer or (os.path.join(args.init_hf, "tokenizer.model") if args.init_hf else None)
    if tokenizer_from:
        # the tokenizer the weights were trained with (a retrained one need not give the same ids)
        import shutil
        sp_path = os.path.join(args.out, "tokenizer.model")
        shutil.copyfile(tokenizer_from, sp_path)
    else:
        sp_path = train_tokenizer(args.out, M.CONFIG["vocab_size"])
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    assert sp.get_piece_size() == M.CONFIG["vocab_size"]
    image_id = sp.piece_to_id("<image>")
    model = M.TinyLlava(M.CONFIG, image_id)
    if args.resume and not args.tokenizer:
        raise SystemExit("--resume needs --tokenizer (the tokenizer.model the checkpoint was trained with)")
    if args.resume:
        # continue stage 2 from a checkpoint (fresh optimizer, warm-up again; no stage 0/1)
        model.load_state_dict(torch.load(args.resume, map_location="cpu")["model"])
        args.stage0_steps = args.stage1_steps = 0
    elif args.init_hf:
        from export import read_safetensors
        weights = read_safetensors(os.path.join(args.init_hf, "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in weights.items()})
        args.stage0_steps = args.stage1_steps = 0
    model.to(DEVICE)
    n_params = sum(p.numel() for p in model.parameters())
    log = open(os.path.join(args.out, "train.log"), "a")

    def say(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say(f"params {n_params} image_token_index {image_id} args {vars(args)}")
    t_start = time.time()
    aux = PatchClassifier(M.CONFIG["vision_hidden"]).to(DEVICE)
    opt = torch.optim.AdamW(list(model.parameters()) + list(aux.parameters()), lr=args.lr, betas=(0.9, 0.98),
                            weight_decay=0.01)
    # stage 0: the vision tower alone, per-patch classification (64 images per step)
    for step in range(args.stage0_steps):
        specs = [data.random_spec(random.Random(TRAIN_SEED * 7919 + step * 64 + k)) for k in range(64)]
        pixels = torch.stack([M.pixel_values(data.render(s)) for s in specs]).to(DEVICE)
        labels = torch.stack([patch_labels(s) for s in specs]).to(DEVICE)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.stage0_steps, args.lr, 50)
        feats = model.selected_vision_features(pixels)
        loss = aux.loss(feats, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.stage0_steps - 1:
            acc = aux.accuracy(feats, labels)
            say(f"stage 0 step {step} loss {loss.item():.4f} patch acc shape/colour/text "
                f"{acc[0]:.3f}/{acc[1]:.3f}/{acc[2]:.3f} {(time.time() - t_start) / 60:.1f} min")
    val_items = [data.make_item(VAL_SEED, i) for i in range(400)]
    val_items = [it for it in val_items if it["kind"] != "caption"]
    t0 = time.time()
    best = -1.0
    total = args.stage1_steps + args.stage2_steps
    index = args.index_offset  # running item index into the training stream
    ema = None
    budget = args.stage2_minutes * 60
    t2 = None
    step = -1
    while True:
        step += 1
        if not budget and step >= total:
            break
        stage = 1 if step < args.stage1_steps else 2
        if stage == 2 and t2 is None:
            t2 = time.time()
        items = []
        for _ in range(args.batch):
            item = training_item(index, stage)
            items.append(add_turns(item, index, args.extra_turns if stage == 2 else 0))
            index += 1
        ids, lab, pixels, plabels, targets = build_batch(sp, items, with_labels=True, with_targets=True)
        if stage == 1:
            lr = lr_at(step, args.stage1_steps, args.lr, 100)
        elif budget and step - args.stage1_steps < 100:
            lr = args.lr * (step - args.stage1_steps + 1) / 100  # warm-up
        elif budget:
            lr = lr_at(int((time.time() - t2) / budget * 10000), 10000, args.lr, 0)
        else:
            lr = lr_at(step - args.stage1_steps, args.stage2_steps, args.lr, 100)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(model, ids, lab, pixels, aux, plabels, targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        elapsed = time.time() - t0
        if args.bench and step + 1 >= args.bench:
            say(f"bench {args.bench} steps {elapsed:.1f}s ({elapsed / args.bench:.3f} s/step) T={ids.shape[1]}")
            return
        if step % 25 == 0:
            say(f"step {step} stage {stage} loss {loss.item():.4f} ema {ema:.4f} lr {lr:.2e} {elapsed / 60:.1f} min")
        if budget:
            last = stage == 2 and time.time() - t2 >= budget
        else:
            last = step == total - 1
        if stage == 2 and ((step + 1 - args.stage1_steps) % args.eval_every == 0 or last):
            res = exact_match(model, sp, val_items)
            acc = {k: c / n for k, (c, n) in res.items()}
            score = sum(acc.values()) / len(acc)
            say(f"val step {step} " + json.dumps({k: f"{c}/{n}" for k, (c, n) in res.items()}))
            state = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "step": step, "val": res, "image_token_index": image_id,
                     "config": M.CONFIG}
            torch.save(state, os.path.join(args.out, "ckpt.pt"))
            if score > best:
                best = score
                torch.save(state, os.path.join(args.out, "best.pt"))
                say(f"best {score:.4f} saved")
        if last:
            say(f"stopped at step {step} after {elapsed / 60:.1f} min")
            break
    say("done")


if __name__ == "__main__":
    main()
