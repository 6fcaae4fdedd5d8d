#!/usr/bin/env bash
# Images/s of an exported DAAD+ in ONNX Runtime and OpenVINO (CPU, both from PyPI, in a cached
# venv) next to daad's own (`daad predict` end to end, and candle's model + map), at 64 and 256 px,
# in interleaved rounds; OpenVINO's scores checked against ONNX Runtime's (1e-4). Not run by CI.
#   bash scripts/bench-onnx.sh            (ROUNDS=5 SIZES="64 256" by default)
# The runs are one epoch (64 px) and one epoch on 4 images (256 px): speed does not depend on
# training. daad is the dev-profile build CI tests (opt-level 2, dependencies 3).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=bench-onnx
PKGS=(onnx==1.23.2 onnxruntime==1.32.0 openvino==2026.4.1 numpy==2.4.6 pillow==13.0.0)
source scripts/onnx-common.sh

echo "bench-onnx: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
status=0
for s in ${SIZES:-64 256}; do
  if [ "$s" -ge 256 ]; then ntrain=4 n=8 ntest=4; else ntrain=16 n=16 ntest=8; fi
  quiet "$daad" synth --out "$tmp/data$s" --categories cap --size "$s" --seed 1 \
    --n-train $ntrain --n-test-good $ntest --n-test-defect $ntest
  run="$tmp/runs/$s"
  quiet "$daad" train --data "$tmp/data$s" --category cap --out "$run" --variant daad+ \
    --preset fast --image-size "$s" --epochs 1 --val-fraction 0
  quiet "$daad" export --run "$run" --format onnx --out "$tmp/$s.onnx" --outputs score,map
  "$PY" scripts/bench_onnx.py "$tmp/$s.onnx" "$run" "$daad" "$reference" "$tmp/data$s"/cap/test/*/*.png \
    --rounds "${ROUNDS:-5}" --n $n || status=1
done
exit $status
