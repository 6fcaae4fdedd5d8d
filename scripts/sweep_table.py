#!/usr/bin/env python3
"""The preset sweep's table (docs/ARCHITECTURE.md) from results/sweep/<setting>/summary.csv.

    python3 scripts/sweep_table.py [results/sweep]

Per setting and variant, image AUROC per generator (classic: grain, cap; Perlin noise: marble,
pebble) as mean ± sample std over training seeds (categories averaged per seed first), and the
paired difference against the setting's baseline variant (AE, or DAAD in the DAAD+ settings) over
(category, seed) pairs with a bootstrap 95 % interval; a win or loss only when it excludes 0.
Standard library only.
"""

import csv
import random
import statistics
import sys
from pathlib import Path

GENERATORS = {"classic": ("grain", "cap"), "Perlin": ("marble", "pebble")}
RESAMPLES = 2000


def spread(per_seed):
    """'mean ± std (n)' of per-seed values."""
    if not per_seed:
        return "–"
    m = statistics.fmean(per_seed)
    s = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
    return f"{m:.3f} ± {s:.3f}"


def interval(diffs, rng):
    """'+d [lo, hi] (n)' with a percentile bootstrap of the mean, and its reading."""
    if not diffs:
        return "–"
    means = sorted(
        statistics.fmean(rng.choice(diffs) for _ in diffs) for _ in range(RESAMPLES)
    )
    lo, hi = means[int(0.025 * RESAMPLES)], means[int(0.975 * RESAMPLES) - 1]
    word = "win" if lo > 0 else "loss" if hi < 0 else "tie"
    return f"{statistics.fmean(diffs):+.3f} [{lo:+.3f}, {hi:+.3f}] n={len(diffs)} **{word}**"


def load(summary):
    """(category, variant, seed) -> image AUROC of one setting, and its variants in order."""
    rows = list(csv.DictReader(summary.open()))
    auroc = {(r["category"], r["variant"], r["seed"]): float(r["image_auroc"]) for r in rows}
    return auroc, list(dict.fromkeys(r["variant"] for r in rows))


def paired(auroc, base, v, vb, cats):
    """Differences auroc[(c, v, s)] - base[(c, vb, s)] over the pairs both have."""
    return [
        a - base[(c, vb, s)]
        for (c, vv, s), a in sorted(auroc.items())
        if vv == v and c in cats and (c, vb, s) in base
    ]


def settings(root):
    """The sweep's settings: folders a `cargo xtask demo` grid wrote (table.md + summary.csv),
    not the Tables 3/4/5 folders that share the root."""
    return sorted(t.parent / "summary.csv" for t in root.glob("*/table.md"))


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/sweep")
    rng = random.Random(0)
    print(
        "| setting | variant | classic image AUROC | Perlin image AUROC "
        "| vs baseline, classic | vs baseline, Perlin |"
    )
    print("|---|---|---|---|---|---|")
    for summary in settings(root):
        setting = summary.parent.name
        auroc, variants = load(summary)
        base = "ae" if "ae" in variants else variants[0]
        for v in variants:
            cells = [f"| {setting} | {v} |"]
            for cats in GENERATORS.values():
                seeds = sorted({s for (c, vv, s) in auroc if vv == v and c in cats})
                per_seed = [
                    statistics.fmean(auroc[(c, v, s)] for c in cats if (c, v, s) in auroc)
                    for s in seeds
                    if any((c, v, s) in auroc for c in cats)
                ]
                cells.append(f" {spread(per_seed)} (n={len(per_seed)}) |")
            for cats in GENERATORS.values():
                if v == base:
                    cells.append(" (baseline) |")
                    continue
                cells.append(f" {interval(paired(auroc, auroc, v, base, cats), rng)} |")
            print("".join(cells))
    # The reference of a variant: its cells in `base`, or in `plus-mean` for DAAD+.
    references = [root / "base" / "summary.csv", root / "plus-mean" / "summary.csv"]
    ref = {}
    for r in reversed(references):
        if r.exists():
            ref.update(load(r)[0])
    if not ref:
        return
    print(
        "\nEach setting's variant against the same variant in `base` (`plus-mean` for DAAD+),"
        " same category and seed:\n"
    )
    print("| setting | variant | classic | Perlin |")
    print("|---|---|---|---|")
    for summary in settings(root):
        if summary.parent.name == "base":
            continue
        auroc, variants = load(summary)
        for v in variants:
            diffs = [paired(auroc, ref, v, v, cats) for cats in GENERATORS.values()]
            if not any(diffs) or all(d == 0.0 for ds in diffs for d in ds):
                continue  # no pairs, or the cells were copied from base (a setting that leaves v unchanged)
            row = " | ".join(interval(d, rng) for d in diffs)
            print(f"| {summary.parent.name} | {v} | {row} |")
    # DAAD+ earns its row only against DAAD at the default settings.
    base = root / "base" / "summary.csv"
    if base.exists():
        daad, _ = load(base)
        for summary in settings(root):
            if not summary.parent.name.startswith("plus-"):
                continue
            auroc, variants = load(summary)
            if "daad+" not in variants:
                continue
            diffs = [paired(auroc, daad, "daad+", "daad", cats) for cats in GENERATORS.values()]
            row = " | ".join(interval(d, rng) for d in diffs)
            print(f"| {summary.parent.name} | daad+ against `base` daad | {row} |")


if __name__ == "__main__":
    main()
