#!/usr/bin/env python3
"""Times one training step (and one inference) of the UNet autoencoder that
crates/daad-nn/src/bench_support.rs defines, in PyTorch on the CPU, for comparison.

Same model: encoder Conv4x4/s2/p1 3->64 (bias, no BN) LeakyReLU(0.2), 64->128, 128->256,
256->512 with BatchNorm + LeakyReLU(0.2); decoder ConvT4x4/s2/p1 512->256 BN ReLU, concat skip
-> 512->128, concat -> 256->64 (BN ReLU), concat -> 128->3 (bias) tanh; MSE to the input;
Adam(lr 2e-4, betas 0.5/0.999). Prints `RESULT pytorch size=S batch=B train_ms=<best> infer_ms=<best> ...` (and medians).

torch is never needed by tests or CI: `pip install torch` into a venv to run this.
"""
import argparse
import time

import torch
from torch import nn


class UNetAe(nn.Module):
    def __init__(self):
        super().__init__()
        ch = [3, 64, 128, 256, 512]
        self.enc = nn.ModuleList(
            nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1, bias=(i == 0)) for i in range(4)
        )
        self.enc_bn = nn.ModuleList(nn.BatchNorm2d(c) for c in ch[2:])
        dec = [(512, 256), (512, 128), (256, 64), (128, 3)]
        self.dec = nn.ModuleList(
            nn.ConvTranspose2d(i, o, 4, 2, 1, bias=(k == 3)) for k, (i, o) in enumerate(dec)
        )
        self.dec_bn = nn.ModuleList(nn.BatchNorm2d(o) for _, o in dec[:3])
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        f1 = self.lrelu(self.enc[0](x))
        f2 = self.lrelu(self.enc_bn[0](self.enc[1](f1)))
        f3 = self.lrelu(self.enc_bn[1](self.enc[2](f2)))
        f4 = self.lrelu(self.enc_bn[2](self.enc[3](f3)))
        d = torch.relu(self.dec_bn[0](self.dec[0](f4)))
        d = torch.relu(self.dec_bn[1](self.dec[1](torch.cat([d, f3], 1))))
        d = torch.relu(self.dec_bn[2](self.dec[2](torch.cat([d, f2], 1))))
        return torch.tanh(self.dec[3](torch.cat([d, f1], 1)))


def best_median(v):
    # Best of N is the closest to the uncontended cost on a shared machine; median beside it.
    v = sorted(v)
    return v[0], v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, action="append")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for size in a.size or [64]:
        model = UNetAe()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
        x = torch.rand(a.batch, 3, size, size) * 2 - 1
        train, train_cpu = [], []
        for i in range(a.warmup + a.iters):
            t, c = time.perf_counter(), time.process_time()
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = ((model(x) - x) ** 2).mean()
            loss.backward()
            opt.step()
            loss = loss.item()
            if i >= a.warmup:
                train.append((time.perf_counter() - t) * 1e3)
                train_cpu.append((time.process_time() - c) * 1e3)
        infer, infer_cpu = [], []
        model.eval()
        with torch.no_grad():
            for i in range(a.warmup + a.iters):
                t, c = time.perf_counter(), time.process_time()
                model(x).max().item()
                if i >= a.warmup:
                    infer.append((time.perf_counter() - t) * 1e3)
                    infer_cpu.append((time.process_time() - c) * 1e3)
        (tb, tm), (ib, im) = best_median(train), best_median(infer)
        print(
            f"RESULT pytorch size={size} batch={a.batch} train_ms={tb:.1f} infer_ms={ib:.1f} "
            f"train_median_ms={tm:.1f} infer_median_ms={im:.1f} "
            f"train_cpu_ms={min(train_cpu):.0f} infer_cpu_ms={min(infer_cpu):.0f} loss={loss:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
