#!/usr/bin/env python3
"""Checks one exported daad model with the ONNX checker and ONNX Runtime against daad itself.

  check_onnx.py MODEL.onnx PREDICT.jsonl REFERENCE.jsonl [--bench N]

PREDICT.jsonl is `daad predict`'s output (score, r, l, verdict, threshold, anomaly-map PNG);
REFERENCE.jsonl is the daad-export `reference` example's (raw smoothed map, reconstruction).
Images are read and preprocessed here, independently of daad (they must already be at the
model's size: resizing filters differ between libraries). Exit status 1 on any mismatch.
"""
import argparse
import json
import sys
import time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("predict")
    ap.add_argument("reference")
    ap.add_argument("--bench", type=int, default=0, help="also time N images (batch 1 and 8)")
    a = ap.parse_args()

    m = onnx.load(a.model)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    for key in ("variant", "image_size", "threshold", "scaling", "layout", "range", "version"):
        if "daad." + key not in meta:
            sys.exit(f"{a.model}: metadata daad.{key} missing")
    size = int(meta["daad.image_size"])
    threshold = float(meta["daad.threshold"])

    preds = [json.loads(l) for l in open(a.predict) if l.strip()]
    refs = {r["path"]: r for r in (json.loads(l) for l in open(a.reference) if l.strip())}
    x = np.stack([load(p["path"], size) for p in preds])

    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {"image": x})))

    bad = []
    worst = {"score": 0.0, "map": 0.0, "map_png": 0.0, "reconstruction": 0.0}
    for i, p in enumerate(preds):
        ref = refs[p["path"]]
        ds = abs(float(out["score"][i]) - p["score"])
        worst["score"] = max(worst["score"], ds)
        if ds > SCORE_TOL:
            bad.append(f"{p['path']}: score onnx {out['score'][i]:.6f} daad {p['score']:.6f}")
        for k in ("r", "l"):
            if p.get(k) is None:
                if k in out:
                    bad.append(f"{p['path']}: onnx has {k}, daad does not")
                continue
            d = abs(float(out[k][i]) - p[k])
            if d > SCORE_TOL * max(abs(p[k]), 1e-3):
                bad.append(f"{p['path']}: {k} onnx {out[k][i]:.8f} daad {p[k]:.8f}")
        if abs(float(out["score"][i]) - threshold) > SCORE_TOL:
            verdict = "anomalous" if out["score"][i] >= threshold else "normal"
            if verdict != p["verdict"]:
                bad.append(f"{p['path']}: verdict onnx {verdict} daad {p['verdict']}")
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
    missing = [n for n in ("map", "reconstruction") if n not in out]
    print(
        f"check-onnx: {meta['daad.variant']}: {len(preds)} images, max |diff| score {worst['score']:.1e}, "
        f"map {worst['map']:.1e}, map-png {worst['map_png']:.1e}, reconstruction {worst['reconstruction']:.1e}"
        + (f" (not exported: {', '.join(missing)})" if missing else "")
    )

    if a.bench:
        for bs in (1, 8):
            xb = np.repeat(x, (bs + len(x) - 1) // len(x), axis=0)[:bs]
            sess.run(None, {"image": xb})  # warm-up
            t0, done = time.perf_counter(), 0
            while done < a.bench:
                sess.run(None, {"image": xb})
                done += bs
            dt = time.perf_counter() - t0
            print(f"check-onnx: bench {meta['daad.variant']} {size}px batch {bs}: {done / dt:.1f} images/s (onnxruntime cpu, {ort.get_device()})")

    for b in bad:
        print("check-onnx: FAIL " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
