"""Synthetic image + question/answer generator for the tiny LLaVA (deterministic, seeded).

An image is a 48x48 RGB picture on a 3x3 grid of 16x16 cells: one to four coloured shapes, each in
its own cell, on a plain or noisy neutral background, and sometimes a digit or a three-letter word
drawn with the bitmap font below (no font files, so every pixel is reproducible).

Everything is derived from an integer seed: `make_item(seed, index)` always returns the same item.
Held-out sets use seeds that training never uses (train.py: TRAIN_SEED; the eval set: EVAL_SEED).

Answers to the accuracy items are one or two canonical words:
  color     "What color is the star?"               -> red | green | blue | yellow | purple | orange
  shape     "What shape is the red object?"         -> circle | square | triangle | star | cross
  count     "How many objects are there?"           -> 1 | 2 | 3 | 4
  where     "Where is the red star?"                -> top left | top | top right | left | center | ...
  text      "What is written in the image?"         -> cat | dog | ... | 0..9 | nothing
  more      (two images) "Which image has more objects?"            -> first | second
  change    (two images) "What changed between the two images?"     -> color | shape | position | added | removed
  which     (two images) "In which image is the blue square?"       -> first | second
  caption   "Describe the image."                   -> a sentence (not an exact-match accuracy item)
"""
import random

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 48
GRID = 3
CELL = IMAGE_SIZE // GRID  # 16

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 135, 30),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
POSITIONS = [["top left", "top", "top right"],
             ["left", "center", "right"],
             ["bottom left", "bottom", "bottom right"]]
# Phrase used for a position inside a caption.
POSITION_PHRASE = {
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "center": "in the center", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
}
WORDS = ["CAT", "DOG", "SUN", "BOX", "HAT", "CUP", "PEN", "MAP"]
DIGITS = [str(d) for d in range(10)]
# Neutral backgrounds: (base RGB, ink colour for text drawn on it).
BACKGROUNDS = [
    ((245, 245, 245), (0, 0, 0)),
    ((200, 200, 200), (0, 0, 0)),
    ((70, 70, 70), (255, 255, 255)),
    ((15, 15, 15), (255, 255, 255)),
]
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}

# 3x5 bitmap font: five rows of three bits each, most significant bit = leftmost pixel.
FONT_3X5 = {
    "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7],
    "4": [5, 5, 7, 1, 1], "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 2, 2, 2],
    "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
    "A": [2, 5, 7, 5, 5], "B": [6, 5, 6, 5, 6], "C": [7, 4, 4, 4, 7], "D": [6, 5, 5, 5, 6],
    "E": [7, 4, 6, 4, 7], "G": [7, 4, 5, 5, 7], "H": [5, 5, 7, 5, 5], "M": [5, 7, 7, 5, 5],
    "N": [6, 5, 5, 5, 5], "O": [7, 5, 5, 5, 7], "P": [7, 5, 7, 4, 4], "S": [7, 4, 7, 1, 7],
    "T": [7, 2, 2, 2, 2], "U": [5, 5, 5, 5, 7], "X": [5, 5, 2, 5, 5],
}


def draw_text(pixels, text, left, top, scale, ink):
    """Draws `text` into the HxWx3 uint8 array with the 3x5 font, one blank column between glyphs."""
    x = left
    for ch in text:
        rows = FONT_3X5[ch]
        for r, bits in enumerate(rows):
            for c in range(3):
                if bits & (4 >> c):
                    y0, x0 = top + r * scale, x + c * scale
                    pixels[y0:y0 + scale, x0:x0 + scale] = ink
        x += 4 * scale


def text_size(text, scale):
    return (4 * len(text) - 1) * scale, 5 * scale


def shape_polygon(shape, cx, cy, s):
    """Outline points for polygon shapes of size s (bounding box s x s) centred at (cx, cy)."""
    h = s / 2.0
    if shape == "triangle":
        return [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "star":
        pts = []
        for k in range(10):
            r = h if k % 2 == 0 else h * 0.45
            a = -np.pi / 2 + k * np.pi / 5
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a) + h * 0.1))
        return pts
    raise ValueError(shape)


def render(spec):
    """Renders an image spec (see random_spec) to a PIL RGB image. Deterministic."""
    base, ink = BACKGROUNDS[spec["bg"]]
    pixels = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.float64)
    pixels[:] = base
    if spec["noise"] > 0:
        rng = np.random.default_rng(spec["noise_seed"])
        pixels += rng.normal(0.0, spec["noise"], size=pixels.shape)
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    if spec["text"] is not None:
        text, row, col, scale = spec["text"]
        w, h = text_size(text, scale)
        left = col * CELL + (CELL - w) // 2
        top = row * CELL + (CELL - h) // 2
        draw_text(pixels, text, left, top, scale, ink)
    img = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(img)
    for obj in spec["objects"]:
        shape, color, row, col, s, dx, dy = obj
        rgb = COLORS[color]
        cx = col * CELL + CELL / 2.0 + dx
        cy = row * CELL + CELL / 2.0 + dy
        x0, y0, x1, y1 = cx - s / 2.0, cy - s / 2.0, cx + s / 2.0 - 1, cy + s / 2.0 - 1
        if shape == "circle":
            draw.ellipse([x0, y0, x1, y1], fill=rgb)
        elif shape == "square":
            draw.rectangle([x0 + 1, y0 + 1, x1 - 1, y1 - 1], fill=rgb)
        elif shape == "cross":
            t = max(3, s // 3)
            draw.rectangle([cx - t / 2.0, y0, cx + t / 2.0 - 1, y1], fill=rgb)
            draw.rectangle([x0, cy - t / 2.0, x1, cy + t / 2.0 - 1], fill=rgb)
        else:
            draw.polygon(shape_polygon(shape, cx - 0.5, cy - 0.5, s), fill=rgb)
    return img


def random_object(rng, row, col, taken):
    """A shape/colour pair not in `taken` (no two objects share both), placed in cell (row, col)."""
    while True:
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        if (shape, color) not in taken:
            break
    s = rng.randint(10, 14)
    slack = (CELL - s) // 2
    return (shape, color, row, col, s, rng.randint(-slack, slack), rng.randint(-slack, slack))


def random_spec(rng, n_objects=None, text_probability=0.35):
    n = n_objects if n_objects is not None else rng.randint(1, 4)
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    rng.shuffle(cells)
    objects, taken = [], set()
    for r, c in cells[:n]:
        obj = random_object(rng, r, c, taken)
        taken.add((obj[0], obj[1]))
        objects.append(obj)
    text = None
    if rng.random() < text_probability:
        r, c = cells[n]
        if rng.random() < 0.5:
            text = (rng.choice(DIGITS), r, c, 2)
        else:
            text = (rng.choice(WORDS), r, c, 1)
    noisy = rng.random() < 0.5
    return {"bg": rng.randrange(len(BACKGROUNDS)), "noise": rng.choice([8, 14]) if noisy else 0,
            "noise_seed": rng.randrange(1 << 30), "objects": objects, "text": text}


def sorted_objects(spec):
    return sorted(spec["objects"], key=lambda o: (o[2], o[3]))


def caption(spec):
    parts = [f"a {o[1]} {o[0]} {POSITION_PHRASE[POSITIONS[o[2]][o[3]]]}" for o in sorted_objects(spec)]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    text = text[0].upper() + text[1:] + "."
    if spec["text"] is not None:
        text += f" It says {spec['text'][0].lower()}."
    return text


def written_answer(spec):
    return "nothing" if spec["text"] is None else spec["text"][0].lower()


SINGLE_KINDS = ["color", "shape", "count", "where", "text"]
MULTI_KINDS = ["more", "change", "which"]


def single_question(rng, spec, kind):
    """(question, answer) for one image, or None when the kind does not apply unambiguously."""
    objs = spec["objects"]
    if kind == "color":
        unique = [o for o in objs if sum(p[0] == o[0] for p in objs) == 1]
        if not unique:
            return None
        o = rng.choice(unique)
        q = rng.choice([f"What color is the {o[0]}?", f"Which color does the {o[0]} have?"])
        return q, o[1]
    if kind == "shape":
        unique = [o for o in objs if sum(p[1] == o[1] for p in objs) == 1]
        if not unique:
            return None
        o = rng.choice(unique)
        q = rng.choice([f"What shape is the {o[1]} object?", f"Which shape is {o[1]}?"])
        return q, o[0]
    if kind == "count":
        q = rng.choice(["How many objects are there?", "How many shapes are in the image?"])
        return q, str(len(objs))
    if kind == "where":
        o = rng.choice(objs)
        q = rng.choice([f"Where is the {o[1]} {o[0]}?", f"Where is the {o[1]} {o[0]} in the image?"])
        return q, POSITIONS[o[2]][o[3]]
    if kind == "text":
        q = rng.choice(["What is written in the image?", "What does the text say?"])
        return q, written_answer(spec)
    if kind == "caption":
        return rng.choice(["Describe the image.", "Describe the image briefly."]), caption(spec)
    raise ValueError(kind)


def changed_copy(rng, spec):
    """A copy of `spec` with exactly one change; returns (new_spec, answer)."""
    objs = list(spec["objects"])
    options = ["color", "shape", "position"]
    if len(objs) < 4:
        options.append("added")
    if len(objs) > 1:
        options.append("removed")
    change = rng.choice(options)
    taken = {(o[0], o[1]) for o in objs}
    occupied = {(o[2], o[3]) for o in objs}
    if spec["text"] is not None:
        occupied.add((spec["text"][1], spec["text"][2]))
    free = [(r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in occupied]
    i = rng.randrange(len(objs))
    shape, color, row, col, s, dx, dy = objs[i]
    if change == "color":
        color = rng.choice([c for c in COLORS if c != color and (shape, c) not in taken])
        objs[i] = (shape, color, row, col, s, dx, dy)
    elif change == "shape":
        shape = rng.choice([x for x in SHAPES if x != shape and (x, color) not in taken])
        objs[i] = (shape, color, row, col, s, dx, dy)
    elif change == "position":
        row, col = rng.choice(free)
        objs[i] = (shape, color, row, col, s, dx, dy)
    elif change == "added":
        r, c = rng.choice(free)
        objs.append(random_object(rng, r, c, taken))
    else:
        del objs[i]
    new = dict(spec)
    new["objects"] = objs
    return new, change


def multi_question(rng, kind):
    """(spec_a, spec_b, question, answer) for a two-image item."""
    if kind == "more":
        na, nb = rng.sample([1, 2, 3, 4], 2)
        a, b = random_spec(rng, na), random_spec(rng, nb)
        q = rng.choice(["Which image has more objects?", "Which of the two images has more objects?"])
        return a, b, q, "first" if na > nb else "second"
    if kind == "change":
        a = random_spec(rng)
        b, answer = changed_copy(rng, a)
        q = rng.choice(["What changed between the two images?", "What is different in the second image?"])
        return a, b, q, answer
    if kind == "which":
        while True:
            a, b = random_spec(rng), random_spec(rng)
            sa = {(o[0], o[1]) for o in a["objects"]}
            sb = {(o[0], o[1]) for o in b["objects"]}
            # sorted: a set of strings iterates in an order that changes with every process (hash randomisation)
            only = [(k, "first") for k in sorted(sa - sb)] + [(k, "second") for k in sorted(sb - sa)]
            if only:
                break
        (shape, color), answer = rng.choice(only)
        q = rng.choice([f"In which image is the {color} {shape}?", f"Which image shows the {color} {shape}?"])
        return a, b, q, answer
    raise ValueError(kind)


def make_item(seed, index, kind=None, kinds=None):
    """One item: {"specs": [spec, ...], "question", "answer", "kind", "task"}; deterministic in (seed, index).

    kind: "single", "multi" or "caption" (None: drawn from the default mixture); task: the question type.
    """
    rng = random.Random(seed * 1_000_003 + index)
    if kind is None:
        kind = rng.choices(["single", "multi", "caption"], weights=[0.55, 0.35, 0.10])[0]
    if kind == "caption":
        spec = random_spec(rng)
        q, a = single_question(rng, spec, "caption")
        return {"specs": [spec], "question": q, "answer": a, "kind": "caption", "task": "caption"}
    if kind == "single":
        while True:
            task = rng.choice(kinds or SINGLE_KINDS)
            spec = random_spec(rng, text_probability=0.6 if task == "text" else 0.35)
            qa = single_question(rng, spec, task)
            if qa is not None:
                return {"specs": [spec], "question": qa[0], "answer": qa[1], "kind": "single", "task": task}
    task = rng.choice(kinds or MULTI_KINDS)
    a, b, q, ans = multi_question(rng, task)
    return {"specs": [a, b], "question": q, "answer": ans, "kind": "multi", "task": task}


def all_texts():
    """Every string the model reads or writes, for training the tokenizer (no prompt scaffolding except
    the role words, so that '\\n' stays a byte-fallback token as in Llama)."""
    texts = ["USER:", "ASSISTANT:", "USER: ASSISTANT:"]
    for i in range(6000):
        item = make_item(12345, i)
        texts.append(item["question"])
        texts.append(item["answer"])
    return texts


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-llava-preview"
    import os
    os.makedirs(out, exist_ok=True)
    for i in range(12):
        item = make_item(7, i)
        for k, spec in enumerate(item["specs"]):
            render(spec).resize((192, 192), Image.NEAREST).save(f"{out}/{i:02d}_{k}.png")
        print(i, item["kind"], item["task"], "|", item["question"], "->", item["answer"])
