#!/usr/bin/env bash
# Exports tiny runs of all five variants to ONNX and checks each file with the ONNX checker and
# ONNX Runtime (from PyPI, in a cached venv, as check-ptx.sh does for nvcc) against daad itself on
# the synthetic test images plus one noise image: the score of `daad predict` (within 1e-4), its threshold and verdict,
# its anomaly-map PNG and daad's raw smoothed map and reconstruction (within 1e-3). Three runs hold
# out enough images (>= 5) for a threshold, so the verdict is compared; two hold out fewer, so the
# model's daad.threshold is "none" and the verdict must be "unknown". Both README deploy examples
# are run, as written, on every model (on its highest-scoring image).
#   bash scripts/check-onnx.sh        (first run: ~1 min of pip downloads)
# Throughput (ONNX Runtime, OpenVINO, daad): scripts/bench-onnx.sh.
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/daad-onnx and is reused.
# Exit status: non-zero on any mismatch or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=check-onnx
PKGS=(onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 pillow==13.0.0)
source scripts/onnx-common.sh

# Every variant at 32 px (tiny, one epoch: scores only need to agree). 12 training images:
# --val-fraction 0.5 holds out 6 (>= 5, daad-eval's MIN_HOLDOUT_IMAGES: a threshold), 0.3 holds
# out 4 (fewer: no threshold, verdict unknown).
size=32
quiet "$daad" synth --out "$tmp/data" --categories cap --size $size --seed 0 \
  --n-train 12 --n-test-good 2 --n-test-defect 4
# Plus one image of uniform noise (seeded): far from anything normal, so it is judged anomalous
# where there is a threshold, and both verdicts are compared.
"$PY" -c "import numpy as np, PIL.Image as I; I.fromarray(np.random.default_rng(0).integers(0, 256, ($size, $size, 3), np.uint8)).save('$tmp/noise.png')"
images=("$tmp"/data/cap/test/*/*.png "$tmp/noise.png")
status=0
for spec in ae:0.3:no ae-skip:0.5:yes memae:0.5:yes daad:0.3:no daad+:0.5:yes; do
  IFS=: read -r v frac thr <<< "$spec"
  run="$tmp/runs/$v"
  quiet "$daad" train --data "$tmp/data" --category cap --out "$run" --variant "$v" \
    --preset ci --epochs 1 --memory-size 20 --val-fraction "$frac"
  quiet "$daad" export --run "$run" --format onnx --out "$tmp/$v.onnx" --outputs score,map,reconstruction
  "$daad" predict --run "$run" --out "$tmp/pred-$v" "${images[@]}" > "$tmp/$v.predict.jsonl" 2> "$tmp/log" \
    || { cat "$tmp/log" >&2; exit 1; }
  "$reference" "$run" "${images[@]}" > "$tmp/$v.reference.jsonl"
  "$PY" scripts/check_onnx.py "$tmp/$v.onnx" "$tmp/$v.predict.jsonl" "$tmp/$v.reference.jsonl" \
    --expect-threshold "$thr" --readme README.md --readme crates/daad-export/README.md || status=1
done
exit $status
