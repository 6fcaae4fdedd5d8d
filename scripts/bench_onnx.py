#!/usr/bin/env python3
"""Images/s of one exported daad model in ONNX Runtime and OpenVINO (CPU) next to daad's own, in
interleaved rounds (the order rotates every round), and OpenVINO's outputs against ONNX Runtime's.

  bench_onnx.py MODEL.onnx RUN DAAD REFERENCE IMAGE... [--rounds 5] [--n 16]

DAAD is the daad binary (`daad predict` end to end: process start, decode, model, heatmap PNGs,
over all IMAGEs); REFERENCE the daad-export `reference` example (DAAD_BENCH=n: candle's model +
smoothed map on preprocessed input, what the ONNX graph computes). ONNX Runtime and OpenVINO run
the graph on preprocessed input, batch 1 and 8, default threading; OpenVINO twice: f32 (asked
for) and its default precision (bfloat16 on CPUs with AVX512-BF16, e.g. Zen 4). Prints every round, then the
medians and the per-round ratios to ONNX Runtime. Exit status 1 if OpenVINO's f32 score differs
from ONNX Runtime's by more than 1e-4 (or its map by more than 1e-3). Not run by CI.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import openvino as ov
from PIL import Image

SCORE_TOL = 1e-4
MAP_TOL = 1e-3


def load(path, size):
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        sys.exit(f"{path}: {img.size}, expected {size}x{size}")
    return (np.asarray(img, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def timed(run, x, bs, n):
    """Images/s of `run` on n images in batches of bs (one warm-up batch first)."""
    xb = np.ascontiguousarray(np.repeat(x, (bs + len(x) - 1) // len(x), axis=0)[:bs])
    run(xb)
    t0, done = time.perf_counter(), 0
    while done < n:
        run(xb)
        done += bs
    return done / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("run")
    ap.add_argument("daad")
    ap.add_argument("reference")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=16, help="images per measurement")
    a = ap.parse_args()

    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    size = int(meta["daad.image_size"])
    x = np.stack([load(p, size) for p in a.images])
    names = [o.name for o in sess.get_outputs()]

    # OpenVINO's CPU plugin computes in bfloat16 by default on CPUs with AVX512-BF16 or AMX (Zen 4
    # is one): f32 is asked for explicitly (the checked one); the default is measured too.
    core = ov.Core()
    default_precision = core.get_property("CPU", ov.properties.hint.inference_precision).get_type_name()
    ov_model = core.read_model(a.model)
    requests = {
        "f32": core.compile_model(ov_model, "CPU", {ov.properties.hint.inference_precision: ov.Type.f32}),
        "default": core.compile_model(ov_model, "CPU"),
    }
    requests = {k: c.create_infer_request() for k, c in requests.items()}

    def ort_run(xb):
        return dict(zip(names, sess.run(None, {"image": xb})))

    def ov_runner(kind):
        def run(xb):
            res = requests[kind].infer({"image": xb})
            return {o.get_any_name(): np.asarray(v) for o, v in res.items()}
        return run

    # Agreement on every image, one batch; only f32 must agree.
    o_ref = ort_run(x)
    ok = True
    for kind in requests:
        o_ov = ov_runner(kind)(x)
        ds = float(np.abs(o_ov["score"] - o_ref["score"]).max())
        dm = float(np.abs(o_ov["map"] - o_ref["map"]).max()) if "map" in o_ref else 0.0
        label = "f32" if kind == "f32" else f"default precision ({default_precision}), not checked"
        print(f"bench-onnx: {meta['daad.variant']} {size}px, {len(x)} images: OpenVINO {label} vs ONNX Runtime "
              f"max |diff| score {ds:.1e}, map {dm:.1e}")
        if kind == "f32":
            ok = ds <= SCORE_TOL and dm <= MAP_TOL

    def daad_model():
        env = dict(os.environ, DAAD_BENCH=str(a.n))
        p = subprocess.run([a.reference, a.run, a.images[0]], env=env, capture_output=True, text=True, check=True)
        got = dict(re.findall(r"batch (\d+): ([0-9.]+) images/s", p.stderr))
        return {1: float(got["1"]), 8: float(got["8"])}

    def daad_predict():
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([a.daad, "predict", "--run", a.run, "--out", d, *a.images],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            return {1: len(a.images) / (time.perf_counter() - t0)}

    runners = {
        "onnxruntime": lambda: {bs: timed(ort_run, x, bs, a.n) for bs in (1, 8)},
        "openvino f32": lambda: {bs: timed(ov_runner("f32"), x, bs, a.n) for bs in (1, 8)},
        "openvino default": lambda: {bs: timed(ov_runner("default"), x, bs, a.n) for bs in (1, 8)},
        "daad model+map": daad_model,
        "daad predict e2e": daad_predict,
    }
    order = list(runners)
    results = {k: [] for k in order}
    print(f"bench-onnx: load average before {os.getloadavg()[0]:.2f}")
    for r in range(a.rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            results[k].append(runners[k]())
        line = ", ".join(f"{k} " + "/".join(f"{v:.1f}" for v in results[k][-1].values()) for k in order)
        print(f"bench-onnx: round {r + 1} (images/s, batch 1/8): {line}", flush=True)
    print(f"bench-onnx: load average after {os.getloadavg()[0]:.2f}")

    base = results["onnxruntime"]
    for k in order:
        for bs in (1, 8):
            vals = [res[bs] for res in results[k] if bs in res]
            if not vals:
                continue
            ratios = [res[bs] / b[bs] for res, b in zip(results[k], base)]
            print(f"bench-onnx: {k:17s} batch {bs}: median {statistics.median(vals):7.1f} images/s; "
                  f"per-round ratio to onnxruntime {', '.join(f'{q:.2f}' for q in ratios)} "
                  f"(median {statistics.median(ratios):.2f})")
    if not ok:
        print("bench-onnx: FAIL OpenVINO's outputs differ from ONNX Runtime's", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
