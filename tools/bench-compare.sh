#!/usr/bin/env bash
# Speed of LlavaNative vs llama.cpp on a random-weight Qwen2-0.5B-shape model (F16, Q8_0, Q4_0, Q4_K_M):
# llama-bench definitions (pp = one batch of P prompt tokens into an empty cache, tg = N single-token
# decodes from an empty cache, one warm-up, median of --reps), both engines with the same thread count.
# llama.cpp runs through the TestSupport P/Invoke binding with its default speed settings (weight repacking
# on, F16 KV cache, flash attention auto); ours runs `llava bench` from a Release build. Each measurement is
# a fresh process; the two engines alternate per type. Models are cached in
# ${LLAVANATIVE_BENCH_DIR:-~/.cache/llavanative/bench} (~1 GB F16 + ~1.2 GB quantized) and reused.
#
#   tools/bench-compare.sh [-p 128] [-n 64] [-t 2] [--reps 3] [--types F16,Q8_0,Q4_0,Q4_K_M]
#
# Keep the machine otherwise idle: with 2 threads on 2 cores any busy neighbour ruins a measurement.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${LLAVANATIVE_BENCH_DIR:-$HOME/.cache/llavanative/bench}"
"$root/tools/install-reference.sh" >/dev/null
dotnet build "$root/src/Cli/LlavaNative.Cli.csproj" -c Release -v q -nologo -clp:ErrorsOnly >&2
dotnet build "$root/benchmarks/LlavaNative.BenchCompare/LlavaNative.BenchCompare.csproj" -c Release -v q -nologo -clp:ErrorsOnly >&2
llava="$root/src/Cli/bin/Release/net10.0/llava.dll"
compare="$root/benchmarks/LlavaNative.BenchCompare/bin/Release/net10.0/LlavaNative.BenchCompare.dll"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec dotnet "$compare" compare --dir "$dir" --llava "$llava" "$@"
