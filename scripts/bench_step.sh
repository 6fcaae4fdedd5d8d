#!/usr/bin/env bash
# Times the UNet autoencoder training step and inference with daad-nn, plain candle and PyTorch
# in one command, and prints a table with the ratios (ours / theirs; < 1 means daad-nn is faster).
#
#   scripts/bench_step.sh [--size 64 --size 128 --size 256] [--batch 8] [--iters 5] [--no-candle]
#                         [--candle-max 128] [--rounds 2]
#
# Each size runs daad-nn (and candle), then PyTorch, --rounds times interleaved; each number is the
# best over all iterations and rounds (the closest to the uncontended cost on a shared machine).
#
# candle's own ops take tens of seconds per step at 256 px, so they are timed only up to
# --candle-max px (default 128). PROFILE=dev builds with the (optimised) dev/test profile instead
# of --release, e.g. while the shared release target dir is busy.
#
# PyTorch comes from $TORCH_PYTHON (default /work/.venv-torch/bin/python, else python3); it is
# skipped when torch cannot be imported. The machine is shared: compare ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=() batch=8 iters=5 warmup=2 impl=both candle_max=128 rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) sizes+=("$2"); shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --no-candle) impl=fast; shift ;;
    --candle-max) candle_max=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#sizes[@]} -eq 0 ] && sizes=(64 128 256)
py=${TORCH_PYTHON:-/work/.venv-torch/bin/python}
[ -x "$py" ] || py=python3
size_args=()
for s in "${sizes[@]}"; do size_args+=(--size "$s"); done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ "${PROFILE:-release}" = dev ]; then
  cargo build -q -p daad-nn --example train_step
  bin=${CARGO_TARGET_DIR:-target}/debug/examples/train_step
else
  cargo build --release -q -p daad-nn --example train_step
  bin=${CARGO_TARGET_DIR:-target}/release/examples/train_step
fi
for s in "${sizes[@]}"; do
 for _round in $(seq "$rounds"); do
  # Interleave per size so all three see similar machine load.
  this=$impl
  [ "$this" = both ] && [ "$s" -gt "$candle_max" ] && this=fast
  "$bin" --size "$s" --batch "$batch" --iters "$iters" --warmup "$warmup" --impl "$this" | tee -a "$out"
  if "$py" -c "import torch" 2>/dev/null; then
    "$py" scripts/torch_step.py --size "$s" --batch "$batch" --iters "$iters" --warmup "$warmup" --threads 2 | tee -a "$out"
  else
    echo "(torch not importable with $py: PyTorch column skipped)"
  fi
 done
done
python3 - "$out" <<'PY'
import re, sys
rows = {}
keys = ("train_ms", "infer_ms", "train_cpu_ms", "infer_cpu_ms")
for line in open(sys.argv[1]):
    m = re.match(r"RESULT (\S+) size=(\d+) ", line)
    if not m:
        continue
    vals = dict(re.findall(r"(\w+)=([\d.]+)", line))
    d = rows.setdefault(int(m[2]), {}).setdefault(m[1], {})
    for k in keys:
        if k in vals:
            d[k] = min(d.get(k, float("inf")), float(vals[k]))
def f(v): return f"{v:.0f}" if v is not None else "-"
def r(a, b): return f"{a / b:.2f}" if a is not None and b else "-"
print()
print("Best of N per step, batch 8. wall = elapsed; cpu = process CPU time (all threads), the")
print("steadier number when the machine is shared. Ratios are daad-nn / other (< 1: daad-nn faster).")
print()
print("| size | what | daad-nn | candle | PyTorch | daad/candle | daad/PyTorch |")
print("|---|---|---|---|---|---|---|")
for size in sorted(rows):
    d = rows[size]
    for k, name in (("train_ms", "train step wall ms"), ("train_cpu_ms", "train step cpu ms"),
                    ("infer_ms", "inference wall ms"), ("infer_cpu_ms", "inference cpu ms")):
        ours = d.get("daad-nn", {}).get(k)
        cand = d.get("candle", {}).get(k)
        torch_ = d.get("pytorch", {}).get(k)
        print(f"| {size} | {name} | {f(ours)} | {f(cand)} | {f(torch_)} | {r(ours, cand)} | {r(ours, torch_)} |")
PY
