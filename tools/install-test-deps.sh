#!/usr/bin/env bash
# Debian packages the image and vision tests use as independent references:
#   python3-pil (Pillow: PNG/GIF/BMP decoding, BICUBIC resizing as HF processors do it), python3-numpy,
#   python3-torch (CPU PyTorch: a reference forward pass for the vision towers), libjpeg-turbo-progs
#   (djpeg/cjpeg: JPEG reference decoder and corpus writer), imagemagick (corpus writer),
#   python3-jinja2 (Python's Jinja2, which transformers renders chat templates with),
#   python3-sentencepiece (trains and encodes the SentencePiece tokenizer.model files the tokenizer tests read).
# Idempotent: installs only what is missing. Needs root (CI and the dev machines run as root).
set -euo pipefail
need=()
for pkg in python3-pil python3-numpy python3-torch libjpeg-turbo-progs imagemagick python3-jinja2 python3-sentencepiece; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then echo "test dependencies already installed"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "install-test-deps: need root to apt-get install ${need[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
