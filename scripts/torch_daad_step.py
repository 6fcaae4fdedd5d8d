#!/usr/bin/env python3
"""PyTorch port of one daad training step (the baseline for `daad-train`'s step benchmark).

Mirrors crates/daad-model and crates/daad-train: DCGAN encoder (Conv 4x4 s2 p1, BN except the
first stage, LeakyReLU 0.2; 64-128-256-512), block memory on f1..f4 (divide -> cosine ->
softmax -> drop w < 1/N -> renormalise -> w M -> assemble), decoder (ConvT 4x4 s2 p1, BN, ReLU,
tanh) with UNet skips, GANomaly-style DCGAN discriminator; one step = generator update with
50 L_rec (+ 0.5 L_adv + 0.5 L_ali for DAAD+) then a discriminator update on the detached fake.
Adam lr 1e-4 (2e-4 with D), betas (0.9, 0.999).

Usage: python scripts/torch_daad_step.py --sizes 64,128,256 --batch 8 --steps 5 [--variant daad]
       [--memory-size 500] [--threads N] [--infer]
Prints one JSON line per size: {"impl": "torch", "size", "batch", "variant", "median_s", "steps",
"peak_rss_mb"} and, with --infer, "infer_median_s": the median time of one inference batch (eval
mode, no grad: reconstruction and per-image error), measured before the training steps.
`cargo xtask bench --against-pytorch PYTHON` runs it once per size and round (peak RSS is the
process's, so one size per process gives that size's peak).
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BlockMemory(nn.Module):
    def __init__(self, c, h, w, rates, n_items):
        super().__init__()
        rh, rw, rc = min(rates[0], h), min(rates[1], w), min(rates[2], c)
        self.r = (rh, rw, rc)
        d = (c // rc) * (h // rh) * (w // rw)
        a = 1.0 / d ** 0.5
        self.bank = nn.Parameter(torch.empty(n_items, d).uniform_(-a, a))

    def forward(self, f):
        b, c, h, w = f.shape
        rh, rw, rc = self.r
        # divide: (B, rc, C/rc, rh, H/rh, rw, W/rw) -> (B, rc, rh, rw, C/rc, H/rh, W/rw) -> (B*Q, D)
        q = f.reshape(b, rc, c // rc, rh, h // rh, rw, w // rw).permute(0, 1, 3, 5, 2, 4, 6)
        q = q.reshape(b * rc * rh * rw, -1)
        s = F.normalize(q, dim=1) @ F.normalize(self.bank, dim=1).t()
        wgt = torch.softmax(s, dim=1)
        n = self.bank.shape[0]
        mask = (wgt >= 1.0 / n).to(wgt.dtype).detach()
        wgt = wgt * mask
        wgt = wgt / wgt.sum(dim=1, keepdim=True)
        out = wgt @ self.bank
        out = out.reshape(b, rc, rh, rw, c // rc, h // rh, w // rw).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, c, h, w)


class Generator(nn.Module):
    def __init__(self, size, memory, skips, rates, n_items, base=64, in_c=3):
        super().__init__()
        ch = [base, 2 * base, 4 * base, 8 * base]
        sides = [size // 2, size // 4, size // 8, size // 16]
        self.enc = nn.ModuleList()
        for l in range(4):
            ic = in_c if l == 0 else ch[l - 1]
            layers = [nn.Conv2d(ic, ch[l], 4, 2, 1, bias=(l == 0))]
            if l > 0:
                layers.append(nn.BatchNorm2d(ch[l]))
            layers.append(nn.LeakyReLU(0.2))
            self.enc.append(nn.Sequential(*layers))
        self.mem = nn.ModuleList(
            [BlockMemory(ch[l], sides[l], sides[l], rates, n_items) if memory[l] else nn.Identity() for l in range(4)]
        )
        self.skips = skips
        self.dec = nn.ModuleList()
        for l in range(4):
            below = ch[3] if l == 3 else ch[l]
            skip = ch[l] if (l < 3 and skips) else 0
            oc = in_c if l == 0 else ch[l - 1]
            layers = [nn.ConvTranspose2d(below + skip, oc, 4, 2, 1, bias=(l == 0))]
            layers += [nn.Tanh()] if l == 0 else [nn.BatchNorm2d(oc), nn.ReLU()]
            self.dec.append(nn.Sequential(*layers))

    def forward(self, x):
        feats = []
        h = x
        for e in self.enc:
            h = e(h)
            feats.append(h)
        d = self.mem[3](feats[3])
        for l in (3, 2, 1, 0):
            if l < 3 and self.skips:
                d = torch.cat([d, self.mem[l](feats[l])], 1)
            d = self.dec[l](d)
        return d


class Discriminator(nn.Module):
    def __init__(self, size, base=64, in_c=3):
        super().__init__()
        layers = [nn.Conv2d(in_c, base, 4, 2, 1, bias=True), nn.LeakyReLU(0.2)]
        side, c = size // 2, base
        while side > 4:
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            c, side = 2 * c, side // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(c, 1, side, 1, 0, bias=True)

    def forward(self, x):
        f = self.features(x)
        return self.classifier(f).flatten(), f


def bench(size, batch, steps, variant, n_items=500, infer=False):
    """(median train step s, median inference batch s or None)."""
    torch.manual_seed(0)
    if variant == "memae":
        g = Generator(size, [False, False, False, True], False, (16, 16, 1), n_items)
    else:
        g = Generator(size, [True] * 4, True, (8, 8, 1), n_items)
    d = Discriminator(size) if variant == "daad+" else None
    lr = 2e-4 if d is not None else 1e-4
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.9, 0.999)) if d is not None else None
    x = torch.rand(batch, 3, size, size) * 2 - 1
    bce = nn.BCEWithLogitsLoss()

    def step():
        x_hat = g(x)
        loss = 50 * F.mse_loss(x_hat, x)
        if d is not None:
            logit_fake, f_fake = d(x_hat)
            _, f_real = d(x)
            loss = loss + 0.5 * bce(logit_fake, torch.ones_like(logit_fake)) + 0.5 * F.mse_loss(f_fake, f_real.detach())
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        if d is not None:
            lr_, _ = d(x)
            lf, _ = d(x_hat.detach())
            ld = 0.5 * (bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf)))
            opt_d.zero_grad(set_to_none=True)
            ld.backward()
            opt_d.step()
        return loss.item()

    def timed(f):
        f()  # warm-up
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    infer_s = None
    if infer:
        def infer_step():
            g.eval()
            with torch.no_grad():
                x_hat = g(x)
                ((x_hat - x) ** 2).flatten(1).mean(1).tolist()
            g.train()

        infer_s = timed(infer_step)
    return timed(step), infer_s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="64,128,256")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--variant", default="daad", choices=["daad", "daad+", "memae"])
    p.add_argument("--memory-size", type=int, default=500)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--infer", action="store_true", help="also time one inference batch")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    for s in [int(v) for v in a.sizes.split(",")]:
        med, infer_s = bench(s, a.batch, a.steps, a.variant, a.memory_size, a.infer)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
        out = {"impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "size": s, "batch": a.batch, "variant": a.variant, "median_s": med, "steps": a.steps,
               "peak_rss_mb": rss_mb}
        if infer_s is not None:
            out["infer_median_s"] = infer_s
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
