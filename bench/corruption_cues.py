"""How well do candidate pixel cues for video.corruption separate damaged pictures from clean ones?

For every picture video.corruption would look at (6 a second, plus the decoder's corrupt
ones) of every case of one or more labelled corpora (`streamqc synth`), compute a few
cues and report, per cue: the AUC (chance that a damaged picture scores above a clean
one; 0.5 is chance) and the recall at zero false alarms (damaged pictures scoring above
every clean picture of the corpora). A picture is damaged when it lies in a
`video.corruption` label. This ranks cues before any detector logic (runs, baselines,
merging) is built on them; a cue with no recall at zero false alarms cannot carry a
detector that must stay quiet on clean low-bitrate encodes.

    nice .venv/bin/python bench/corruption_cues.py /tmp/corr-s11 /tmp/corr-lb12

Cues (each "grid minus lines": the share on the 16-pixel macroblock grid minus the same
share on the 8-pixel lines halfway between, so that coding blockiness, which breaks both,
cancels):
- seams: the detector's own score (blocks touched by seams).
- temporal_edges: segments of the grid where the difference with the previous analysed
  picture steps (20 levels, 3x the gradient beside): lost data changes whole blocks.
- temporal_cutoff: blocks whose difference with the previous picture steps on 3 or 4
  sides (a block that changed on its own).
- long_break: the longest horizontal boundary: share of its segments that break (a
  decoder conceals from the first lost macroblock to the end of the slice, in raster order).
- edge_smear: share of 16-pixel segments along a picture edge where the 16-pixel strip is
  smeared (gradient across the strip under half the gradient along it: content entering
  the picture predicted from a stale reference), minus the stream's median of the last
  12 pictures (no grid: not "minus lines").
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

from streamqc.detectors.base import FrameSampler
from streamqc.detectors.corruption import MB, CorruptionDetector
from streamqc.media import VideoFrame
from streamqc.sources import open_media

STEP = 4  # samples along each boundary, as the detector
PER_SEGMENT = MB // STEP


def boundary_steps(picture: np.ndarray, offset: int) -> tuple[np.ndarray, ...]:
    """Per 16-pixel segment of the horizontal and vertical boundaries at `offset` + 16k:
    (step across, twice the mean gradient beside) for each direction."""
    p = picture[offset:, offset:].astype(np.int32)
    rows, cols = p.shape[0] // MB, p.shape[1] // MB
    band = np.abs(np.diff(p[MB - 2: rows * MB - 2].reshape(rows - 1, MB, -1)[:, :4, : cols * MB: STEP], axis=1))
    n = band.shape[2] // PER_SEGMENT
    h = sum(band[:, :, k: n * PER_SEGMENT: PER_SEGMENT] for k in range(PER_SEGMENT))
    strip = np.abs(np.diff(p[: rows * MB: STEP, MB - 2: cols * MB - 2].reshape(-1, cols - 1, MB)[:, :, :4], axis=2))
    n = strip.shape[0] // PER_SEGMENT
    v = sum(strip[k: n * PER_SEGMENT: PER_SEGMENT] for k in range(PER_SEGMENT))
    return h[:, 1], h[:, 0] + h[:, 2], v[:, :, 1], v[:, :, 0] + v[:, :, 2]


def broken(across: np.ndarray, beside2: np.ndarray, step_levels: float, ratio: float) -> np.ndarray:
    return (2 * across > beside2 + 2 * step_levels * PER_SEGMENT) & (2 * across > ratio * beside2)


def cutoff_share(steps: tuple[np.ndarray, ...]) -> float:
    bh, bv = broken(steps[0], steps[1], 20, 3), broken(steps[2], steps[3], 20, 3)
    sides = np.zeros((bh.shape[0] + 1, bh.shape[1]), np.uint8)
    sides[:-1] += bh
    sides[1:] += bh
    sides[:, :-1] += bv
    sides[:, 1:] += bv
    return float((sides >= 3).mean())


def edge_share(steps: tuple[np.ndarray, ...]) -> float:
    bh, bv = broken(steps[0], steps[1], 20, 3), broken(steps[2], steps[3], 20, 3)
    return float((bh.sum() + bv.sum()) / (bh.size + bv.size))


def long_break(steps: tuple[np.ndarray, ...]) -> float:
    b = broken(steps[0], steps[1], 10, 2) & (steps[1] >= 2 * 6 * PER_SEGMENT)
    return float(b.mean(axis=1).max()) if b.size else 0.0


def smeared_edge_share(luma: np.ndarray) -> float:
    best = 0.0
    width = MB
    for strip in (luma[:, :width], luma[:, -width:], luma[:width].T, luma[-width:].T):
        strip = strip.astype(np.int16)
        n = (strip.shape[0] - 1) // MB * MB
        across = np.abs(np.diff(strip[:n], axis=1)).reshape(n // MB, MB, -1).mean(axis=(1, 2))
        along = np.abs(np.diff(strip[: n + 1], axis=0)).reshape(n // MB, MB, -1).mean(axis=(1, 2))
        best = max(best, float(((along >= 3) & (across < 0.5 * along)).mean()))
    return best


def cues(path: Path) -> list[tuple[float, dict[str, float]]]:
    detector = CorruptionDetector()
    sampler = FrameSampler(detector.options.analysis_fps)
    previous: np.ndarray | None = None
    smear_history: deque[float] = deque(maxlen=12)
    out = []
    with open_media(str(path)) as reader:
        for frame in reader:
            if not isinstance(frame, VideoFrame) or not (sampler.wants(frame) or frame.corrupt):
                continue
            luma = frame.luma.astype(np.int16) >> (frame.bit_depth - 8)
            seams = float((detector.corruption_map(frame) > 0).mean()) - 2 * float((detector.corruption_map(frame, MB // 2) > 0).mean())
            row = {"seams": seams, "long_break": long_break(boundary_steps(luma, 0)) - long_break(boundary_steps(luma, MB // 2))}
            smear = smeared_edge_share(luma)
            row["edge_smear"] = smear - statistics.median(smear_history) if smear_history else 0.0
            smear_history.append(smear)
            if previous is not None and previous.shape == luma.shape:
                diff = luma - previous
                grid, lines = boundary_steps(diff, 0), boundary_steps(diff, MB // 2)
                row["temporal_edges"] = edge_share(grid) - edge_share(lines)
                row["temporal_cutoff"] = cutoff_share(grid) - 2 * cutoff_share(lines)
            previous = luma
            out.append((frame.time, row))
    return out


def main(corpora: list[str]) -> None:
    # per cue: clean pictures (None) and damaged ones by how they were damaged
    scores: dict[str, dict[str | None, list[float]]] = defaultdict(lambda: defaultdict(list))
    for corpus in corpora:
        for meta_path in sorted(Path(corpus).glob("*.json")):
            meta = json.loads(meta_path.read_text())
            if "labels" not in meta:
                continue  # the manifest
            spans = [(lab["start"], lab["end"]) for lab in meta["labels"] if lab["kind"] == "video.corruption"]
            how = "baked" if "baked-in" in meta.get("content", "") else "packets"
            for time, row in cues(meta_path.with_name(meta["file"])):
                damaged = any(start - 0.02 <= time < end for start, end in spans)
                for name, value in row.items():
                    scores[name][how if damaged else None].append(value)
            print(f"  {meta['id']}", file=sys.stderr, flush=True)
    print(f"{'cue':16} {'damage':8} {'damaged':>8} {'clean':>6} {'AUC':>6} {'recall@0FA':>11}")
    for name, by in scores.items():
        neg = np.array(by[None])
        for how in ("packets", "baked"):
            pos = np.array(by[how])
            if not len(pos) or not len(neg):
                continue
            auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
            print(f"{name:16} {how:8} {len(pos):8} {len(neg):6} {auc:6.3f} {float((pos > neg.max()).mean()):11.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: corruption_cues.py CORPUS [CORPUS ...]")
    main(sys.argv[1:])
