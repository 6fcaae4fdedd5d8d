#!/usr/bin/env python3
"""Checks one exported daad model with the ONNX checker and ONNX Runtime against daad itself.

  check_onnx.py MODEL.onnx PREDICT.jsonl REFERENCE.jsonl [--expect-threshold yes|no]
                [--readme README.md ...]

PREDICT.jsonl is `daad predict`'s output (score, r, l, verdict, threshold, anomaly-map PNG);
REFERENCE.jsonl is the daad-export `reference` example's (raw smoothed map, reconstruction).
Images are read and preprocessed here, independently of daad (they must already be at the
model's size: resizing filters differ between libraries). A run without a threshold (metadata
daad.threshold = "none") has no verdict to compare (daad predict must say "unknown"); score, map
and reconstruction are compared either way. --readme runs the Python example of each file's
deploy section, as written, on this model and its highest-scoring image, and checks what it
prints.
Exit status 1 on any mismatch.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

SCORE_TOL = 1e-4  # absolute, on the calibrated score and relative on raw R, L
MAP_TOL = 1e-3  # absolute, on maps and reconstructions


def load(path, size):
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        sys.exit(f"{path}: {img.size}, expected {size}x{size} (generate the data at the model's size)")
    a = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return a.transpose(2, 0, 1)


def parse_threshold(model, text):
    """The metadata threshold: a float, or None for "none" (the run has no trustworthy one)."""
    if text == "none":
        return None
    try:
        return float(text)
    except ValueError:
        sys.exit(f"{model}: metadata daad.threshold is {text!r}, neither a number nor 'none'")


def verdict_of(score, threshold):
    """The verdict the docs promise: anomalous when score >= threshold; unknown without one."""
    if threshold is None:
        return "unknown"
    return "anomalous" if score >= threshold else "normal"


def readme_example(readme):
    """The first ```python block after the '## Deploy' heading of a README."""
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"^## Deploy\b.*?^```python\n(.*?)^```", text, re.S | re.M)
    if not m:
        sys.exit(f"{readme}: no ```python block in a '## Deploy' section")
    return m.group(1)


def run_readme_example(readme, model, image, want_score, threshold, bad):
    """Runs the README's example verbatim in a folder where cap.onnx is MODEL and photo.png is IMAGE."""
    code = readme_example(readme)
    for name in ("cap.onnx", "photo.png"):
        if name not in code:
            bad.append(f"{readme}: the deploy example no longer reads {name}; update check_onnx.py")
            return
    with tempfile.TemporaryDirectory() as d:
        os.symlink(os.path.abspath(model), os.path.join(d, "cap.onnx"))
        os.symlink(os.path.abspath(image), os.path.join(d, "photo.png"))
        p = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True)
    if p.returncode != 0:
        bad.append(f"{readme}: the deploy example failed:\n{p.stderr}")
        return
    words = p.stdout.split()
    if len(words) != 2:
        bad.append(f"{readme}: the deploy example printed {p.stdout!r}, expected 'VERDICT SCORE'")
        return
    verdict, score = words[0], float(words[1])
    if abs(score - want_score) > SCORE_TOL:
        bad.append(f"{readme}: the deploy example's score {score} differs from {want_score}")
    if threshold is None or abs(want_score - threshold) > SCORE_TOL:
        want = verdict_of(want_score, threshold)
        if verdict != want:
            bad.append(f"{readme}: the deploy example says {verdict}, expected {want}")
    print(f"check-onnx: {readme}: deploy example ran: {p.stdout.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("predict")
    ap.add_argument("reference")
    ap.add_argument("--expect-threshold", choices=("yes", "no"),
                    help="fail unless the model has (yes: and both verdicts occur) or lacks (no) a threshold")
    ap.add_argument("--readme", action="append", default=[],
                    help="also run this README's deploy example on the model (repeatable)")
    a = ap.parse_args()

    m = onnx.load(a.model)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    for key in ("variant", "image_size", "threshold", "scaling", "layout", "range", "version"):
        if "daad." + key not in meta:
            sys.exit(f"{a.model}: metadata daad.{key} missing")
    size = int(meta["daad.image_size"])
    threshold = parse_threshold(a.model, meta["daad.threshold"])

    bad = []
    if a.expect_threshold and (threshold is not None) != (a.expect_threshold == "yes"):
        bad.append(f"{a.model}: daad.threshold is {meta['daad.threshold']!r}, "
                   f"expected {'a number' if a.expect_threshold == 'yes' else 'none'}")

    preds = [json.loads(l) for l in open(a.predict) if l.strip()]
    refs = {r["path"]: r for r in (json.loads(l) for l in open(a.reference) if l.strip())}
    if not preds:
        sys.exit(f"{a.predict}: no predictions")
    x = np.stack([load(p["path"], size) for p in preds])

    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {"image": x})))

    worst = {"score": 0.0, "map": 0.0, "map_png": 0.0, "reconstruction": 0.0}
    verdicts = {"compared": 0, "at threshold": 0, "normal": 0, "anomalous": 0, "unknown": 0}
    for i, p in enumerate(preds):
        ref = refs[p["path"]]
        score = float(out["score"][i])
        ds = abs(score - p["score"])
        worst["score"] = max(worst["score"], ds)
        if ds > SCORE_TOL:
            bad.append(f"{p['path']}: score onnx {score:.6f} daad {p['score']:.6f}")
        for k in ("r", "l"):
            if p.get(k) is None:
                if k in out:
                    bad.append(f"{p['path']}: onnx has {k}, daad does not")
                continue
            d = abs(float(out[k][i]) - p[k])
            if d > SCORE_TOL * max(abs(p[k]), 1e-3):
                bad.append(f"{p['path']}: {k} onnx {out[k][i]:.8f} daad {p[k]:.8f}")
        # The threshold daad predict used must be the exported one (both None without one).
        pt = p.get("threshold")
        if (pt is None) != (threshold is None) or (pt is not None and abs(pt - threshold) > 1e-12):
            bad.append(f"{p['path']}: threshold daad {pt} metadata {meta['daad.threshold']}")
        if threshold is not None and abs(score - threshold) <= SCORE_TOL:
            verdicts["at threshold"] += 1  # within tolerance of the threshold: either verdict is right
        else:
            verdicts["compared"] += 1
            verdicts[verdict_of(score, threshold)] += 1
            if verdict_of(score, threshold) != p["verdict"]:
                bad.append(f"{p['path']}: verdict onnx {verdict_of(score, threshold)} daad {p['verdict']}")
        if "map" in out:
            om = out["map"][i, 0]
            dm = float(np.abs(om - np.asarray(ref["map"], np.float32).reshape(om.shape)).max())
            worst["map"] = max(worst["map"], dm)
            if dm > MAP_TOL:
                bad.append(f"{p['path']}: map differs by {dm:.2e}")
            # daad predict's 16-bit map PNG is the map scaled to its own min..max.
            png = np.asarray(Image.open(p["anomaly_map"]), dtype=np.float64) / 65535.0
            lo, hi = float(om.min()), float(om.max())
            norm = (om - lo) / (hi - lo if hi > lo else 1.0)
            dp = float(np.abs(norm - png).max())
            worst["map_png"] = max(worst["map_png"], dp)
            if dp > MAP_TOL:
                bad.append(f"{p['path']}: normalised map differs from predict's PNG by {dp:.2e}")
        if "reconstruction" in out:
            orec = out["reconstruction"][i]
            dr = float(np.abs(orec - np.asarray(ref["reconstruction"], np.float32).reshape(orec.shape)).max())
            worst["reconstruction"] = max(worst["reconstruction"], dr)
            if dr > MAP_TOL:
                bad.append(f"{p['path']}: reconstruction differs by {dr:.2e}")
    if a.expect_threshold == "yes" and threshold is not None and not (verdicts["normal"] and verdicts["anomalous"]):
        bad.append(f"{a.model}: verdicts {verdicts['normal']} normal, {verdicts['anomalous']} anomalous: "
                   "both must occur for the verdict to be checked (add an image of the other kind)")
    missing = [n for n in ("map", "reconstruction") if n not in out]
    if threshold is None:
        cal = "threshold none (verdict unknown, as daad predict says)"
    else:
        cal = (f"threshold {threshold:.6g}: {verdicts['compared']} verdicts compared "
               f"({verdicts['normal']} normal, {verdicts['anomalous']} anomalous)"
               + (f", {verdicts['at threshold']} within {SCORE_TOL:g} of it" if verdicts["at threshold"] else ""))
    print(
        f"check-onnx: {meta['daad.variant']}: {len(preds)} images, max |diff| score {worst['score']:.1e}, "
        f"map {worst['map']:.1e}, map-png {worst['map_png']:.1e}, reconstruction {worst['reconstruction']:.1e}; "
        + cal + (f" (not exported: {', '.join(missing)})" if missing else "")
    )

    top = int(np.argmax(out["score"]))  # the most anomalous image: the example's other branch
    for readme in a.readme:
        run_readme_example(readme, a.model, preds[top]["path"], float(out["score"][top]), threshold, bad)

    for b in bad:
        print("check-onnx: FAIL " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
