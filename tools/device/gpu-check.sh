#!/usr/bin/env bash
# GPU checks on a device machine (README, "CUDA backend"). Two halves:
#
#   tools/device/gpu-check.sh publish   # here: self-contained, trimmed build of tools/device/GpuCheck into .device/gpucheck
#   tools/device/gpu-check.sh run       # there (no .NET needed): finds NVRTC, runs the checks and benchmarks, report in $OUT
#   tools/device/gpu-check.sh bench     # there: issue 7's LLaVA-7B benchmark, PyTorch (bench_torch.py) then ours, in $OUT
#
# The device machine receives the working tree plus the carried (git-ignored) .device folder, so a session calls
# the device tool's `run` with command "bash tools/device/gpu-check.sh run" and carry [".device"].
set -euo pipefail
cd "$(dirname "$0")/../.."

# NVRTC: the toolkit's, else the pip wheel PyTorch brought (nvidia/cu13/lib or nvidia/cuda_nvrtc/lib).
find_nvrtc() {
  if [ -z "${LLAVANATIVE_NVRTC:-}" ]; then
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             $(python3 -c 'import nvidia, os; [print(os.path.join(p, s, "lib")) for p in nvidia.__path__ for s in ("cu13", "cuda_nvrtc")]' 2>/dev/null); do
      if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then export LLAVANATIVE_NVRTC="$d"; break; fi
    done
  fi
  echo "LLAVANATIVE_NVRTC=${LLAVANATIVE_NVRTC:-<search>}"
  # libnvrtc loads libnvrtc-builtins from its own folder; make sure the loader can find it there.
  if [ -n "${LLAVANATIVE_NVRTC:-}" ] && [ -d "$LLAVANATIVE_NVRTC" ]; then export LD_LIBRARY_PATH="$LLAVANATIVE_NVRTC:${LD_LIBRARY_PATH:-}"; fi
  export LLAVANATIVE_CUDA_CACHE=/tmp/llavanative-cuda-cache
}

case "${1:-}" in
  publish)
    rm -rf .device/gpucheck
    dotnet publish tools/device/GpuCheck/GpuCheck.csproj -c Release -r linux-x64 --self-contained true \
      -p:PublishTrimmed=true -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
      -p:DebugType=none -o .device/gpucheck --nologo
    echo "published: $(du -sh .device/gpucheck | cut -f1) in .device/gpucheck (carry \".device\"; the limit is 64 MiB with the working tree)"
    ;;
  run)
    exe=.device/gpucheck/GpuCheck
    if [ ! -x "$exe" ]; then
      echo "missing $exe: run 'tools/device/gpu-check.sh publish' here first and carry .device" >&2
      exit 2
    fi
    out="${OUT:-/tmp/gpu-check-out}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/nvidia-smi.txt" || true
    find_nvrtc
    shift
    set +e
    "$exe" --out "$out" "$@" 2>&1 | tee "$out/gpu-check.log"
    status=${PIPESTATUS[0]}
    # Second start: modules come from the disk cache (shows NVRTC's share of the first start).
    "$exe" --no-bench --seeds 1 > "$out/second-start.log" 2>&1
    grep -E '^(modules|ALL|[0-9]+ CHECK)' "$out/second-start.log" | sed 's/^/second start: /'
    exit "$status"
    ;;
  bench)
    # Issue 7's benchmark (README "GPU benchmark"): PyTorch first in its own process (it builds and saves the random
    # LLaVA-1.5-7B folder, then times itself and exits, freeing the GPU), then ours on the same folder. ~6 minutes.
    exe=.device/gpucheck/GpuCheck
    if [ ! -x "$exe" ]; then
      echo "missing $exe: run 'tools/device/gpu-check.sh publish' here first and carry .device" >&2
      exit 2
    fi
    out="${OUT:-/tmp/gpu-bench-out}"
    mkdir -p "$out"
    model=/tmp/llava7b
    reference=/tmp/llava7b-reference
    stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/nvidia-smi.txt" || true
    find_nvrtc
    shift
    set +e
    set -o pipefail
    stamp "torch: build, save and time (bench_torch.py)"
    PYTHONUNBUFFERED=1 timeout 260 python3 tools/device/bench_torch.py --model-dir "$model" --reference-dir "$reference" \
      --json "$out/torch.json" 2>&1 | tee "$out/torch.log"
    torch_status=$?
    stamp "torch exit $torch_status; folder: $(du -sh "$model" 2>/dev/null | cut -f1)"
    if [ ! -f "$model/config.json" ]; then
      stamp "no $model/config.json: torch did not write the folder; nothing for ours to load"
      exit 1
    fi
    stamp "ours: GpuCheck --bench-llava"
    torch_json=()
    [ -f "$out/torch.json" ] && torch_json=(--torch-json "$out/torch.json")
    timeout 300 "$exe" --bench-llava "$model" "${torch_json[@]}" --reference "$reference" --out "$out" "$@" 2>&1 | tee "$out/ours.log"
    status=$?
    stamp "ours exit $status"
    [ "$torch_status" -ne 0 ] && [ "$status" -eq 0 ] && status=1
    exit "$status"
    ;;
  *)
    echo "usage: tools/device/gpu-check.sh publish|run|bench [GpuCheck arguments]" >&2
    exit 2
    ;;
esac
