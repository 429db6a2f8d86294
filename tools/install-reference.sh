#!/usr/bin/env bash
# Installs the independent references the test suite compares against:
#   - llama.cpp prebuilt for CPU (npm package @node-llama-cpp/linux-x64@3.22.1): libllama + libggml*
#   - the llama.cpp sources of exactly that binary (git bundle inside node-llama-cpp), for llama.h
#     and the real tokenizer vocabularies in models/ggml-vocab-*.gguf
#   - Hugging Face tokenizers for tokenizer.json: `tokenizers` (npm 0.23.2: the Rust library that Python's
#     `tokenizers` runs, native binaries for every platform inside the package, no platform sub-package)
#     and `@huggingface/tokenizers` (0.2.0, the pure JavaScript implementation)
#   - @huggingface/jinja@0.5.11 (npm): the Jinja that Hugging Face renders chat templates with in JavaScript
# into ${LLAVANATIVE_REFERENCE_DIR:-$HOME/.cache/llavanative/reference}. Idempotent; safe to re-run: each part
# is skipped once its stamp file exists.
set -euo pipefail
ref="${LLAVANATIVE_REFERENCE_DIR:-$HOME/.cache/llavanative/reference}"
version=3.22.1
hf_tokenizers_version=0.23.2
hf_tokenizers_js_version=0.2.0
jinja_version=0.5.11
command -v npm >/dev/null || { echo "install-reference: npm is required (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$ref"
cd "$ref"
[ -f package.json ] || echo '{"name":"llavanative-reference","private":true}' > package.json
npm_install() { npm install --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error "$@"; }

stamp="$ref/.installed-$version"
if [ -f "$stamp" ]; then
  echo "llama.cpp reference already installed in $ref"
else
  npm_install "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version"
  rm -rf lib llama.cpp
  ln -s "$ref/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64" lib
  git clone -q "$ref/node_modules/node-llama-cpp/llama/gitRelease.bundle" llama.cpp 2>/dev/null
  test -f lib/libllama.v0.5.0.so
  test -f llama.cpp/include/llama.h
  test -f llama.cpp/models/ggml-vocab-llama-spm.gguf
  touch "$stamp"
  echo "llama.cpp reference installed in $ref"
fi

hf_stamp="$ref/.installed-hf-tokenizers-$hf_tokenizers_version-$hf_tokenizers_js_version"
if [ -f "$hf_stamp" ]; then
  echo "Hugging Face tokenizers reference already installed in $ref"
else
  npm_install "tokenizers@$hf_tokenizers_version" "@huggingface/tokenizers@$hf_tokenizers_js_version"
  # the binding picks tokenizers.<platform>.node from the package itself; check it loads here
  node -e "require('$ref/node_modules/tokenizers').Tokenizer" >/dev/null
  node -e "require('$ref/node_modules/@huggingface/tokenizers').Tokenizer" >/dev/null
  touch "$hf_stamp"
  echo "Hugging Face tokenizers reference installed in $ref"
fi

jinja_stamp="$ref/.installed-hf-jinja-$jinja_version"
if [ -f "$jinja_stamp" ]; then
  echo "Hugging Face jinja reference already installed in $ref"
else
  npm_install "@huggingface/jinja@$jinja_version"
  test -f "$ref/node_modules/@huggingface/jinja/package.json"
  touch "$jinja_stamp"
  echo "Hugging Face jinja reference installed in $ref"
fi
