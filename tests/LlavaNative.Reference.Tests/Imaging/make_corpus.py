#!/usr/bin/python3
"""Writes the PNG/GIF/BMP/PNM test corpus and its reference pixels.

Usage: /usr/bin/python3 make_corpus.py OUTDIR

Images come from Pillow, from ImageMagick (/usr/bin/convert) for variants Pillow cannot write (interlaced and
16-bit PNG, 2-bit gray, BMP bitfields), and from the small writers below for what neither tool does on request
(every PNG filter on every row, split IDAT, colour keys, GIF disposal/transparency combinations, top-down, OS/2
and run-length BMPs, ASCII PNM). The writers only produce files; the expected pixels come from Pillow decoding them
(np.asarray(Image.open(f).convert(mode))), or, for the behaviours where LlavaNative deliberately differs from
Pillow (16-bit samples, PNG colour keys Pillow never matches, PGM with maxval > 255, BMP bitfields Pillow
rejects or reads without alpha), from the exact sample
arrays the files were made from; for the few files Pillow misreads (RLE BMP move escapes and odd RLE4 literal
runs) from ImageMagick. Wherever two references exist the script checks they agree, so a slip in a writer
fails here rather than in the C# test.

OUTDIR/manifest.json lists every file: {"file", "format", "reference": "pillow"|"exact"|"imagemagick", "why",
"frames", "width", "height", "channels", "pixels"}; "pixels" is a raw uint8 file holding all frames,
[frames, height, width, channels].
"""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image, ImageSequence

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
CONVERT = "/usr/bin/convert"
rng = np.random.default_rng(20240611)
entries = []
MODE_OF = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def path(name):
    p = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def pillow_pixels(file, channels):
    with Image.open(file) as im:
        a = np.asarray(im.convert(MODE_OF[channels]))
    return a if a.ndim == 3 else a[:, :, None]


def add(name, fmt, frames, reference, why=""):
    """Records one corpus file; frames: list of uint8 arrays [h, w, c] (c may be absent for gray)."""
    frames = [f if f.ndim == 3 else f[:, :, None] for f in frames]
    h, w, c = frames[0].shape
    assert all(f.shape == (h, w, c) and f.dtype == np.uint8 for f in frames), name
    pix = name + ".expected.bin"
    with open(path(pix), "wb") as f:
        for fr in frames:
            f.write(np.ascontiguousarray(fr).tobytes())
    entries.append({"file": name, "format": fmt, "reference": reference, "why": why, "frames": len(frames),
                    "width": w, "height": h, "channels": c, "pixels": pix})


def magick(args):
    subprocess.run([CONVERT, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ---------------------------------------------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------------------------------------------

SPP = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
LEGAL = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8),
         (4, 8), (4, 16), (6, 8), (6, 16)]
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_samples(rows, depth):
    """rows: [h, n] samples -> [h, rowbytes] bytes, big-endian, MSB-first bit packing."""
    h, n = rows.shape
    if depth == 8:
        return rows.astype(np.uint8)
    if depth == 16:
        return rows.astype(">u2").view(np.uint8).reshape(h, 2 * n)
    per = 8 // depth
    padded = np.zeros((h, -(-n // per) * per), np.uint16)
    padded[:, :n] = rows
    groups = padded.reshape(h, -1, per)
    out = np.zeros(groups.shape[:2], np.uint16)
    for k in range(per):
        out |= groups[:, :, k] << (8 - depth * (k + 1))
    return out.astype(np.uint8)


def filter_row(kind, row, prior, bpp):
    r = row.astype(np.int32)
    up = prior.astype(np.int32)
    left = np.concatenate([np.zeros(bpp, np.int32), r])[: len(r)]
    upleft = np.concatenate([np.zeros(bpp, np.int32), up])[: len(r)]
    if kind == 0:
        pred = np.zeros_like(r)
    elif kind == 1:
        pred = left
    elif kind == 2:
        pred = up
    elif kind == 3:
        pred = (left + up) // 2
    else:
        p = left + up - upleft
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    return ((r - pred) & 0xFF).astype(np.uint8)


def write_png(name, samples, ct, depth, palette=None, trns=None, interlace=False, filters="cycle",
              idat_pieces=1, extra_chunks=False, seed=0):
    """samples: [h, w, spp] raw sample values. Writes every row with filter (row + seed) % 5 ("cycle")."""
    h, w, spp = samples.shape
    bpp = max(1, spp * depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    row_index = seed
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        packed = pack_samples(sub.reshape(sub.shape[0], -1), depth)
        prior = np.zeros(packed.shape[1], np.uint8)
        for row in packed:
            kind = row_index % 5 if filters == "cycle" else filters
            row_index += 1
            raw.append(kind)
            raw += filter_row(kind, row, prior, bpp).tobytes()
            prior = row
    comp = zlib.compress(bytes(raw), 9)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, int(interlace)))
    if extra_chunks:
        out += png_chunk(b"gAMA", struct.pack(">I", 45455)) + png_chunk(b"tEXt", b"Comment\0made by make_corpus.py")
        out += png_chunk(b"prVt", b"private ancillary chunk: safe to skip")
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += png_chunk(b"tRNS", bytes(trns))
    if idat_pieces == 1:
        out += png_chunk(b"IDAT", comp)
    else:
        cuts = sorted(rng.choice(np.arange(1, max(2, len(comp))), size=min(idat_pieces - 1, max(1, len(comp) - 1)), replace=False))
        bounds = [0, *cuts, len(comp)]
        for a, b in zip(bounds, bounds[1:]):
            out += png_chunk(b"IDAT", comp[a:b])
        out += png_chunk(b"IDAT", b"")  # an empty IDAT is legal
    if extra_chunks:
        out += png_chunk(b"tEXt", b"Author\0after the image data")
    out += png_chunk(b"IEND", b"")
    with open(path(name), "wb") as f:
        f.write(out)


def assert_ihdr(name, depth, ct, interlaced):
    """ImageMagick falls back silently when it cannot honour an option: check it wrote what the case is for."""
    with open(path(name), "rb") as f:
        header = f.read(29)
    got = struct.unpack(">BBBBB", header[24:29])
    assert (got[0], got[1], got[4]) == (depth, ct, int(interlaced)), f"{name}: IHDR {got}, wanted {depth=} {ct=} {interlaced=}"


def exact_png(samples, ct, depth, palette=None, trns=None):
    """The pixels LlavaNative promises for raw samples [h, w, spp] (see PngDecoder's documentation)."""
    s = samples.astype(np.int64)
    if ct == 3:
        lut = np.zeros((256, 4), np.uint8)
        lut[:, :3] = np.arange(256)[:, None]  # indices past the palette read as gray, as in Pillow
        lut[:, 3] = 255
        n = len(palette) // 3
        lut[:n, :3] = np.array(palette, np.uint8).reshape(n, 3)
        if trns is not None:
            lut[: len(trns), 3] = list(trns)
        out = lut[s[..., 0]]
        return out if trns is not None else out[..., :3]
    if depth == 16:
        v = s >> 8
    else:
        v = s * (255 // ((1 << depth) - 1))
    v = v.astype(np.uint8)
    if trns is not None and ct in (0, 2):
        key = np.array(struct.unpack(">%dH" % (len(trns) // 2), bytes(trns)))
        alpha = np.where((s == key).all(axis=-1), 0, 255).astype(np.uint8)
        v = np.concatenate([v, alpha[..., None]], axis=-1)
    return v


def random_samples(h, w, ct, depth, palette_entries=None):
    top = (palette_entries if ct == 3 and palette_entries else 1 << depth) - 1
    s = rng.integers(0, top + 1, size=(h, w, SPP[ct]), dtype=np.int64)
    # Smooth regions too, so Sub/Up/Average/Paeth see small differences as well as noise.
    ramp = (np.add.outer(np.arange(h), np.arange(w)) * max(1, top // max(1, h + w))) % (top + 1)
    s[: h // 2] = ramp[: h // 2, :, None] if h > 1 else s[: h // 2]
    return s.astype(np.uint16)


def png_case(name, samples, ct, depth, palette=None, trns=None, **kw):
    write_png(name, samples, ct, depth, palette, trns, **kw)
    exact = exact_png(samples, ct, depth, palette, trns)
    channels = exact.shape[2]
    pillow = pillow_pixels(path(name), channels)
    gray_key_differs = trns is not None and ((ct == 0 and depth != 8) or (ct == 2 and depth == 16))
    if depth == 16 or gray_key_differs:
        # Deliberate differences (PngDecoder docs): 16-bit -> high byte; colour keys compared on the file's samples.
        pillow_agrees = np.array_equal(pillow, exact)
        expected_disagreement = (ct == 0 and depth == 16) or gray_key_differs
        if not expected_disagreement:
            assert pillow_agrees, f"{name}: Pillow keeps the high byte here; the writer or exact_png is wrong"
        why = "16-bit: high byte of the exact samples" if depth == 16 else ""
        if gray_key_differs:
            why = (why + "; " if why else "") + "tRNS colour key compared on the file's samples (Pillow never matches it)"
        add(name, "PNG", [exact], "exact", why)
    else:
        assert np.array_equal(pillow, exact), f"{name}: Pillow and the exact samples disagree; the writer is wrong"
        add(name, "PNG", [pillow], "pillow")


def make_png():
    sizes = [(1, 1), (7, 3), (13, 257)]
    seed = 0
    for ct, depth in LEGAL:
        for interlace in (False, True):
            for h, w in sizes:
                seed += 1
                palette = None
                entries_ = None
                if ct == 3:
                    entries_ = min(1 << depth, 256)
                    palette = rng.integers(0, 256, size=3 * entries_).tolist()
                s = random_samples(h, w, ct, depth, entries_)
                png_case(f"png/ct{ct}_d{depth}_{'adam7' if interlace else 'flat'}_{w}x{h}.png", s, ct, depth, palette,
                         interlace=interlace, seed=seed, idat_pieces=1 + seed % 4, extra_chunks=seed % 3 == 0)
    # Colour keys (tRNS) on gray and RGB at every depth, with the key present in the image.
    for ct, depth in [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16)]:
        for interlace in (False, True):
            s = random_samples(13, 29, ct, depth)
            key = s[5, 7].tolist()
            trns = struct.pack(">%dH" % len(key), *key)
            png_case(f"png/trns_ct{ct}_d{depth}_{'adam7' if interlace else 'flat'}.png", s, ct, depth, trns=trns,
                     interlace=interlace, seed=depth)
    # Palette alpha: a full table, a short table (later entries opaque), a single transparent entry.
    for depth in (1, 2, 4, 8):
        n = 1 << depth
        palette = rng.integers(0, 256, size=3 * n).tolist()
        s = random_samples(11, 37, 3, depth, n)
        png_case(f"png/plte_trns_full_d{depth}.png", s, 3, depth, palette, rng.integers(0, 256, size=n).tolist())
        png_case(f"png/plte_trns_short_d{depth}.png", s, 3, depth, palette, [0, 128][: max(1, n // 2)],
                 interlace=True)
        single = [255] * n
        single[n - 1] = 0
        png_case(f"png/plte_trns_single_d{depth}.png", s, 3, depth, palette, single)
    # A palette shorter than the indices in the image: indices past it read as gray (i, i, i).
    s = rng.integers(0, 256, size=(9, 31, 1)).astype(np.uint16)
    png_case("png/plte_short_indices_past_end.png", s, 3, 8, rng.integers(0, 256, size=3 * 20).tolist())
    png_case("png/plte_short_indices_past_end_trns.png", s, 3, 8, rng.integers(0, 256, size=3 * 20).tolist(),
             [7, 0, 200])
    # Each filter alone on a photo-like image (all rows the same filter).
    photo = random_samples(40, 61, 6, 8)
    for f in range(5):
        png_case(f"png/filter{f}_rgba8.png", photo, 6, 8, filters=f)
        png_case(f"png/filter{f}_rgb16.png", random_samples(17, 23, 2, 16), 2, 16, filters=f)
        png_case(f"png/filter{f}_gray2.png", random_samples(17, 23, 0, 2), 0, 2, filters=f, interlace=True)

    # Files written by Pillow itself (its own adaptive filtering and zlib settings).
    src = rng.integers(0, 256, size=(13, 257, 4), dtype=np.uint8)
    src[:6] = (np.add.outer(np.arange(6), np.arange(257))[:, :, None] * [1, 2, 3, 4]).astype(np.uint8)
    for mode in ("1", "L", "LA", "RGB", "RGBA", "P"):
        for h, w in [(1, 1), (7, 3), (13, 257)]:
            im = Image.fromarray(src[:h, :w]).convert(mode if mode != "P" else "RGB")
            if mode == "P":
                im = im.quantize(colors=(2, 5, 13, 200)[w % 4])
            name = f"png/pillow_{mode}_{w}x{h}.png"
            kw = {"transparency": 1} if mode == "P" and w > 1 else {}
            im.save(path(name), **kw)
            channels = {"1": 1, "L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 4 if kw else 3}[mode]
            add(name, "PNG", [pillow_pixels(path(name), channels)], "pillow")
    g16 = (rng.integers(0, 65536, size=(13, 257), dtype=np.uint16))
    Image.fromarray(g16, "I;16").save(path("png/pillow_I16_257x13.png"))
    add("png/pillow_I16_257x13.png", "PNG", [(g16 >> 8).astype(np.uint8)], "exact",
        "16-bit gray: high byte (Pillow clips the 16-bit value to 255)")
    big = Image.fromarray((np.add.outer(np.arange(480), np.arange(640))[:, :, None] * [1, 3, 7] // 4 % 256
                           + rng.integers(0, 8, size=(480, 640, 3))).astype(np.uint8))
    big.save(path("png/pillow_photo_640x480.png"), optimize=True)
    add("png/pillow_photo_640x480.png", "PNG", [pillow_pixels(path("png/pillow_photo_640x480.png"), 3)], "pillow")

    # Files written by ImageMagick from exact sources: interlaced, 16-bit, 2-bit gray, palette with alpha.
    rgba16 = rng.integers(0, 65536, size=(13, 29, 4), dtype=np.uint16)
    rgba16[:5] = (np.add.outer(np.arange(5), np.arange(29)) * 2000)[:, :, None].astype(np.uint16)
    with open(path("src/rgba16.pam"), "wb") as f:
        f.write(b"P7\nWIDTH 29\nHEIGHT 13\nDEPTH 4\nMAXVAL 65535\nTUPLTYPE RGB_ALPHA\nENDHDR\n")
        f.write(rgba16.astype(">u2").tobytes())
    with open(path("src/rgb16.ppm"), "wb") as f:
        f.write(b"P6\n29 13\n65535\n" + rgba16[:, :, :3].astype(">u2").tobytes())
    with open(path("src/gray16.pgm"), "wb") as f:
        f.write(b"P5\n29 13\n65535\n" + rgba16[:, :, 0].astype(">u2").tobytes())
    for interlace in ("None", "PNG"):
        tag = "adam7" if interlace == "PNG" else "flat"
        for src_name, ctype, channels in [("rgba16.pam", 6, 4), ("rgb16.ppm", 2, 3), ("gray16.pgm", 0, 1)]:
            name = f"png/magick_{ctype}_d16_{tag}.png"
            magick([path("src/" + src_name), "-interlace", interlace, "-define", "png:bit-depth=16",
                    "-define", f"png:color-type={ctype}", path(name)])
            assert_ihdr(name, 16, ctype, interlace == "PNG")
            data = rgba16[:, :, :channels] if channels != 1 else rgba16[:, :, :1]
            add(name, "PNG", [(data >> 8).astype(np.uint8)], "exact", "16-bit: high byte of the exact samples")
            if channels != 1:
                assert np.array_equal(pillow_pixels(path(name), channels), (data >> 8).astype(np.uint8)), name
        gray8 = Image.fromarray((rgba16[:, :, 1] >> 8).astype(np.uint8))
        gray8.save(path("src/gray8.png"))
        for depth in (2, 4):
            # Gray levels on the 2/4-bit grid: ImageMagick keeps them exact when reducing the depth.
            step = 255 // ((1 << depth) - 1)
            levels = (np.asarray(gray8).astype(int) // step * step).astype(np.uint8)
            Image.fromarray(levels).save(path(f"src/levels{depth}.png"))
            name = f"png/magick_gray_d{depth}_{tag}.png"
            magick([path(f"src/levels{depth}.png"), "-interlace", interlace, "-depth", str(depth), path(name)])
            assert_ihdr(name, depth, 0, interlace == "PNG")
            with Image.open(path(name)) as im:
                assert im.mode == "L" and np.array_equal(np.asarray(im), levels), name
            add(name, "PNG", [pillow_pixels(path(name), 1)], "pillow")
        name = f"png/magick_rgba8_{tag}.png"
        magick([path("src/rgba16.pam"), "-depth", "8", "-interlace", interlace, "-define", "png:color-type=6", path(name)])
        assert_ihdr(name, 8, 6, interlace == "PNG")
        add(name, "PNG", [pillow_pixels(path(name), 4)], "pillow")
        name = f"png/magick_palette_alpha_{tag}.png"
        Image.fromarray((rgba16 >> 14 << 6).astype(np.uint8), "RGBA").save(path("src/few_colors.png"))
        magick([path("src/few_colors.png"), "-interlace", interlace, "PNG8:" + path(name)])
        assert_ihdr(name, 8, 3, interlace == "PNG")
        with Image.open(path(name)) as im:
            assert "transparency" in im.info, (name, im.info)
        add(name, "PNG", [pillow_pixels(path(name), 4)], "pillow")


# ---------------------------------------------------------------------------------------------------------------
# GIF
# ---------------------------------------------------------------------------------------------------------------

def lzw_encode(indices, min_size, clear_when_full=True):
    """GIF LZW: variable-width codes packed LSB first. With clear_when_full=False the table stays full at 4096
    entries and coding goes on with 12-bit codes (the "deferred clear" some encoders use)."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    out = bytearray()
    acc = nbits = 0

    def emit(code, width):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8

    # The decoder adds its table entry one code later than the encoder, so a code is written with the width the
    # decoder will have: enough bits for (encoder's next free code - 1).
    def width(next_code):
        return min(12, max(min_size + 1, (next_code - 1).bit_length()))

    table, next_code = {}, end + 1
    emit(clear, min_size + 1)
    prefix = None
    for k in map(int, indices):
        if prefix is None:
            prefix = k
            continue
        if (prefix, k) in table:
            prefix = table[(prefix, k)]
            continue
        emit(prefix, width(next_code))
        if next_code < 4096:
            table[(prefix, k)] = next_code
            next_code += 1
        elif clear_when_full:
            emit(clear, 12)
            table, next_code = {}, end + 1
        prefix = k
    if prefix is not None:
        emit(prefix, width(next_code))
        next_code = min(next_code + 1, 4096)
    emit(end, width(next_code))
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def gif_palette_bytes(palette):
    """palette: list of (r, g, b); padded with black to a power of two (at least 2) -> (size bits - 1, bytes)."""
    n = max(2, len(palette))
    bits = max(1, (n - 1).bit_length())
    flat = [c for rgb in palette for c in rgb] + [0] * (3 * ((1 << bits) - len(palette)))
    return bits - 1, bytes(flat)


def write_gif(name, width, height, frames, global_palette=None, background=0, version=b"GIF89a", trailer=True):
    """frames: dicts with indices [h, w], x, y and optional palette (local), interlace, transparency, disposal,
    gce (write a graphic control extension; default when transparency or disposal is given), min_code,
    clear_when_full, coded_pixels (LZW-code only the first n pixels), cut_lzw (keep only n bytes of LZW data)."""
    out = bytearray(version + struct.pack("<HH", width, height))
    if global_palette is not None:
        size, table = gif_palette_bytes(global_palette)
        out += bytes([0x80 | (7 << 4) | size, background, 0]) + table
    else:
        out += bytes([0, background, 0])
    out += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for f in frames:
        idx = np.asarray(f["indices"])
        h, w = idx.shape
        transparency, disposal = f.get("transparency"), f.get("disposal", 0)
        if f.get("gce", transparency is not None or disposal):
            flags = (disposal << 2) | (1 if transparency is not None else 0)
            out += b"!\xf9\x04" + bytes([flags]) + struct.pack("<H", 5) + bytes([transparency or 0, 0])
        if f.get("comment"):
            out += b"!\xfe" + bytes([len(f["comment"])]) + f["comment"] + b"\0"
        flags = 0x40 if f.get("interlace") else 0
        table = b""
        if f.get("palette") is not None:
            size, table = gif_palette_bytes(f["palette"])
            flags |= 0x80 | size
        out += b"," + struct.pack("<HHHH", f.get("x", 0), f.get("y", 0), w, h) + bytes([flags]) + table
        rows = idx
        if f.get("interlace"):
            order = [*range(0, h, 8), *range(4, h, 8), *range(2, h, 4), *range(1, h, 2)]
            rows = idx[order]
        min_code = f.get("min_code", max(2, int(idx.max()).bit_length()))
        coded = rows.reshape(-1)[: f.get("coded_pixels", h * w)]  # fewer pixels than the frame: an early end code
        data = lzw_encode(coded, min_code, f.get("clear_when_full", True))
        data = data[: f.get("cut_lzw", len(data))]  # data cut short, no end code
        out.append(min_code)
        for i in range(0, len(data), 255):
            piece = data[i:i + 255]
            out += bytes([len(piece)]) + piece
        out.append(0)
    if trailer:
        out += b";"
    with open(path(name), "wb") as f:
        f.write(out)


def pillow_gif_frames(file):
    with Image.open(file) as im:
        return [np.asarray(frame.convert("RGBA")) for frame in ImageSequence.Iterator(im)]


def gif_case(name, *args, **kw):
    write_gif(name, *args, **kw)
    add(name, "GIF", pillow_gif_frames(path(name)), "pillow")


def random_palette(n):
    return [tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(n, 3))]


def random_animation(name, frames_count, first_transparent, gray=False, width=16, height=12):
    """Random sub-rectangle frames over every disposal method (0-7), transparency on and off, local and global
    colour tables, interlaced and not: the combinations Pillow's compositing rules distinguish."""
    palette = [(i, i, i) for i in range(16)] if gray else random_palette(16)
    frames = []
    for k in range(frames_count):
        if k == 0:
            x, y, w, h = 0, 0, width, height
            if rng.random() < 0.5:  # a first frame smaller than the screen, at an offset
                x, y = int(rng.integers(0, 4)), int(rng.integers(0, 4))
                w, h = width - x - int(rng.integers(0, 3)), height - y - int(rng.integers(0, 3))
        else:
            w, h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        f = {"indices": rng.integers(0, 16, size=(h, w)), "x": x, "y": y, "interlace": bool(rng.random() < 0.3)}
        transparent = first_transparent if k == 0 else rng.random() < 0.6
        if transparent:
            f["transparency"] = int(rng.integers(0, 16))
        if rng.random() < 0.8:
            f["disposal"] = int(rng.choice([0, 1, 2, 3, 2, 3, 4, 7]))
            f["gce"] = True
        if not gray and rng.random() < 0.3:
            f["palette"] = random_palette(16)
        frames.append(f)
    gif_case(name, width, height, frames, palette, background=int(rng.integers(0, 16)))


def make_gif():
    # Still images: every LZW code size, odd sizes, interlaced heights that leave some passes empty.
    for bits in range(1, 9):
        palette = random_palette(1 << bits)
        for h, w in [(1, 1), (7, 3), (13, 257)]:
            idx = rng.integers(0, 1 << bits, size=(h, w))
            gif_case(f"gif/still_{bits}bit_{w}x{h}.gif", w, h, [{"indices": idx}], palette,
                     version=b"GIF87a" if bits % 2 else b"GIF89a")
    for h in (1, 2, 3, 4, 5, 8, 9, 13, 37):
        gif_case(f"gif/interlaced_h{h}.gif", 11, h, [{"indices": rng.integers(0, 4, size=(h, 11)), "interlace": True}],
                 random_palette(4))
    # LZW tables that fill up: a clear code at 4096 entries, or coding on with the full table ("deferred clear").
    noise = rng.integers(0, 256, size=(100, 200))
    palette = random_palette(256)
    gif_case("gif/lzw_clear_when_full.gif", 200, 100, [{"indices": noise}], palette)
    gif_case("gif/lzw_deferred_clear.gif", 200, 100, [{"indices": noise, "clear_when_full": False}], palette)
    gif_case("gif/lzw_min_code_8_small_palette.gif", 9, 5, [{"indices": rng.integers(0, 256, size=(5, 9)), "min_code": 8}],
             random_palette(4))  # indices past the colour table read as gray
    # Tables: local only, none at all (grayscale), identity gray ramp (grayscale), local overriding global.
    gif_case("gif/local_palettes_only.gif", 10, 6,
             [{"indices": rng.integers(0, 8, size=(6, 10)), "palette": random_palette(8)},
              {"indices": rng.integers(0, 8, size=(3, 4)), "x": 2, "y": 1, "palette": random_palette(8), "transparency": 1}])
    gif_case("gif/no_palette_gray.gif", 10, 6,
             [{"indices": rng.integers(0, 8, size=(6, 10)), "transparency": 3},
              {"indices": rng.integers(0, 8, size=(3, 4)), "x": 2, "y": 1, "transparency": 5, "disposal": 2},
              {"indices": rng.integers(0, 8, size=(2, 2)), "x": 7, "y": 3}])
    gif_case("gif/comment_and_no_trailer.gif", 5, 4,
             [{"indices": rng.integers(0, 4, size=(4, 5)), "comment": b"a comment block"},
              {"indices": rng.integers(0, 4, size=(2, 2)), "x": 1, "y": 1, "comment": b"another"}],
             random_palette(4), trailer=False)
    gif_case("gif/frame0_larger_than_screen.gif", 6, 4,
             [{"indices": rng.integers(0, 4, size=(6, 9))},
              {"indices": rng.integers(0, 4, size=(5, 5)), "x": 6, "y": 3}],  # the second frame is clipped
             random_palette(4))
    # Random animations over every compositing rule, colour and grayscale, opaque and transparent first frames.
    for i in range(24):
        random_animation(f"gif/anim_{i:02d}.gif", int(rng.integers(2, 7)), first_transparent=i % 2 == 1,
                         gray=i % 6 == 5)

    # Written by Pillow: RGBA frames (transparency, disposal 2) and grayscale frames.
    base = np.zeros((24, 32, 4), np.uint8)
    frames_rgba = []
    for k in range(5):
        a = base.copy()
        a[4 + k: 14 + k, 3 * k: 3 * k + 12] = [40 * k, 255 - 40 * k, 128, 255]
        a[18:, :] = [255, 255, 255, 255 * (k % 2)]
        frames_rgba.append(Image.fromarray(a, "RGBA"))
    frames_rgba[0].save(path("gif/pillow_rgba_anim.gif"), save_all=True, append_images=frames_rgba[1:], disposal=2,
                        duration=40, loop=0)
    add("gif/pillow_rgba_anim.gif", "GIF", pillow_gif_frames(path("gif/pillow_rgba_anim.gif")), "pillow")
    frames_l = [Image.fromarray((np.add.outer(np.arange(20), np.arange(30)) * (k + 1) % 256).astype(np.uint8), "L")
                for k in range(4)]
    frames_l[0].save(path("gif/pillow_gray_anim.gif"), save_all=True, append_images=frames_l[1:], duration=40)
    add("gif/pillow_gray_anim.gif", "GIF", pillow_gif_frames(path("gif/pillow_gray_anim.gif")), "pillow")
    # Written by ImageMagick: optimized layers (sub-rectangles, transparency) and background disposal.
    for k, f in enumerate(frames_rgba):
        f.save(path(f"src/frame{k}.png"))
    sources = [path(f"src/frame{k}.png") for k in range(5)]
    magick(["-delay", "5", "-dispose", "Background", *sources, path("gif/magick_dispose_background.gif")])
    add("gif/magick_dispose_background.gif", "GIF", pillow_gif_frames(path("gif/magick_dispose_background.gif")), "pillow")
    magick(["-delay", "5", "-dispose", "None", *sources, "-layers", "Optimize", path("gif/magick_optimized.gif")])
    add("gif/magick_optimized.gif", "GIF", pillow_gif_frames(path("gif/magick_optimized.gif")), "pillow")


# ---------------------------------------------------------------------------------------------------------------
# BMP
# ---------------------------------------------------------------------------------------------------------------

def bmp_rows(values, bits):
    """values: [h, w] indices or pixel words, or [h, w, 3] bytes for 24-bit -> [h, unpadded row bytes]."""
    h = values.shape[0]
    if bits <= 8:
        return pack_samples(values.astype(np.uint16), bits)
    if bits == 16:
        return values.astype("<u2").view(np.uint8).reshape(h, -1)
    if bits == 24:
        return values.astype(np.uint8).reshape(h, -1)
    return values.astype("<u4").view(np.uint8).reshape(h, -1)


def write_bmp(name, values, bits, header=40, compression=0, masks=None, palette=None, top_down=False,
              colors_used=0, offset_at_palette=False, gap=0):
    """masks go inside V2+ headers (52 and up) or after a 40-byte one; palette: list of (r, g, b)."""
    rows = bmp_rows(values, bits)
    h, w = values.shape[:2]
    stride = -(-rows.shape[1] // 4) * 4
    pixel_data = b"".join(r.tobytes().ljust(stride, b"\0") for r in (rows if top_down else rows[::-1]))
    if header == 12:
        dib = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        dib = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bits, compression, len(pixel_data),
                          2835, 2835, colors_used, 0)
        if header >= 52:
            m = list(masks or [0, 0, 0, 0]) + [0]
            dib += struct.pack("<III", *m[:3]) + (struct.pack("<I", m[3]) if header >= 56 else b"")
        if header >= 108:
            dib += b"BGRs" + b"\0" * 48  # colour space type and its unused endpoints/gamma
        dib = dib.ljust(header, b"\0")
    after = b""
    if header == 40 and compression in (3, 6):
        after = b"".join(struct.pack("<I", m) for m in masks[: 4 if compression == 6 else 3])
    table = b""
    if palette is not None:
        entry = 3 if header == 12 else 4
        table = b"".join(bytes([b, g, r, 0][:entry]) for r, g, b in palette)
    offset = 14 + len(dib) + len(after) + (0 if offset_at_palette else len(table) + gap)
    body = dib + after + table + b"\0" * gap + pixel_data
    with open(path(name), "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, offset) + body)


def rle_row(row, rle4, odd_literals=False):
    """One row of indices as RLE8/RLE4 commands: runs of 3+ equal pixels as (count, index), the rest as literal runs
    (at least 3 pixels, an even count for RLE4, padded to 16 bits) or as runs of 1-2."""
    out = bytearray()
    i, n = 0, len(row)
    while i < n:
        j = i
        while j < n and row[j] == row[i] and j - i < 255:
            j += 1
        if j - i >= 3 or n - i < 3:
            count = max(1, min(j - i, 255))
            out += bytes([count, row[i] * 17 if rle4 else row[i]])
            i += count
            continue
        k = i  # literal: up to the next run of 3 equal pixels
        while k < n and k - i < 254 and not (k + 2 < n and row[k] == row[k + 1] == row[k + 2]):
            k += 1
        length = k - i
        if rle4 and length % 2 and not odd_literals:
            length -= 1
        if length < 3:
            out += bytes([1, row[i] * 17 if rle4 else row[i]])
            i += 1
            continue
        lit = row[i:i + length]
        if rle4:
            padded = [*map(int, lit), 0][: len(lit) + len(lit) % 2]  # an odd run ends in half a byte
            data = bytes(a << 4 | b for a, b in zip(padded[0::2], padded[1::2]))
        else:
            data = bytes(int(v) for v in lit)
        out += bytes([0, length]) + data + (b"\0" if len(data) % 2 else b"")
        i += length
    return bytes(out)


def write_rle_bmp(name, indices, rle4, palette, variant=""):
    """indices [h, w] top row first. variant: "" (every row, EOL each, EOB), "short_rows" (some rows stop early
    with EOL), "move" (a 0,2,dx,dy escape), "no_end" (no EOL after the last row, no EOB), "odd_literals" (RLE4
    literal runs of odd length)."""
    h, w = indices.shape
    rows = indices[::-1]  # bottom-up
    body = bytearray()
    r = 0
    while r < h:
        row = rows[r]
        if variant == "short_rows" and r % 3 == 1:
            body += rle_row(row[: w // 2], rle4) + b"\0\0"
        elif variant == "move" and r == 2 and h > 4:
            k = w // 3
            body += rle_row(row[:k], rle4) + bytes([0, 2, 2, 1])  # right 2, up 1: continue in row r + 1 at k + 2
            body += rle_row(rows[r + 1][k + 2:], rle4) + b"\0\0"
            r += 1
        else:
            body += rle_row(row, rle4, variant == "odd_literals") + (b"" if variant == "no_end" and r == h - 1 else b"\0\0")
        r += 1
    if variant != "no_end":
        body += b"\0\1"
    bits = 4 if rle4 else 8
    table = b"".join(bytes([b, g, r_, 0]) for r_, g, b in palette)
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bits, 2 if rle4 else 1, len(body), 2835, 2835, len(palette), 0)
    offset = 14 + 40 + len(table)
    with open(path(name), "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + dib + table + body)


def bmp_case(name, channels, *args, **kw):
    write_bmp(name, *args, **kw)
    add(name, "BMP", [pillow_pixels(path(name), channels)], "pillow")


def magick_rgba(file, w, h):
    raw = subprocess.run([CONVERT, file, "-depth", "8", "rgba:-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 4)


def make_bmp():
    sizes = [(1, 1), (7, 3), (13, 257), (5, 2), (3, 5)]  # widths 1, 2, 3, 5 and 257 exercise every row padding
    # Written by Pillow: 1-bit, 8-bit gray and palette, 24-bit, and RGBA as 32-bit BI_RGB (alpha dropped on reading).
    src = rng.integers(0, 256, size=(13, 257, 4), dtype=np.uint8)
    for mode in ("1", "L", "P", "RGB", "RGBA"):
        for h, w in sizes[:3]:
            im = Image.fromarray(src[:h, :w], "RGBA").convert(mode if mode != "P" else "RGB")
            if mode == "P":
                im = im.quantize(colors=37)
            name = f"bmp/pillow_{mode}_{w}x{h}.bmp"
            im.save(path(name))
            add(name, "BMP", [pillow_pixels(path(name), 3)], "pillow", "32-bit BI_RGB: the fourth byte is dropped" if mode == "RGBA" else "")
    for h, w in sizes:
        for top_down in (False, True):
            tag = f"{w}x{h}_{'topdown' if top_down else 'bottomup'}"
            bmp_case(f"bmp/rgb24_{tag}.bmp", 3, rng.integers(0, 256, size=(h, w, 3)), 24, top_down=top_down)
            words = rng.integers(0, 2**32, size=(h, w), dtype=np.uint64)
            bmp_case(f"bmp/bgrx32_{tag}.bmp", 3, words, 32, top_down=top_down)
            pal = random_palette(256)
            bmp_case(f"bmp/pal8_{tag}.bmp", 3, rng.integers(0, 256, size=(h, w)), 8, palette=pal, top_down=top_down)
            for bits in (1, 4):
                bmp_case(f"bmp/pal{bits}_{tag}.bmp", 3, rng.integers(0, 1 << bits, size=(h, w)), bits,
                         palette=random_palette(1 << bits), top_down=top_down)
            bmp_case(f"bmp/rgb555_{tag}.bmp", 3, rng.integers(0, 2**16, size=(h, w)), 16, top_down=top_down)
    words = rng.integers(0, 2**32, size=(9, 13), dtype=np.uint64)
    # 32-bit BI_RGB in V4/V5 headers: masks there do not apply, the fourth byte is still dropped.
    for header in (108, 124):
        bmp_case(f"bmp/bgrx32_v{header}.bmp", 3, words, 32, header=header, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000])
    # Bitfields Pillow knows: without alpha in a 40-byte header, with alpha in V4/V5.
    for label, masks in [("bgrx", [0xFF0000, 0xFF00, 0xFF]), ("xbgr", [0xFF000000, 0xFF0000, 0xFF00])]:
        bmp_case(f"bmp/bitfields32_{label}_v40.bmp", 3, words, 32, compression=3, masks=masks)
    for label, masks in [("bgra", [0xFF0000, 0xFF00, 0xFF, 0xFF000000]), ("rgba", [0xFF, 0xFF00, 0xFF0000, 0xFF000000]),
                         ("abgr", [0xFF000000, 0xFF0000, 0xFF00, 0xFF]), ("zero_masks", [0, 0, 0, 0])]:
        for header in (108, 124):
            bmp_case(f"bmp/bitfields32_{label}_v{header}.bmp", 4, words, 32, header=header, compression=3, masks=masks,
                     top_down=header == 124)
    bmp_case("bmp/bitfields32_bgrx_v124.bmp", 3, words, 32, header=124, compression=3, masks=[0xFF0000, 0xFF00, 0xFF, 0])
    half = rng.integers(0, 2**16, size=(9, 13))
    bmp_case("bmp/bitfields16_565_v40.bmp", 3, half, 16, compression=3, masks=[0xF800, 0x7E0, 0x1F])
    bmp_case("bmp/bitfields16_555_v40.bmp", 3, half & 0x7FFF, 16, compression=3, masks=[0x7C00, 0x3E0, 0x1F])
    bmp_case("bmp/bitfields16_565_v124.bmp", 3, half, 16, header=124, compression=3, masks=[0xF800, 0x7E0, 0x1F, 0])
    bmp_case("bmp/bitfields24_v40.bmp", 3, rng.integers(0, 256, size=(9, 13, 3)), 24, compression=3,
             masks=[0xFF0000, 0xFF00, 0xFF])
    # Colour tables: short (indices past it read as gray), gray ramp (Pillow's "L" path), 2-entry, pixel offset
    # pointing at the table, a gap before the pixels, OS/2 1.x core header with 3-byte entries.
    idx = rng.integers(0, 256, size=(9, 13))
    bmp_case("bmp/pal8_short_table.bmp", 3, idx, 8, palette=random_palette(20), colors_used=20)
    bmp_case("bmp/pal8_gray_ramp.bmp", 3, idx, 8, palette=[(i, i, i) for i in range(256)])
    bmp_case("bmp/pal4_short_table_topdown.bmp", 3, rng.integers(0, 16, size=(9, 13)), 4, palette=random_palette(5),
             colors_used=5, top_down=True)
    bmp_case("bmp/pal1_black_white.bmp", 3, rng.integers(0, 2, size=(9, 13)), 1, palette=[(0, 0, 0), (255, 255, 255)])
    bmp_case("bmp/pal8_offset_at_table.bmp", 3, idx, 8, palette=random_palette(256), offset_at_palette=True)
    bmp_case("bmp/pal8_gap_before_pixels.bmp", 3, idx, 8, palette=random_palette(256), gap=10)
    bmp_case("bmp/rgb24_gap_before_pixels.bmp", 3, rng.integers(0, 256, size=(9, 13, 3)), 24, gap=6)
    for bits in (1, 8):
        bmp_case(f"bmp/os2_pal{bits}.bmp", 3, rng.integers(0, 1 << bits, size=(9, 13)), bits, header=12,
                 palette=random_palette(1 << bits))
    bmp_case("bmp/os2_rgb24.bmp", 3, rng.integers(0, 256, size=(9, 13, 3)), 24, header=12)

    # Layouts Pillow rejects or reads without their alpha: the reference is the documented rule applied to the
    # values written (v * 255 // max per channel). ImageMagick reads the same files as a check on the layout; it
    # scales differently (4-bit: v * 16), so it must agree on each field's value, not on the 8-bit result.
    def exact_case(name, value_bits, masks, header, compression=3):
        h, w = 7, 11
        channels = 4 if len(masks) == 4 and masks[3] else 3
        widths = [bin(m).count("1") for m in masks[:channels]]
        fields = [rng.integers(0, 1 << n, size=(h, w)) for n in widths]
        words = np.zeros((h, w), np.uint64)
        for m, f in zip(masks, fields):
            words |= f.astype(np.uint64) << ((m & -m).bit_length() - 1)
        write_bmp(name, words, value_bits, header=header, compression=compression, masks=masks)
        exact = np.stack([f * 255 // ((1 << n) - 1) for n, f in zip(widths, fields)], -1).astype(np.uint8)
        im = magick_rgba(path(name), w, h)[:, :, :channels].astype(int)
        for c, (n, f) in enumerate(zip(widths, fields)):
            if n <= 8:
                assert np.array_equal(im[:, :, c] >> (8 - n), f), f"{name}: ImageMagick reads channel {c} differently"
            else:
                assert np.abs(im[:, :, c] - exact[:, :, c]).max() <= 1, f"{name}: ImageMagick reads channel {c} differently"
        add(name, "BMP", [exact], "exact", "bitfields Pillow rejects or reads without alpha: v*255//max of the written values")

    exact_case("bmp/bitfields16_argb4444_v124.bmp", 16, [0xF00, 0xF0, 0xF, 0xF000], 124)
    exact_case("bmp/bitfields16_argb1555_v124.bmp", 16, [0x7C00, 0x3E0, 0x1F, 0x8000], 124)
    exact_case("bmp/bitfields32_rgb101010_v124.bmp", 32, [0x3FF00000, 0xFFC00, 0x3FF, 0], 124)
    exact_case("bmp/bitfields16_rgb444_v40.bmp", 16, [0xF00, 0xF0, 0xF], 40)

    # Run-length encoded: runs, literal runs (odd lengths for RLE8), early ends of line, a move escape, no end markers.
    for rle4 in (False, True):
        colors = 16 if rle4 else 256
        for h, w in [(1, 1), (7, 3), (13, 257), (9, 40)]:
            runs = np.repeat(rng.integers(0, colors, size=(h, w)), rng.integers(1, 9, size=w), axis=1)[:, :w]
            noise = rng.integers(0, colors, size=(h, w))
            idx = np.where(rng.random((h, w)) < 0.3, noise, runs)
            for variant in ("", "short_rows", "move", "no_end", "odd_literals"):
                if (variant and w < 9) or (variant == "odd_literals" and not rle4):
                    continue
                name = f"bmp/rle{4 if rle4 else 8}_{w}x{h}{'_' + variant if variant else ''}.bmp"
                write_rle_bmp(name, idx, rle4, random_palette(colors), variant)
                if variant in ("move", "odd_literals"):
                    # Pillow 9.4 takes the two bytes after a move's dx, dy as the move, and reads an odd RLE4 literal
                    # run one pixel short: ImageMagick is the reference for these files.
                    add(name, "BMP", [magick_rgba(path(name), w, h)[:, :, :3].copy()], "imagemagick",
                        "RLE escapes Pillow 9.4 misreads (move; odd RLE4 literal runs)")
                else:
                    add(name, "BMP", [pillow_pixels(path(name), 3)], "pillow")

    # Written by ImageMagick: BMP3 24-bit, V5 32-bit with alpha bitfields, 16-bit 565.
    rgba = Image.fromarray(src[:13, :29], "RGBA")
    rgba.save(path("src/bmp_rgba.png"))
    rgba.convert("RGB").save(path("src/bmp_rgb.png"))
    for name, args, channels in [("bmp/magick_bmp3_rgb24.bmp", [path("src/bmp_rgb.png"), "BMP3:"], 3),
                                 ("bmp/magick_v5_rgba32.bmp", [path("src/bmp_rgba.png"), ""], 4),
                                 ("bmp/magick_rgb565.bmp", [path("src/bmp_rgb.png"), "-define", "bmp:subtype=RGB565", ""], 3)]:
        *inputs, prefix = args
        magick([*inputs, prefix + path(name)])
        add(name, "BMP", [pillow_pixels(path(name), channels)], "pillow")
    magick([path("src/bmp_rgb.png"), "-colors", "200", "-compress", "RLE", "BMP3:" + path("bmp/magick_rle8.bmp")])
    with open(path("bmp/magick_rle8.bmp"), "rb") as f:
        assert struct.unpack("<I", f.read(34)[30:34])[0] == 1, "ImageMagick did not write RLE8"
    add("bmp/magick_rle8.bmp", "BMP", [pillow_pixels(path("bmp/magick_rle8.bmp"), 3)], "pillow")


# ---------------------------------------------------------------------------------------------------------------
# PNM
# ---------------------------------------------------------------------------------------------------------------

def write_pnm(name, samples, maxval, plain=False, comments=False):
    """samples: [h, w] (gray) or [h, w, 3] (RGB) integers <= maxval."""
    h, w = samples.shape[:2]
    color = samples.ndim == 3
    magic = {(False, True): b"P2", (True, True): b"P3", (False, False): b"P5", (True, False): b"P6"}[(color, plain)]
    c = b"# a comment\n" if comments else b""
    head = magic + b"\n" + c + b"%d %d\n" % (w, h) + c + b"%d\n" % maxval
    if comments:
        head = magic + b" # comment right after the magic\n%d\t%d # size\n# whole-line comment\r\n%d\n" % (w, h, maxval)
    if plain:
        flat = samples.reshape(h, -1)
        body = b"".join(b" ".join(b"%d" % v for v in row) + (b" # row comment\n" if comments else b"\n") for row in flat)
    else:
        body = samples.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    with open(path(name), "wb") as f:
        f.write(head + body)


def make_pnm():
    for h, w in [(1, 1), (7, 3), (13, 257)]:
        for maxval in (1, 7, 15, 100, 255, 256, 1000, 4095, 65535):
            for color in (False, True):
                for plain in (False, True):
                    if plain and w == 257 and maxval not in (255, 1000):
                        continue  # plain text is slow to write and read; the small sizes cover it
                    shape = (h, w, 3) if color else (h, w)
                    s = rng.integers(0, maxval + 1, size=shape)
                    s.reshape(-1)[-1] = maxval  # the extremes: a sample at maxval
                    ext = "ppm" if color else "pgm"
                    name = f"pnm/{'plain' if plain else 'raw'}_max{maxval}_{w}x{h}.{ext}"
                    write_pnm(name, s, maxval, plain, comments=(h + maxval) % 2 == 0)
                    # Both references: round(v / maxval * 255), ties to even, in float64 (what Pillow computes).
                    exact = np.round(s.astype(np.float64) / maxval * 255).astype(np.uint8)
                    channels = 3 if color else 1
                    if not color and maxval > 255:
                        add(name, "PNM", [exact], "exact", "graymap with maxval > 255: scaled (Pillow clips to 255)")
                    else:
                        pillow = pillow_pixels(path(name), channels)
                        assert np.array_equal(pillow, exact.reshape(pillow.shape)), name
                        add(name, "PNM", [pillow], "pillow")
    # Written by Pillow: 8-bit P5/P6 and 16-bit P5.
    src = rng.integers(0, 256, size=(13, 29, 3), dtype=np.uint8)
    for mode, ext in (("L", "pgm"), ("RGB", "ppm")):
        Image.fromarray(src).convert(mode).save(path(f"pnm/pillow_{mode}.{ext}"))
        add(f"pnm/pillow_{mode}.{ext}", "PNM", [pillow_pixels(path(f"pnm/pillow_{mode}.{ext}"), 3 if mode == "RGB" else 1)],
            "pillow")
    g16 = rng.integers(0, 65536, size=(13, 29), dtype=np.uint16)
    Image.fromarray(g16.astype(np.int32), "I").save(path("pnm/pillow_I16.pgm"))  # written as P5, maxval 65535
    add("pnm/pillow_I16.pgm", "PNM", [np.round(g16 / 65535 * 255).astype(np.uint8)], "exact",
        "graymap with maxval > 255: scaled (Pillow clips to 255)")


# ---------------------------------------------------------------------------------------------------------------

def main():
    os.makedirs(OUT, exist_ok=True)
    make_png()
    make_gif()
    make_bmp()
    make_pnm()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"entries": entries}, f, indent=1)
    print(f"{len(entries)} corpus files in {OUT}")


if __name__ == "__main__":
    main()
