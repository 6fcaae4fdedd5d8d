#!/usr/bin/env bash
# Exports tiny runs of all five variants to ONNX and checks each file with the ONNX checker and
# ONNX Runtime (from PyPI, in a cached venv, as check-ptx.sh does for nvcc) against daad itself on
# the synthetic test images: the score and verdict of `daad predict` (score within 1e-4), its
# anomaly-map PNG and daad's raw smoothed map and reconstruction (within 1e-3).
#   bash scripts/check-onnx.sh                     (first run: ~1 min of pip downloads)
#   DAAD_ONNX_BENCH=64 bash scripts/check-onnx.sh  (also images/s of onnxruntime vs daad, 64 px)
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/daad-onnx and is reused.
# Exit status: non-zero on any mismatch or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/daad-onnx"
PKGS=(onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 pillow==13.0.0)
stamp="$VENV/.daad-pins"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PKGS[*]}" ]; then
  echo "check-onnx: installing ${PKGS[*]} into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  echo "${PKGS[*]}" > "$stamp"
fi
PY="$VENV/bin/python"

cargo build -q --workspace --bin daad --example reference
bin="${CARGO_TARGET_DIR:-target}/debug"
daad="$bin/daad" reference="$bin/examples/reference"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
quiet() { # runs "$@" with its output kept in a log that is shown only on failure
  if ! "$@" > "$tmp/log" 2>&1; then cat "$tmp/log" >&2; echo "check-onnx: FAIL $*" >&2; exit 1; fi
}

# Variant, image size, preset: every variant at 32 px (tiny, one epoch: scores only need to agree).
size=32
quiet "$daad" synth --out "$tmp/data" --categories cap --size $size --seed 0 \
  --n-train 10 --n-test-good 2 --n-test-defect 4
images=("$tmp"/data/cap/test/*/*.png)
status=0
for v in ae ae-skip memae daad daad+; do
  run="$tmp/runs/$v"
  quiet "$daad" train --data "$tmp/data" --category cap --out "$run" --variant "$v" \
    --preset ci --epochs 1 --memory-size 20 --val-fraction 0.3
  quiet "$daad" export --run "$run" --format onnx --out "$tmp/$v.onnx" --outputs score,map,reconstruction
  "$daad" predict --run "$run" --out "$tmp/pred-$v" "${images[@]}" > "$tmp/$v.predict.jsonl" 2> "$tmp/log" \
    || { cat "$tmp/log" >&2; exit 1; }
  "$reference" "$run" "${images[@]}" > "$tmp/$v.reference.jsonl"
  "$PY" scripts/check_onnx.py "$tmp/$v.onnx" "$tmp/$v.predict.jsonl" "$tmp/$v.reference.jsonl" || status=1
done

if [ -n "${DAAD_ONNX_BENCH:-}" ]; then
  # Throughput on one trained DAAD+ at DAAD_ONNX_BENCH px (fast preset, 1 epoch: speed only).
  s="$DAAD_ONNX_BENCH" n=64
  quiet "$daad" synth --out "$tmp/bench" --categories cap --size "$s" --seed 1 \
    --n-train 16 --n-test-good 8 --n-test-defect 8
  run="$tmp/runs/bench"
  quiet "$daad" train --data "$tmp/bench" --category cap --out "$run" --variant daad+ \
    --preset fast --image-size "$s" --epochs 1
  quiet "$daad" export --run "$run" --format onnx --out "$tmp/bench.onnx" --outputs score,map
  bimgs=("$tmp"/bench/cap/test/*/*.png)
  t0=$(date +%s.%N)
  "$daad" predict --run "$run" --out "$tmp/pred-bench" "${bimgs[@]}" > "$tmp/bench.predict.jsonl" 2>/dev/null
  t1=$(date +%s.%N)
  echo "check-onnx: bench daad predict (end to end: decode, model, heatmap PNGs) ${s}px: $("$PY" -c "print(f'{${#bimgs[@]} / ($t1 - $t0):.1f}')") images/s"
  DAAD_BENCH=$n "$reference" "$run" "${bimgs[@]}" > "$tmp/bench.reference.jsonl"
  "$PY" scripts/check_onnx.py "$tmp/bench.onnx" "$tmp/bench.predict.jsonl" "$tmp/bench.reference.jsonl" --bench $n || status=1
fi
exit $status
