#!/usr/bin/python3
"""Builds the JPEG test corpus and its independent reference decodings.

Usage: /usr/bin/python3 make_jpeg_corpus.py OUT_DIR [--large]

Writes JPEG files made by libjpeg-turbo's cjpeg, ImageMagick's convert and Pillow from deterministic synthetic
images, and for each one the pixels an independent decoder produces:
  * djpeg -pnm (libjpeg-turbo defaults: accurate integer IDCT, fancy upsampling) for gray/YCbCr/RGB files;
  * Pillow (libjpeg underneath) for CMYK/YCCK files, converted to RGB with Pillow's own naive rule, and for EXIF
    files, turned upright with ImageOps.exif_transpose (what LlavaNative does; Pillow alone ignores the tag).
OUT_DIR/manifest.tsv lists: name, group, jpeg file, reference file (PPM/PGM, or '-' when the file must be
rejected), expected EXIF orientation, how it was made.
With --large only the speed case is written: a 4000x3000 4:2:0 baseline JPEG and its djpeg decoding.
"""
import os
import shutil
import subprocess
import sys

INSTALL_HINT = "run tools/install-test-deps.sh (as root) to install libjpeg-turbo-progs, imagemagick, python3-pil, python3-numpy"

for tool in ("/usr/bin/cjpeg", "/usr/bin/djpeg", "/usr/bin/convert"):
    if not os.access(tool, os.X_OK):
        sys.exit(f"make_jpeg_corpus: {tool} is missing; {INSTALL_HINT}")
try:
    import numpy as np
    from PIL import Image, ImageOps
except ImportError as e:
    sys.exit(f"make_jpeg_corpus: {e}; {INSTALL_HINT}")


def synthetic(width, height, seed):
    """RGB test picture: smooth gradients (chroma upsampling), sharp edges and fine stripes (high frequencies),
    saturated patches (clamping in colour conversion) and a little noise, deterministic for a seed.
    Computed with broadcasting in float32 so the 4000x3000 speed case takes a fraction of a second."""
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    w, h = max(width - 1, 1), max(height - 1, 1)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 255 * x / w
    img[..., 1] = 255 * y / h
    img[..., 2] = 127.5 + 127.5 * np.sin(x / 3.0 + y / 5.0)
    # A hard-edged disc, a checkerboard square and a stripe patch.
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.25 * min(w, h) + 1) ** 2
    img[disc] = [250, 20, 30]
    checker = ((x // 2 + y // 2) % 2 == 0) & (x < 0.3 * w) & (y > 0.5 * h)
    img[checker] = [10, 240, 60]
    stripes = (x > 0.75 * w) & (y < 0.35 * h)
    img[stripes & (x % 3 == 0)] = [255, 255, 255]
    img[stripes & (x % 3 != 0)] = [0, 0, 160]
    img += rng.integers(-8, 9, img.shape, dtype=np.int8)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save_pnm(path, pixels):
    """PPM (P6) for H×W×3, PGM (P5) for H×W."""
    magic = b"P6" if pixels.ndim == 3 else b"P5"
    with open(path, "wb") as f:
        f.write(magic + b"\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]))
        f.write(np.ascontiguousarray(pixels).tobytes())


def run(args, stdout=None):
    done = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE)
    if done.returncode != 0:
        sys.exit("make_jpeg_corpus: %s failed (%d): %s" % (" ".join(args), done.returncode, done.stderr.decode(errors="replace").strip()))


class Corpus:
    def __init__(self, out):
        self.out = out
        self.rows = []
        self.sources = {}

    def source(self, width, height, gray=False, seed=1):
        key = (width, height, gray, seed)
        if key not in self.sources:
            pixels = synthetic(width, height, seed)
            if gray:
                pixels = np.asarray(Image.fromarray(pixels).convert("L"))
            path = os.path.join(self.out, "src_%dx%d_%s_%d.%s" % (width, height, "g" if gray else "c", seed, "pgm" if gray else "ppm"))
            save_pnm(path, pixels)
            self.sources[key] = path
        return self.sources[key]

    def add(self, name, group, jpeg, reference, orientation, how):
        self.rows.append((name, group, os.path.basename(jpeg), os.path.basename(reference) if reference else "-", str(orientation), how))

    def djpeg_reference(self, name, jpeg):
        ref = os.path.join(self.out, name + ".ref.pnm")
        with open(ref, "wb") as f:
            run(["/usr/bin/djpeg", "-pnm", jpeg], stdout=f)
        return ref

    def cjpeg(self, name, group, args, width=257, height=129, gray=False, seed=1, post=None):
        src = self.source(width, height, gray, seed)
        jpeg = os.path.join(self.out, name + ".jpg")
        with open(jpeg, "wb") as f:
            run(["/usr/bin/cjpeg"] + args + [src], stdout=f)
        how = "cjpeg " + " ".join(args)
        if post:
            post(jpeg)
            how += " + " + post.__name__
        self.add(name, group, jpeg, self.djpeg_reference(name, jpeg), 1, how)

    def convert(self, name, group, args, width=257, height=129, reference="djpeg"):
        src = self.source(width, height)
        jpeg = os.path.join(self.out, name + ".jpg")
        run(["/usr/bin/convert", src] + args + [jpeg])
        ref = self.djpeg_reference(name, jpeg) if reference == "djpeg" else self.pillow_reference(name, jpeg)
        self.add(name, group, jpeg, ref, 1, "convert " + " ".join(args))

    def pillow_reference(self, name, jpeg, exif_transpose=False):
        im = Image.open(jpeg)
        if exif_transpose:
            im = ImageOps.exif_transpose(im)
        ref = os.path.join(self.out, name + ".ref.pnm")
        save_pnm(ref, np.asarray(im.convert("RGB")))
        return ref

    def write_manifest(self):
        with open(os.path.join(self.out, "manifest.tsv"), "w") as f:
            for row in self.rows:
                f.write("\t".join(row) + "\n")


def merge_table_segments(path):
    """Rewrites the header so all DQT tables share one segment and all DHT tables another (T.81 allows several
    tables per segment; cjpeg writes one per segment)."""
    data = open(path, "rb").read()
    pos, head, dqt, dht = 2, [], b"", b""
    while True:
        marker = data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        body = data[pos + 4:pos + 2 + length]
        if marker == 0xDB:
            dqt += body
        elif marker == 0xC4:
            dht += body
        elif marker == 0xDA:
            break
        else:
            head.append(data[pos:pos + 2 + length])
        pos += 2 + length
    seg = lambda m, b: bytes([0xFF, m]) + (len(b) + 2).to_bytes(2, "big") + b
    out = data[:2] + b"".join(head[:1]) + seg(0xDB, dqt) + b"".join(head[1:]) + seg(0xC4, dht) + data[pos:]
    open(path, "wb").write(out)


def little_endian_exif(orientation):
    """Exif APP1 payload with an Intel (II) byte-order TIFF header and one IFD0 entry: Orientation (SHORT)."""
    tiff = b"II*\x00" + (8).to_bytes(4, "little")
    tiff += (1).to_bytes(2, "little")
    tiff += (0x0112).to_bytes(2, "little") + (3).to_bytes(2, "little") + (1).to_bytes(4, "little")
    tiff += orientation.to_bytes(2, "little") + b"\x00\x00"
    tiff += (0).to_bytes(4, "little")  # no next IFD
    return b"Exif\x00\x00" + tiff


def build(out, large):
    c = Corpus(out)
    if large:
        c.cjpeg("large_4000x3000_420", "large", ["-quality", "90", "-sample", "2x2,1x1,1x1"], 4000, 3000, seed=7)
        c.write_manifest()
        return

    sampling = {"444": "1x1,1x1,1x1", "422": "2x1,1x1,1x1", "420": "2x2,1x1,1x1", "440": "1x2,1x1,1x1"}

    # Baseline and progressive x chroma subsampling, plus gray.
    for mode, arg in sampling.items():
        c.cjpeg(f"baseline_{mode}", "sampling", ["-quality", "90", "-sample", arg])
        c.cjpeg(f"progressive_{mode}", "sampling", ["-quality", "90", "-sample", arg, "-progressive"])
    c.cjpeg("baseline_gray", "sampling", ["-quality", "90", "-grayscale"])
    c.cjpeg("progressive_gray", "sampling", ["-quality", "90", "-grayscale", "-progressive"])
    c.cjpeg("gray_source", "sampling", ["-quality", "85"], gray=True)

    # Odd sampling factors: replicated (4:1:1, 4:1:0, 3:1), mixed fancy directions, chroma finer than luma.
    odd = {"411": "4x1,1x1,1x1", "410": "4x2,1x1,1x1", "h3v1": "3x1,1x1,1x1", "h3v2": "3x2,1x1,1x1",
           "mixed_cb21_cr12": "2x2,2x1,1x2", "chroma_finer": "1x1,2x2,1x1", "y12_cb21": "1x2,2x1,1x1", "y41_cb21": "4x1,2x1,1x1"}
    for mode, arg in odd.items():
        c.cjpeg(f"odd_sampling_{mode}", "odd-sampling", ["-quality", "90", "-sample", arg])
        c.cjpeg(f"odd_sampling_{mode}_progressive", "odd-sampling", ["-quality", "90", "-sample", arg, "-progressive"])

    # Restart intervals, in MCUs and in MCU rows, sequential and progressive.
    for interval in ("1B", "7B", "1", "3"):
        tag = interval.lower()
        c.cjpeg(f"restart_{tag}_420", "restart", ["-quality", "85", "-sample", "2x2,1x1,1x1", "-restart", interval])
        c.cjpeg(f"restart_{tag}_progressive", "restart", ["-quality", "85", "-sample", "2x1,1x1,1x1", "-restart", interval, "-progressive"])
    c.cjpeg("restart_2b_gray", "restart", ["-quality", "85", "-grayscale", "-restart", "2B"])

    # Quality sweep (q=1 needs 16-bit quantization tables: SOF1), optimized Huffman tables.
    for q in (1, 10, 25, 50, 75, 90, 95, 100):
        c.cjpeg(f"quality_{q}_420", "quality", ["-quality", str(q), "-sample", "2x2,1x1,1x1"])
    c.cjpeg("quality_100_444_progressive", "quality", ["-quality", "100", "-sample", "1x1,1x1,1x1", "-progressive"])
    c.cjpeg("optimized_420", "quality", ["-quality", "80", "-optimize", "-sample", "2x2,1x1,1x1"])
    c.cjpeg("optimized_gray", "quality", ["-quality", "80", "-optimize", "-grayscale"])

    # Sizes that are not multiples of the MCU, including images narrower than one chroma sample pair.
    for (w, h) in ((1, 1), (2, 2), (3, 5), (5, 3), (7, 13), (16, 16), (17, 9), (1023, 17), (33, 250)):
        for mode in ("420", "422", "440", "444"):
            c.cjpeg(f"size_{w}x{h}_{mode}", "sizes", ["-quality", "90", "-sample", sampling[mode]], w, h, seed=w * 1000 + h)
        c.cjpeg(f"size_{w}x{h}_progressive", "sizes", ["-quality", "90", "-sample", sampling["420"], "-progressive"], w, h, seed=w * 1000 + h)
        c.cjpeg(f"size_{w}x{h}_gray", "sizes", ["-quality", "90", "-grayscale"], w, h, seed=w * 1000 + h)

    # Table layout: all tables in one DQT and one DHT segment; three quantization tables (one per component).
    c.cjpeg("merged_table_segments", "tables", ["-quality", "90", "-sample", "2x2,1x1,1x1"], post=merge_table_segments)
    c.cjpeg("merged_table_segments_progressive", "tables", ["-quality", "90", "-progressive"], post=merge_table_segments)
    qtables = os.path.join(out, "three.qtables")
    with open(qtables, "w") as f:
        for base in (3, 11, 17):
            f.write(" ".join(str(base + (i % 8) + 2 * (i // 8)) for i in range(64)) + "\n")
    c.cjpeg("three_quant_tables", "tables", ["-qtables", qtables, "-qslots", "0,1,2", "-sample", "2x2,1x1,1x1"])

    # Scan scripts: progressive with deep successive approximation on DC and AC, pure spectral selection,
    # and a sequential file with one scan per component (non-interleaved baseline).
    scripts = {
        "deep_successive_approximation": "0,1,2: 0 0 0 3; 0: 1 5 0 3; 2: 1 63 0 2; 1: 1 63 0 2; 0: 6 63 0 3;"
                                         " 0,1,2: 0 0 3 2; 0,1,2: 0 0 2 1; 0: 1 63 3 2; 0: 1 63 2 1; 1: 1 63 2 1;"
                                         " 2: 1 63 2 1; 0,1,2: 0 0 1 0; 0: 1 63 1 0; 1: 1 63 1 0; 2: 1 63 1 0;",
        "spectral_selection_only": "0: 0 0 0 0; 1: 0 0 0 0; 2: 0 0 0 0; 0: 1 2 0 0; 0: 3 9 0 0; 0: 10 63 0 0;"
                                   " 1: 1 63 0 0; 2: 1 20 0 0; 2: 21 63 0 0;",
    }
    for name, script in scripts.items():
        path = os.path.join(out, name + ".scans")
        with open(path, "w") as f:
            f.write(script.replace("; ", ";\n"))
        c.cjpeg(f"scans_{name}", "scans", ["-quality", "92", "-sample", "2x2,1x1,1x1", "-progressive", "-scans", path])
        c.cjpeg(f"scans_{name}_restart", "scans", ["-quality", "92", "-sample", "2x1,1x1,1x1", "-progressive", "-scans", path, "-restart", "5B"])
    seq = os.path.join(out, "sequential_per_component.scans")
    with open(seq, "w") as f:
        f.write("0: 0 63 0 0;\n1: 0 63 0 0;\n2: 0 63 0 0;\n")
    c.cjpeg("scans_sequential_per_component", "scans", ["-quality", "90", "-sample", "2x2,1x1,1x1", "-scans", seq])
    c.cjpeg("scans_sequential_per_component_restart", "scans", ["-quality", "90", "-sample", "2x1,1x1,1x1", "-scans", seq, "-restart", "3B"])

    # RGB stored without colour transform (Adobe APP14 transform 0, component ids 'R','G','B').
    c.cjpeg("adobe_rgb", "colour", ["-quality", "90", "-rgb"])
    c.cjpeg("adobe_rgb_progressive", "colour", ["-quality", "90", "-rgb", "-progressive"])

    # Other encoders: ImageMagick and Pillow.
    c.convert("imagemagick_q85", "encoders", ["-quality", "85"])
    c.convert("imagemagick_422_progressive", "encoders", ["-quality", "80", "-sampling-factor", "2x1", "-interlace", "Plane"])
    src = np.asarray(Image.open(c.source(257, 129)))
    for name, kwargs in {"pillow_q75": {"quality": 75}, "pillow_444_optimized": {"quality": 90, "subsampling": 0, "optimize": True},
                         "pillow_progressive": {"quality": 70, "progressive": True}}.items():
        jpeg = os.path.join(out, name + ".jpg")
        Image.fromarray(src).save(jpeg, **kwargs)
        c.add(name, "encoders", jpeg, c.djpeg_reference(name, jpeg), 1, f"Pillow save {kwargs}")

    # CMYK: ImageMagick writes YCCK (Adobe transform 2), Pillow writes CMYK (transform 0); reference is Pillow's RGB.
    c.convert("cmyk_imagemagick_ycck", "cmyk", ["-colorspace", "CMYK", "-quality", "90"], reference="pillow")
    c.convert("cmyk_imagemagick_ycck_progressive", "cmyk", ["-colorspace", "CMYK", "-quality", "90", "-interlace", "Plane"], reference="pillow")
    for name, kwargs in {"cmyk_pillow": {"quality": 90}, "cmyk_pillow_progressive": {"quality": 85, "progressive": True}}.items():
        jpeg = os.path.join(out, name + ".jpg")
        Image.fromarray(src).convert("CMYK").save(jpeg, **kwargs)
        c.add(name, "cmyk", jpeg, c.pillow_reference(name, jpeg), 1, f"Pillow CMYK save {kwargs}")

    # EXIF orientation 1..8: Motorola (Pillow's own writer) and Intel byte order; odd size so a transpose shows.
    exif_src = synthetic(61, 37, 5)
    for orientation in range(1, 9):
        for order in ("MM", "II"):
            name = f"exif_orientation_{orientation}_{order}"
            jpeg = os.path.join(out, name + ".jpg")
            if order == "MM":
                exif = Image.Exif()
                exif[0x0112] = orientation
                payload = exif.tobytes()
            else:
                payload = little_endian_exif(orientation)
            Image.fromarray(exif_src).save(jpeg, quality=90, exif=payload)
            c.add(name, "exif", jpeg, c.pillow_reference(name, jpeg, exif_transpose=True), orientation, f"Pillow save exif={order} Orientation={orientation}")

    # Variants the decoder must reject with a clear error (no reference decoding).
    jpeg = os.path.join(out, "unsupported_arithmetic.jpg")
    with open(jpeg, "wb") as f:
        run(["/usr/bin/cjpeg", "-arithmetic", c.source(257, 129)], stdout=f)
    c.add("unsupported_arithmetic", "reject", jpeg, None, 1, "cjpeg -arithmetic")

    c.write_manifest()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    build(sys.argv[1], "--large" in sys.argv[2:])
