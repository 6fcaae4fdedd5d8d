#!/usr/bin/env bash
# The GPU check of daad, in two halves (docs/PERFORMANCE.md, "GPU check"):
#
#   bash scripts/gpu-check.sh build [--cpu]   on a development machine (Rust, network, no GPU)
#   bash scripts/gpu-check.sh run   [--cpu]   on the GPU machine (no Rust, no network), $OUT set
#
# `build` cross-builds, with CUDA 13.0 from PyPI (../shared/docs/CUDA.md), four release binaries
# into .cudabin/ (git-ignored), xz-compressed:
#   memory-tests  daad-memory's agreement tests (each test runs on the CPU and on GPU 0)
#   memory-bench  the memory-op criterion bench (fused CPU vs reference; CUDA vs reference)
#   step          crates/daad-train/examples/step_vs_torch.rs (one DAAD step, --device cuda)
#   daad          the CLI (synth, train, test)
# `run` unpacks them and writes everything under $OUT: the CUDA tests, the memory-op bench, a
# 256 px training step (CUDA, and the CPU beside it), and a short training of one synthetic
# category; summary.txt lists each part with its exit status. It needs only bash, xz and the
# CUDA 13 libraries of the machine's Python venv (found by libcublas.so.13).
#
# --cpu: the dry run of everything that is not CUDA: `build --cpu` builds the same binaries
# without feature `cuda` (no CUDA download), `run --cpu` runs them on the CPU (the GPU tests do
# not exist in that build, so only the CPU tests run; 64 px, the smallest memory-op scale only,
# one epoch). DAAD_GPU_CHECK_PROFILE picks the cargo profile (default release; `dev`, the
# workspace's optimised test profile, reuses what `cargo test` built).
set -uo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
cpu=0
[ "${2:-}" = "--cpu" ] && cpu=1
BIN=.cudabin
PROFILE="${DAAD_GPU_CHECK_PROFILE:-release}"

# Path of the executable cargo reports for target `$2` (kind `$1`) in its JSON messages on stdin.
exe_of() {
  python3 -c '
import json, sys
kind, name = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") == name and kind in t.get("kind", []):
        print(m["executable"])
' "$1" "$2" | tail -1
}

build() {
  set -e
  # One package set and one feature set for all three cargo invocations: feature unification
  # then resolves candle the same way each time, so candle-kernels (most of a cold CUDA build)
  # is compiled once, not once per invocation.
  local pkgs=(-p daad-memory -p daad-train -p daad-cli) feats=()
  if [ "$cpu" = 0 ]; then
    # The environment script writes the driver stub from cudarc's sources: fetch them first.
    cargo fetch
    local env_script=../shared/tools/cuda-build-env.sh
    [ -f "$env_script" ] || env_script=/work/shared/tools/cuda-build-env.sh
    # It is written for an interactive shell (globs that may not match, pipelines that may
    # fail): source it without -e / pipefail, then check that it gave us nvcc.
    set +e +o pipefail
    # shellcheck disable=SC1090
    source "$env_script"
    set -e -o pipefail
    command -v nvcc >/dev/null || { echo "gpu-check: $env_script did not put nvcc on PATH" >&2; exit 1; }
    feats=(--features "daad-memory/cuda daad/cuda")
  fi
  mkdir -p "$BIN"
  rm -f "$BIN"/*
  local json
  json=$(mktemp)
  cargo test --profile "$PROFILE" "${pkgs[@]}" "${feats[@]}" --test agreement --no-run --message-format=json >"$json"
  cp "$(exe_of test agreement <"$json")" "$BIN/memory-tests"
  cargo bench --profile "$PROFILE" "${pkgs[@]}" "${feats[@]}" --bench memory --no-run --message-format=json >"$json"
  cp "$(exe_of bench memory <"$json")" "$BIN/memory-bench"
  cargo build --profile "$PROFILE" "${pkgs[@]}" "${feats[@]}" --example step_vs_torch --bin daad --message-format=json >"$json"
  cp "$(exe_of example step_vs_torch <"$json")" "$BIN/step"
  cp "$(exe_of bin daad <"$json")" "$BIN/daad"
  rm -f "$json"
  git rev-parse --short HEAD >"$BIN/commit"
  echo "$cpu" >"$BIN/cpu-only"
  # Debug info (line tables) doubles the compressed size; the symbols stay for backtraces. The
  # device tool carries at most 64 MiB.
  if command -v strip >/dev/null; then
    strip --strip-debug "$BIN"/memory-tests "$BIN"/memory-bench "$BIN"/step "$BIN"/daad
  fi
  xz -T2 -6 -f "$BIN"/memory-tests "$BIN"/memory-bench "$BIN"/step "$BIN"/daad
  ls -la "$BIN"
  du -sh "$BIN"
}

# Runs one part: `part NAME CMD...` with its output in $OUT/NAME.log and its status in summary.txt.
part() {
  local name="$1"
  shift
  local t0=$SECONDS
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  tail -5 "$OUT/$name.log"
  return 0
}

run() {
  : "${OUT:?set OUT to the folder for the results}"
  mkdir -p "$OUT"
  local work
  work=$(mktemp -d)
  for f in memory-tests memory-bench step daad; do
    xz -dc "$BIN/$f.xz" >"$work/$f" && chmod +x "$work/$f"
  done
  {
    echo "commit $(cat "$BIN/commit" 2>/dev/null) built cpu-only=$(cat "$BIN/cpu-only" 2>/dev/null)"
    date -u
    uname -a
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
    grep -m1 "model name" /proc/cpuinfo
  } | tee "$OUT/summary.txt"
  if [ "$cpu" = 0 ]; then
    local lib
    lib=$(find / -name 'libcublas.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)
    if [ -z "$lib" ]; then
      echo "no libcublas.so.13 on this machine: cannot run the CUDA binaries" | tee -a "$OUT/summary.txt"
      return 1
    fi
    # cuBLAS, cuBLASLt, cudart, curand, nvrtc: each pip package has its own lib folder.
    local dirs
    dirs=$(find "$(dirname "$(dirname "$(dirname "$lib")")")" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
    export LD_LIBRARY_PATH="${dirs}${LD_LIBRARY_PATH:-}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$OUT/summary.txt"
  fi
  local dev=cuda size=256 epochs=3 filter=""
  [ "$cpu" = 1 ] && dev=cpu && size=64 && epochs=1 && filter=C512_16px
  # 1. the agreement suite on every device of the build (cpu_* always, cuda_* with feature cuda)
  part memory-tests "$work/memory-tests" --test-threads 1
  # 2. the memory op: fused CPU vs reference and, on a GPU, CUDA vs reference
  export CRITERION_HOME="$OUT/criterion"
  part memory-bench "$work/memory-bench" --bench $filter
  # 3. one DAAD training step at 256 px (batch 8) on the GPU, and the CPU beside it
  part "step-$dev" "$work/step" --sizes "$size" --steps 5 --device "$dev"
  if [ "$cpu" = 0 ]; then part step-cpu "$work/step" --sizes 256 --steps 2 --device cpu; fi
  # 4. a short training of one synthetic category, then its test report
  part synth "$work/daad" synth --out "$OUT/synth" --categories weave --size "$size"
  part train "$work/daad" train --data "$OUT/synth" --category weave --out "$OUT/run-weave" \
    --variant daad --preset fast --image-size "$size" --epochs "$epochs"
  part test "$work/daad" test --run "$OUT/run-weave" --data "$OUT/synth" --category weave \
    --out "$OUT/test-weave"
  rm -rf "$work"
  echo "done: $OUT/summary.txt"
}

case "$mode" in
  build) build ;;
  run) run ;;
  *)
    echo "usage: $0 build|run [--cpu]" >&2
    exit 2
    ;;
esac
