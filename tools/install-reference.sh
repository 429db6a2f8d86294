#!/usr/bin/env bash
# Installs the independent references the test suite compares against:
#   - llama.cpp prebuilt for CPU (npm package @node-llama-cpp/linux-x64@3.22.1): libllama + libggml*
#   - the llama.cpp sources of exactly that binary (git bundle inside node-llama-cpp), for llama.h
#     and the real tokenizer vocabularies in models/ggml-vocab-*.gguf
#   - @huggingface/jinja@0.5.11 (npm): the Jinja that Hugging Face renders chat templates with in JavaScript
# into ${LLAVANATIVE_REFERENCE_DIR:-$HOME/.cache/llavanative/reference}. Idempotent; safe to re-run.
set -euo pipefail
ref="${LLAVANATIVE_REFERENCE_DIR:-$HOME/.cache/llavanative/reference}"
version=3.22.1
stamp="$ref/.installed-$version"
if [ -f "$stamp" ] && [ -f "$ref/node_modules/@huggingface/jinja/package.json" ]; then echo "reference already installed in $ref"; exit 0; fi
command -v npm >/dev/null || { echo "install-reference: npm is required (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$ref"
cd "$ref"
[ -f package.json ] || echo '{"name":"llavanative-reference","private":true}' > package.json
npm install --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error \
  "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version" "@huggingface/jinja@0.5.11"
rm -rf lib llama.cpp
ln -s "$ref/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64" lib
git clone -q "$ref/node_modules/node-llama-cpp/llama/gitRelease.bundle" llama.cpp 2>/dev/null
test -f lib/libllama.v0.5.0.so
test -f llama.cpp/include/llama.h
test -f llama.cpp/models/ggml-vocab-llama-spm.gguf
touch "$stamp"
echo "reference installed in $ref"
