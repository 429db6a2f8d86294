#!/usr/bin/env bash
# The GGUF copy of the shipped tiny-llava, made by our own converter from the llava-hf folder:
# models/tiny-llava/gguf/tiny-llava-f32.gguf (text model) + tiny-llava-mmproj-f32.gguf (vision tower + projector).
# F32, so the engine's GGUF path can be compared with the PyTorch reference at float precision.
# Run from the repository root after a new export of models/tiny-llava/hf.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p models/tiny-llava/gguf
dotnet run --project src/Cli -c Release -- convert -m models/tiny-llava/hf -o models/tiny-llava/gguf/tiny-llava-f32.gguf --type f32 --mmproj-out models/tiny-llava/gguf/tiny-llava-mmproj-f32.gguf
