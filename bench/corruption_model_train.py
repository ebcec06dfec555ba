#!/usr/bin/env python
"""Can a small convolutional model find visibly damaged macroblocks? A study, not the detector.

On crops from bench/corruption_model_data.py (a picture and the frame before it, each a
working copy of every 4th luma pixel, or full resolution with `--full`) a convolution
whose kernels cover one macroblock and 2 samples around it (so the seams on its edges),
at a stride of one macroblock, gives features per block; a 3x3 convolution over the
macroblock grid adds the neighbours, and a 1x1 one gives the logit of "visibly damaged".
Small enough (about 25 million multiply-adds for a 720p working copy) to run in numpy
inside the detector's budget, had it worked.

Per seed held out in turn it reports the block-level ROC AUC and average precision;
`--out` also trains on every seed and writes the weights (.npz).

    python -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0 numpy
    /tmp/torch/bin/python bench/corruption_model_train.py /tmp/corr-crops.npz

Needs PyTorch (CPU), which streamqc itself does not. Findings are in docs/quality.md
("video.corruption", fourth attempt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

FEATURES, CONTEXT = 24, 16
BORDER = 1  # crop cells left out of the loss: their neighbours lie outside the crop


class BlockModel(nn.Module):
    def __init__(self, cell: int = 4) -> None:
        super().__init__()
        self.blocks = nn.Conv2d(2, FEATURES, kernel_size=cell + 4, stride=cell, padding=2)
        self.context = nn.Conv2d(FEATURES, CONTEXT, kernel_size=3, padding=1)
        self.out = nn.Conv2d(CONTEXT, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.blocks(x))
        x = torch.relu(self.context(x))
        return self.out(x)[:, 0]


def inputs(picture: np.ndarray, before: np.ndarray) -> torch.Tensor:
    """The same two channels as corruption_model.inputs()."""
    p = picture.astype(np.float32)
    return torch.from_numpy(np.stack([(p - 128.0) / 64.0, (p - before.astype(np.float32)) / 32.0], axis=1))


def auc(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    pos = y.sum()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / max(1, pos * (len(y) - pos)))


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / max(1, hits.sum()))


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> BlockModel:
    torch.manual_seed(seed)
    model = BlockModel(x.shape[-1] // y.shape[-1])
    inner = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    positives = float(y[inner].sum())
    weight = torch.tensor(min(20.0, (y[inner].numel() - positives) / max(1.0, positives)))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 256):
            idx = perm[i:i + 256]
            batch = x[idx]
            if torch.rand(()) < 0.5:  # the content has no left or right
                batch, target = batch.flip(3), y[idx].flip(2)
            else:
                target = y[idx]
            loss = loss_fn(model(batch)[inner], target[inner])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model


def score(model: BlockModel, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        s = torch.cat([model(x[i:i + 1024]) for i in range(0, len(x), 1024)])
    inner = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    s, t = s[inner].numpy().ravel(), y[inner].numpy().ravel().astype(bool)
    return auc(t, s), average_precision(t, s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--no-held-out", action="store_true", help="skip the per-seed report")
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = np.load(args.data)
    x = inputs(data["picture"], data["before"])
    y = torch.from_numpy(data["damaged"].astype(np.float32))
    seeds = data["seed"]
    print(f"{len(x)} crops, {int(y.sum())} damaged blocks, seeds {sorted(set(seeds.tolist()))}")
    if not args.no_held_out:
        print(f"{'held out':>9} {'crops':>6} {'damaged':>8} {'AUC':>6} {'AP':>6}")
        for held in np.unique(seeds):
            test = torch.from_numpy(seeds == held)
            model = train(x[~test], y[~test], args.epochs, 0)
            a, p = score(model, x[test], y[test])
            print(f"{held:>9} {int(test.sum()):>6} {int(y[test].sum()):>8} {a:6.3f} {p:6.3f}", flush=True)
    if args.out is not None:
        model = train(x, y, args.epochs, 0)
        weights = {name.replace(".", "_"): p.detach().numpy().astype(np.float32) for name, p in model.named_parameters()}
        np.savez(args.out, **weights)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
