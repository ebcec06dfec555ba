#!/usr/bin/env python
"""Can a small per-macroblock model find visible corruption? A study, not the detector.

For the given corpus seeds it builds the damaged and clean cases (`corrupt_drop`,
`corrupt_flip`, `corrupt_baked`, `calm`, `lowbitrate`), keeping the generator's map of
visibly damaged 16x16 blocks per frame (corpus.build_case(block_masks=...)), decodes each
written case as `check` does, and computes per-macroblock features on the pictures
video.corruption would analyse (3 a second): seam steps on the 16-pixel grid and on the
8-pixel lines between, the same with the step's sign, detail against the neighbours,
zero-motion change against the previous picture, and frame-wide context. Pictures in the
labels' ignore zones (different from the clean decode but not visibly) are left out;
negative blocks are subsampled. Then, per seed held out in turn, a 32-unit perceptron
(scikit-learn) is trained on the other seeds and its block-level ROC AUC and average
precision are reported.

    STREAMQC_MEDIA=../shared/media nice .venv/bin/python bench/corruption_block_model.py \
        --seed 101 --seed 102 --seed 103 --cases 16 [--data /tmp/corr-blocks.npz]

Needs scikit-learn (`pip install scikit-learn`), which streamqc itself does not.
Findings are in docs/quality.md ("video.corruption").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from streamqc.detectors.base import FrameSampler
from streamqc.media import VideoFrame
from streamqc.sources import open_media
from streamqc.synth import corpus

RECIPES = ("corrupt_drop", "corrupt_flip", "corrupt_baked", "calm", "lowbitrate")
ANALYSIS_FPS = 3.0
NEGATIVE_SHARE = 0.03  # of the negative blocks of a picture kept
MB = 16
FEATURE_STEP = 4
FEATURE_PER = MB // FEATURE_STEP


FEATURES = (
    "seam_top", "seam_bottom", "seam_left", "seam_right", "seam_max", "seams_strong",
    "mid_h", "mid_v", "detail", "detail_neighbours", "still", "still_neighbours",
    "frame_seam", "frame_mid", "frame_still",
    "offset_max", "offsets_strong", "mid_offset", "frame_offset",
    "moved", "moved_neighbours", "motion_break", "frame_moved",
)
SEARCH_CELLS = 2  # motion search on the 4x subsampled pictures: +-2 cells, +-8 pixels


def _boundaries(luma: np.ndarray, first: int, count: int, segments: int,
                axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 16-pixel segment of `count` lines at first + 16k (axis 0: horizontal lines,
    1: vertical), `segments` segments each, from every FEATURE_STEP-th pixel along the
    line: log((step across + 1) / (gradient beside + 1)); the same for the step's mean
    with its sign (a block painted lighter or darker than its neighbour steps one way all
    along; texture steps both ways); and the mean gradient beside."""
    stop = first - 2 + MB * count
    if axis == 0:
        lines = [luma[first - 2 + j : stop + j : MB, : segments * MB : FEATURE_STEP] for j in range(4)]
    else:
        lines = [luma[: segments * MB : FEATURE_STEP, first - 2 + j : stop + j : MB].T for j in range(4)]
    a, b, c, d = (line.astype(np.int16) for line in lines)  # (count, segments * FEATURE_PER)
    step = c - b
    across = np.abs(step).reshape(count, segments, FEATURE_PER).sum(axis=2, dtype=np.int32)
    offset = np.abs(step.reshape(count, segments, FEATURE_PER).sum(axis=2, dtype=np.int32))
    beside = (np.abs(b - a) + np.abs(d - c)).reshape(count, segments, FEATURE_PER).sum(axis=2, dtype=np.int32)
    return (np.log((2.0 * across + FEATURE_PER) / (beside + FEATURE_PER)),
            np.log((2.0 * offset + FEATURE_PER) / (beside + FEATURE_PER)), beside * (0.5 / FEATURE_PER))


def block_features(luma: np.ndarray, small: np.ndarray, previous_small: np.ndarray | None) -> np.ndarray:
    """(rows, cols, len(FEATURES)) float32 for 8-bit luma."""
    rows, cols = luma.shape[0] // MB, luma.shape[1] // MB
    h16, ho16, _ = _boundaries(luma, MB, rows - 1, cols, 0)  # (rows-1, cols)
    v16, vo16, _ = _boundaries(luma, MB, cols - 1, rows, 1)  # (cols-1, rows)
    v16, vo16 = v16.T, vo16.T  # (rows, cols-1)
    h8, ho8, hb8 = _boundaries(luma, MB // 2, rows, cols, 0)  # (rows, cols): through each block's middle
    v8, vo8, vb8 = _boundaries(luma, MB // 2, cols, rows, 1)
    v8, vo8, vb8 = v8.T, vo8.T, vb8.T
    f = np.zeros((rows, cols, len(FEATURES)), np.float32)
    f[1:, :, 0] = h16
    f[:-1, :, 1] = h16
    f[:, 1:, 2] = v16
    f[:, :-1, 3] = v16
    f[:, :, 4] = f[:, :, :4].max(axis=2)
    f[:, :, 5] = (f[:, :, :4] > 0.7).sum(axis=2)
    f[:, :, 6] = h8
    f[:, :, 7] = v8
    detail = np.log1p((hb8 + vb8) * 0.5)
    f[:, :, 8] = detail
    f[:, :, 9] = _neighbour_mean(detail)
    # Zero-motion change against the previous picture, on the shared subsampled copy.
    cell = MB // 4
    if previous_small is not None and previous_small.shape == small.shape:
        sr, sc = min(rows, small.shape[0] // cell), min(cols, small.shape[1] // cell)
        diff = np.abs(small[: sr * cell, : sc * cell] - previous_small[: sr * cell, : sc * cell])
        sad = np.zeros((rows, cols), np.float32)
        row_sums = sum(diff[i::cell] for i in range(cell))  # strided sums: faster than a 4-D reduce
        sad[:sr, :sc] = sum(row_sums[:, j::cell] for j in range(cell)) * (1.0 / (cell * cell))
        still = np.log1p(sad)
    else:
        still = np.zeros((rows, cols), np.float32)
    f[:, :, 10] = still
    f[:, :, 11] = _neighbour_mean(still)
    f[:, :, 12] = f[:, :, 4].mean()
    f[:, :, 13] = np.maximum(h8, v8).mean()
    f[:, :, 14] = still.mean()
    sides = np.zeros((4, rows, cols), np.float32)
    sides[0, 1:], sides[1, :-1], sides[2, :, 1:], sides[3, :, :-1] = ho16, ho16, vo16, vo16
    f[:, :, 15] = sides.max(axis=0)
    f[:, :, 16] = (sides > 0.7).sum(axis=0)
    f[:, :, 17] = np.maximum(ho8, vo8)
    f[:, :, 18] = f[:, :, 15].mean()
    if previous_small is not None and previous_small.shape == small.shape:
        moved, shift = _motion_compensated(small, previous_small, rows, cols)
        f[:, :, 19] = np.log1p(moved)
        f[:, :, 20] = _neighbour_mean(f[:, :, 19])
        f[:, :, 21] = np.abs(shift - np.stack([_neighbour_mean(shift[..., k]) for k in range(2)], axis=-1)).sum(axis=-1)
        f[:, :, 22] = f[:, :, 19].mean()
    return f


def _motion_compensated(small: np.ndarray, previous: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the smallest mean |difference| with the previous picture over shifts
    of +-SEARCH_CELLS cells, and that shift (dy, dx)."""
    cell, r = MB // 4, SEARCH_CELLS
    sr, sc = min(rows, small.shape[0] // cell), min(cols, small.shape[1] // cell)
    current = small[: sr * cell, : sc * cell]
    padded = np.pad(previous, r, mode="edge")
    best = np.full((rows, cols), np.inf, np.float32)
    shift = np.zeros((rows, cols, 2), np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            moved = padded[r + dy : r + dy + sr * cell, r + dx : r + dx + sc * cell]
            sad = np.abs(current - moved).reshape(sr, cell, sc, cell).mean(axis=(1, 3))
            better = sad < best[:sr, :sc]
            best[:sr, :sc][better] = sad[better]
            shift[:sr, :sc][better] = (dy, dx)
    best[~np.isfinite(best)] = 0.0
    return best, shift


def _neighbour_mean(x: np.ndarray) -> np.ndarray:
    """Mean of the 8 neighbours of each cell (edges repeated)."""
    p = np.pad(x, 1, mode="edge")
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - x) * 0.125


def labelled_pictures(plan: corpus.CasePlan, media: Path | None, analysis_fps: float,
                      copy: Callable[[VideoFrame], np.ndarray] = lambda f: f.small, need_before: bool = False,
                      ) -> Iterator[tuple[VideoFrame, np.ndarray, np.ndarray | None, np.ndarray]]:
    """Build `plan`'s case with its maps of visibly damaged blocks, decode it as `check`
    does, and yield the pictures video.corruption would analyse (`analysis_fps` a second),
    leaving out those in the labels' ignore zones (different from the clean decode, not
    visibly): (frame, `copy` of it (the working copy by default), `copy` of the frame
    before it or None (`need_before`: skip such pictures), its damaged 16x16 blocks). The
    caller must not keep the frame: a decoded frame must not outlive its decoder (PyAV
    hangs at exit)."""
    masks: dict[int, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="corr-case-") as tmp:
        label_path = corpus.build_case(plan, Path(tmp), media, block_masks=masks)
        meta = json.loads(label_path.read_text())
        fps = float(meta["video"]["fps"])
        ignore = [(z["start"], z["end"]) for z in meta["ignore"] if z["kind"] == "video.corruption"]
        sampler = FrameSampler(analysis_fps)
        previous = None
        frame = None
        with open_media(str(label_path.with_name(meta["file"]))) as reader:
            for frame in reader:
                if not isinstance(frame, VideoFrame) or frame.luma.shape[0] < 2 * MB or frame.luma.shape[1] < 2 * MB:
                    continue
                picture = copy(frame)
                before = previous if previous is not None and previous.shape == picture.shape else None
                previous = picture
                if (need_before and before is None) or not sampler.wants(frame):
                    continue
                mask = masks.get(int(round(frame.time * fps)))
                if mask is None and any(a - 0.5 / fps <= frame.time < b for a, b in ignore):
                    continue
                truth = np.zeros((frame.luma.shape[0] // MB, frame.luma.shape[1] // MB), bool)
                if mask is not None:
                    r, c = min(truth.shape[0], mask.shape[0]), min(truth.shape[1], mask.shape[1])
                    truth[:r, :c] = mask[:r, :c]
                yield frame, picture, before, truth
            frame = None


def case_rows(plan: corpus.CasePlan, media: Path | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(plan.seed)
    xs, ys = [], []
    for frame, small, before, truth in labelled_pictures(plan, media, ANALYSIS_FPS):
        luma = frame.luma if frame.bit_depth == 8 else frame.luma >> (frame.bit_depth - 8)
        feats = block_features(luma, small, before)
        damaged = np.zeros(feats.shape[:2], bool)
        r, c = min(damaged.shape[0], truth.shape[0]), min(damaged.shape[1], truth.shape[1])
        damaged[:r, :c] = truth[:r, :c]
        keep = damaged | (rng.random(damaged.shape) < NEGATIVE_SHARE)
        xs.append(feats[keep])
        ys.append(damaged[keep])
    frame = None  # noqa: F841 -- a decoded frame must not outlive its decoder
    if not xs:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, bool)
    return np.concatenate(xs), np.concatenate(ys)


def _job(args: tuple[corpus.CasePlan, str | None]) -> tuple[str, int, np.ndarray, np.ndarray]:
    plan, media = args
    x, y = case_rows(plan, Path(media) if media else None)
    return plan.case_id, plan.corpus_seed, x, y


def build(seeds: list[int], cases: int, media: str | None, jobs: int) -> dict[str, np.ndarray]:
    plans = [p for s in seeds for p in corpus.plan_corpus(s, cases, recipes_only=RECIPES)]
    X, Y, S = [], [], []
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for case_id, seed, x, y in pool.imap_unordered(_job, [(p, media) for p in plans]):
            print(f"{case_id}: {len(y)} blocks, {int(y.sum())} visibly damaged", file=sys.stderr, flush=True)
            X.append(x), Y.append(y), S.append(np.full(len(y), seed, np.int32))
    return {"X": np.concatenate(X), "y": np.concatenate(Y), "seed": np.concatenate(S)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, action="append", required=True)
    ap.add_argument("--cases", type=int, default=16, help="cases per seed")
    ap.add_argument("--data", type=Path, help="reuse (or write) the block data here")
    ap.add_argument("--media", default=os.environ.get("STREAMQC_MEDIA"), help="real clips (default STREAMQC_MEDIA)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if args.data is not None and args.data.is_file():
        data = dict(np.load(args.data))
    else:
        media = args.media if args.media and Path(args.media).is_dir() else None
        data = build(args.seed, args.cases, media, args.jobs)
        if args.data is not None:
            np.savez_compressed(args.data, **data)
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.neural_network import MLPClassifier

    X, y, seeds = data["X"], data["y"].astype(bool), data["seed"]
    print(f"{len(y)} blocks, {int(y.sum())} visibly damaged; features: {', '.join(FEATURES)}")
    spatial = FEATURES.index("moved")
    print(f"{'held out':>9} {'blocks':>7} {'damaged':>8} {'features':>9} {'AUC':>6} {'AP':>6}")
    for held in np.unique(seeds):
        test = seeds == held
        for name, cols in (("spatial", slice(0, spatial)), ("all", slice(None))):
            train, check = X[~test][:, cols], X[test][:, cols]
            mean, scale = train.mean(axis=0), train.std(axis=0) + 1e-6
            model = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-3, max_iter=300, early_stopping=True,
                                  random_state=0)
            model.fit((train - mean) / scale, y[~test])
            p = model.predict_proba((check - mean) / scale)[:, 1]
            print(f"{held:>9} {int(test.sum()):>7} {int(y[test].sum()):>8} {name:>9} "
                  f"{roc_auc_score(y[test], p):6.3f} {average_precision_score(y[test], p):6.3f}")


if __name__ == "__main__":
    main()
