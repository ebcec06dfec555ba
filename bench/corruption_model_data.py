#!/usr/bin/env python
"""Training crops for video.corruption's learned block model, from the corpus generator.

For each case of the given seeds (`corrupt_drop`, `corrupt_flip`, `corrupt_baked`,
`calm`, `lowbitrate`) the generator builds the file and, for damaged cases, each frame's
map of visibly damaged 16x16 blocks (corpus.build_case(block_masks=...)). The written
file is decoded as `check` decodes it; on the pictures the detector analyses it cuts
crops of the working copy (`VideoFrame.small`: every 4th luma pixel, so one macroblock
is 4x4 samples) of the picture and of the frame before it, with the crop's block map.
Crops holding damage are all kept; clean ones are sampled. Pictures in the labels'
ignore zones (different from the clean decode, not visibly) are left out.

    STREAMQC_MEDIA=../shared/media nice .venv/bin/python bench/corruption_model_data.py \
        --seed 101 --seed 102 --cases 16 --out /tmp/corr-crops.npz

bench/corruption_model_train.py trains a small convolutional model on the result and
reports how well it separates damaged blocks on a seed it did not see. `--full` cuts the
crops from the full-resolution luma instead (192 pixels a side; use fewer crops per
picture, `--clean-crops 1 --damaged-crops 3`, or the file grows past a gigabyte).
Findings are in docs/quality.md ("video.corruption", fourth attempt).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np

from corruption_block_model import labelled_pictures  # bench/, beside this script
from streamqc.synth import corpus

RECIPES = ("corrupt_drop", "corrupt_flip", "corrupt_baked", "calm", "lowbitrate")
ANALYSIS_FPS = 6.0
CROP_BLOCKS = 12  # crop side in macroblocks (48 samples of the working copy)
CELL = 4  # samples per macroblock side in the working copy
CLEAN_CROPS = 2  # crops per picture without damage
DAMAGED_CROPS = 6  # crops per picture with damage, centred on damaged blocks


def case_crops(plan: corpus.CasePlan, media: Path | None, full: bool = False,
               clean_crops: int = CLEAN_CROPS, damaged_crops: int = DAMAGED_CROPS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([plan.seed, 77])
    pictures, befores, maps = [], [], []
    cell = 16 if full else CELL
    side = CROP_BLOCKS * cell
    copy = (lambda f: f.sample(1)) if full else (lambda f: f.small)
    for frame, picture, before, truth in labelled_pictures(plan, media, ANALYSIS_FPS, copy, need_before=True):
        rows, cols = truth.shape
        if rows < CROP_BLOCKS or cols < CROP_BLOCKS:
            continue
        corners = []
        damaged = np.argwhere(truth)
        for _ in range(damaged_crops if len(damaged) else 0):
            y, x = damaged[rng.integers(len(damaged))]
            corners.append((int(np.clip(y - CROP_BLOCKS // 2, 0, rows - CROP_BLOCKS)),
                            int(np.clip(x - CROP_BLOCKS // 2, 0, cols - CROP_BLOCKS))))
        for _ in range(clean_crops):
            corners.append((int(rng.integers(rows - CROP_BLOCKS + 1)), int(rng.integers(cols - CROP_BLOCKS + 1))))
        for y, x in corners:
            sy, sx = y * cell, x * cell
            pictures.append(np.clip(picture[sy:sy + side, sx:sx + side], 0, 255).astype(np.uint8))
            befores.append(np.clip(before[sy:sy + side, sx:sx + side], 0, 255).astype(np.uint8))
            maps.append(truth[y:y + CROP_BLOCKS, x:x + CROP_BLOCKS])
    frame = None  # noqa: F841 -- a decoded frame must not outlive its decoder
    if not pictures:
        empty = np.zeros((0, side, side), np.uint8)
        return {"picture": empty, "before": empty, "damaged": np.zeros((0, CROP_BLOCKS, CROP_BLOCKS), bool)}
    return {"picture": np.stack(pictures), "before": np.stack(befores), "damaged": np.stack(maps)}


def _job(args: tuple[corpus.CasePlan, str | None, bool, int, int]) -> tuple[corpus.CasePlan, dict[str, np.ndarray]]:
    plan, media, full, clean, damaged = args
    return plan, case_crops(plan, Path(media) if media else None, full, clean, damaged)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, action="append", required=True)
    ap.add_argument("--cases", type=int, default=16, help="cases per seed")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--media", default=os.environ.get("STREAMQC_MEDIA"), help="real clips (default STREAMQC_MEDIA)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="crops of the full-resolution luma, not the working copy")
    ap.add_argument("--clean-crops", type=int, default=CLEAN_CROPS, help="crops per picture without damage")
    ap.add_argument("--damaged-crops", type=int, default=DAMAGED_CROPS, help="crops per damaged picture")
    args = ap.parse_args()
    media = args.media if args.media and Path(args.media).is_dir() else None
    plans = [p for s in args.seed for p in corpus.plan_corpus(s, args.cases, recipes_only=RECIPES)]
    parts: dict[str, list[np.ndarray]] = {"picture": [], "before": [], "damaged": [], "seed": [], "recipe": []}
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for plan, crops in pool.imap_unordered(_job, [(p, media, args.full, args.clean_crops, args.damaged_crops) for p in plans]):
            n = len(crops["damaged"])
            print(f"{plan.case_id} {plan.recipe}: {n} crops, {int(crops['damaged'].any(axis=(1, 2)).sum())} with damage",
                  file=sys.stderr, flush=True)
            for key in ("picture", "before", "damaged"):
                parts[key].append(crops[key])
            parts["seed"].append(np.full(n, plan.corpus_seed, np.int32))
            parts["recipe"].append(np.full(n, RECIPES.index(plan.recipe), np.int8))
    np.savez_compressed(args.out, **{k: np.concatenate(v) for k, v in parts.items()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
