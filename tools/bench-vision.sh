#!/usr/bin/env bash
# Vision tower speed of LlavaNative vs PyTorch CPU on random-weight mmproj GGUFs with real LLaVA shapes:
# CLIP ViT-L/14-336 as LLaVA-1.5 uses it (feature layer -2: 23 of 24 blocks, 577 tokens, mlp2x_gelu projector to
# 4096) and SigLIP-so400m/14-384 as llava-onevision-qwen2-0.5b does (26 blocks, 729 tokens, projector to 896), each
# with F32 and F16 weights. Ours: ImageEncoder.LoadGguf + EncodeAndProject of one preprocessed image. torch: the
# tests' HF-semantics reference forward (tests/LlavaNative.Reference.Tests/Vision/torch_reference.py) in float32 on
# the same weights (F16: float32 compute on the F16-rounded weights), torch.no_grad(), torch.set_num_threads(T).
# Both: one warm-up, median of --reps, T threads, a fresh process per measurement. Agreement (max abs, cosine) of
# the two outputs is checked on the warm-up run so both sides are known to compute the same thing.
#
# Debian's python3-torch is built with BLAS_INFO=generic (the reference BLAS, single-threaded and slow), so torch is
# measured twice by default: "openblas" (libopenblas0-pthread, extracted -- not installed -- into the cache folder
# and put first on LD_LIBRARY_PATH, OPENBLAS_NUM_THREADS=T) and "generic" (as Debian ships it). The generic run takes
# minutes per image at these shapes; leave it out with --torch-blas openblas.
#
# Models are cached in ${LLAVANATIVE_BENCH_DIR:-~/.cache/llavanative/bench} (~4 GB GGUF + ~6 GB .npy) and reused
# while the spec is unchanged.
#
#   tools/bench-vision.sh [-t 2] [--reps 3] [--rounds N] [--shapes clip-vit-l-336,siglip-so400m-384] [--types F32,F16]
#                         [--torch-blas openblas,generic]
#
# --rounds N alternates ours and torch N times per shape (a fresh process each), and the ratio is the median of the
# per-round ratios: this host's speed drifts by 15-50 % within minutes, and alternation puts each drift on both sides.
#
# Keep the machine otherwise idle: with 2 threads on 2 cores any busy neighbour ruins a measurement.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${LLAVANATIVE_BENCH_DIR:-$HOME/.cache/llavanative/bench}"
openblas="$dir/openblas"
libdir="$openblas/root/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [ ! -e "$libdir/libblas.so.3" ]; then
  mkdir -p "$openblas"
  (cd "$openblas" && rm -f libopenblas0-pthread_*.deb && apt-get download libopenblas0-pthread >&2 && dpkg -x libopenblas0-pthread_*.deb root)
fi
blas="openblas=$libdir,generic"
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--torch-blas" ]; then
    blas="$(echo "$2" | sed "s#openblas\(,\|$\)#openblas=$libdir\1#")"; shift 2
  else
    args+=("$1"); shift
  fi
done
dotnet build "$root/benchmarks/LlavaNative.BenchCompare/LlavaNative.BenchCompare.csproj" -c Release -v q -nologo -clp:ErrorsOnly >&2
compare="$root/benchmarks/LlavaNative.BenchCompare/bin/Release/net10.0/LlavaNative.BenchCompare.dll"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec dotnet "$compare" vision --dir "$dir" --python /usr/bin/python3 \
  --script "$root/benchmarks/LlavaNative.BenchCompare/torch_vision_bench.py" --torch-blas "$blas" ${args[@]+"${args[@]}"}
