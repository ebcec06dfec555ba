"""Are the moments baked-in damage appears and vanishes visible as motion-compensated changes?

Baked damage (a damaged decode re-encoded cleanly) leaves no decoder flag and, inside an
episode, moves with the clean motion around it. What is left are its two transitions: the
picture where stale or smeared blocks appear, and the one where the source's next
keyframe repairs them. This measures, on every decoded picture of labelled corpora, the
corpus labels' own rule applied between consecutive pictures: the share of 16x16 blocks
of picture t that picture t-1 moved by a smooth optical flow does not explain
(`streamqc.synth.damage.unexplained_blocks`), and three ways to tell damage from clean
change:

- share: the unexplained share itself;
- spike: the share minus the larger of its two neighbours' (a transition is one picture,
  occlusion by a moving object lasts);
- back: at spikes of 0.02 or more, the part of the unexplained blocks that a picture up to
  64 frames earlier does explain (a repaired region returns to what it was before the
  damage; new content does not).

Scene cuts (share over 0.85) are left out. For each cue: each label's best score within
its span (0.05 s slack) against every clean picture's (0.3 s away from labels and their
ignore zones), and how many labels score above the largest clean score of the corpora.

    nice .venv/bin/python bench/corruption_transitions.py /tmp/vc-s21 --recipe corrupt_baked --recipe calm --recipe lowbitrate
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from streamqc.media import VideoFrame
from streamqc.sources import open_media
from streamqc.synth.damage import unexplained_blocks

CUT_SHARE = 0.85
SPIKE_FOR_BACK = 0.02
LOOK_BACK = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def transitions(case_json: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """(case, picture times, per picture [share, spike, back])."""
    case = json.loads(case_json.read_text())
    pictures, times = [], []
    # The project's reader puts pictures on the clock the labels use (a TS case starts at 1.4 s of PTS).
    with open_media(str(case_json.with_name(case["file"]))) as reader:
        for frame in reader:
            if isinstance(frame, VideoFrame):
                pictures.append((frame.luma >> (frame.bit_depth - 8)).astype(np.uint8))
                times.append(frame.time)
    masks = [np.zeros(1, bool)] + [unexplained_blocks(pictures[i - 1], pictures[i]) for i in range(1, len(pictures))]
    share = np.array([float(m.mean()) for m in masks])
    neighbours = np.maximum(np.r_[1.0, share[:-1]], np.r_[share[1:], 1.0])
    spike = share - neighbours
    back = np.zeros(len(share))
    for i in np.flatnonzero((spike >= SPIKE_FOR_BACK) & (share <= CUT_SHARE)):
        for k in LOOK_BACK:
            if i - k < 0:
                break
            explained = masks[i] & ~unexplained_blocks(pictures[i - k], pictures[i])
            back[i] = max(back[i], explained.sum() / max(1, masks[i].sum()))
    scores = np.stack([share, spike, back], axis=1)
    scores[share > CUT_SHARE] = -1.0
    return case, np.array(times), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--recipe", action="append", help="only cases of this recipe (repeatable)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    cases = [p for corpus in args.corpora for p in sorted(corpus.glob("*-c*.json"))
             if not args.recipe or json.loads(p.read_text())["recipe"] in args.recipe]
    label_best: list[np.ndarray] = []
    clean: list[np.ndarray] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for case, times, scores in pool.map(transitions, cases):
            labels = [lab for lab in case["labels"] if lab["kind"] == "video.corruption"]
            ignored = [z for z in case.get("ignore", []) if z["kind"] == "video.corruption"]
            near = np.zeros(len(times), bool)
            for span in labels + ignored:
                near |= (times >= span["start"] - 0.3) & (times <= span["end"] + 0.3)
            clean.append(scores[~near])
            worst = scores[~near].max(axis=0) if (~near).any() else np.full(3, np.nan)
            found = []
            for lab in labels:
                inside = (times >= lab["start"] - 0.05) & (times <= lab["end"] + 0.05)
                best = scores[inside].max(axis=0) if inside.any() else np.full(3, -1.0)
                label_best.append(best)
                found.append(f"{lab['start']:.2f}s area {lab['details']['area']:.2f}: " + " ".join(f"{v:.2f}" for v in best))
            print(f"{case['id']} {case['recipe']:<14} clean max " + " ".join(f"{v:.2f}" for v in worst)
                  + ("  | " + "; ".join(found) if found else ""))
    everything = np.concatenate(clean) if clean else np.zeros((0, 3))
    best = np.array(label_best).reshape(-1, 3)
    print(f"\n{len(best)} labels, {len(everything)} clean pictures (cue columns: share spike back)")
    for column, name in enumerate(("share", "spike", "back")):
        # back is measured at spikes only: its clean figures are those pictures'
        clean_scores = everything[everything[:, 1] >= SPIKE_FOR_BACK, column] if name == "back" else everything[:, column]
        ceiling = clean_scores.max() if len(clean_scores) else 0.0
        above = int((best[:, column] > ceiling).sum())
        quantiles = np.percentile(best[:, column], [25, 50, 75]) if len(best) else []
        print(f"{name:>6}: labels above the largest clean score ({ceiling:.3f}): {above}/{len(best)}; "
              f"labels' quartiles {np.round(quantiles, 3).tolist()}; clean 99th percentile "
              f"{np.percentile(clean_scores, 99) if len(clean_scores) else 0:.3f} (of {len(clean_scores)})")


if __name__ == "__main__":
    main()
