#!/usr/bin/env bash
# Tables 3, 4 and 5 of docs/REPRODUCTION.md on the synthetic set, over training seeds 0,1,2, at
# the settings the preset sweep chose (scripts/preset-sweep.sh, which must run first: it writes
# the data and the AE/DAAD/DAAD+ cells these tables reuse).
#
#   scripts/synth-tables.sh [TABLE ...]      # tables: 3 4 5 (default: all, in that order)
#
# One category per generator for Table 3 (grain: classic shapes, marble: Perlin noise), grain
# alone for Tables 4 and 5 (their grids are five and nine trainings per seed).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${SWEEP_ROOT:-results/sweep}
SEEDS=${SWEEP_SEEDS:-0,1,2}
# Cells at once, each in its own process (0: one per core; 64 px cells gain about 1.4x on 2 cores).
JOBS=${SWEEP_JOBS:-0}
# The `fast` preset as the sweep chose it, at the demo's size: 64 px, 20 epochs, N = 100.
FLAGS=(--data "$ROOT/data" --preset fast --image-size 64 --epochs 20 --memory-size 100 --lr 1e-3
    --val-fraction 0.1 --seeds "$SEEDS" --results-root "$ROOT" --jobs "$JOBS")

table5() {
    cargo xtask adversarial "${FLAGS[@]}" --categories grain --name adversarial
}
table3() {
    # ae and daad are the sweep's `base` cells, daad+ its `plus-mean` cells (the same flags).
    mkdir -p "$ROOT/table3/cells"
    for c in "$ROOT"/base/cells/*__ae__* "$ROOT"/base/cells/*__daad__* \
        "$ROOT"/plus-mean/cells/*__daadplus__*; do
        [ -f "$c/metrics.json" ] && [ ! -e "$ROOT/table3/cells/$(basename "$c")" ] &&
            cp -a "$c" "$ROOT/table3/cells/"
    done
    cargo xtask reproduce "${FLAGS[@]}" --categories grain,marble --name table3
}
table4() {
    cargo xtask ablate "${FLAGS[@]}" --categories grain --divisions 1,2,4,8,16 --name ablate
}

tables=("$@")
[ ${#tables[@]} -eq 0 ] && tables=(3 4 5)
for t in "${tables[@]}"; do
    "table$t"
done
