#!/usr/bin/env python
"""The av.sync face table: real talking heads with their soundtrack shifted by known amounts.

Every face clip of the corpus recipe `av_sync_face` (GRID, video-retalking, SadTalker,
from STREAMQC_MEDIA) is encoded once per offset (H.264 + AAC in MPEG-TS, by the corpus
generator, so the true offset is the labelled one plus whatever the encoder moved the
audio by), then checked by the av_sync detector alone. Per clip and offset it reports
the windows, how many abstained, and the |offset error| of those that did not.

    STREAMQC_MEDIA=../shared/media .venv/bin/python bench/av_sync_faces.py --out /tmp/faces \\
        [--offsets -400,-200,-100,-40,40,100,200,400] [--markdown table.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from streamqc.detectors.av_sync import AvSyncDetector, WindowEstimate
from streamqc.media import StreamNote
from streamqc.pipeline import DetectorChain
from streamqc.sources import SourceOptions, open_media
from streamqc.synth import clips, corpus, recipes
from streamqc.synth.encode import AudioCodec, VideoCodec
from streamqc.synth.recipes import CasePlan, face_case
from streamqc.synth.spec import AudioSpec

AUDIO = AudioSpec(48000, 2)


def windows_of(path: Path) -> list[WindowEstimate]:
    """The detector's per-window estimates over one file (what `check` would feed it)."""
    detector = AvSyncDetector()
    chain = DetectorChain([detector])
    end = 0.0
    with open_media(str(path), SourceOptions()) as reader:
        for buffer in reader:
            if isinstance(buffer, StreamNote):
                if buffer.kind == "end":
                    end = max(end, buffer.time)
                continue
            end = max(end, buffer.time + buffer.duration)
            chain.feed(buffer)
    chain.finish(end)
    return detector.windows


def build(out: Path, media: Path, rel: str, offset_ms: int) -> tuple[Path, float] | None:
    """Encode one clip with the shift; return the file and the true offset (ms)."""
    name = f"{Path(rel).stem}_{offset_ms:+d}".replace("+", "p").replace("-", "m")
    recipe = f"_face_{name}"
    built = face_case(media / rel, float(offset_ms), AUDIO)
    if built is None:
        return None
    recipes.RECIPES[recipe] = lambda plan, rng, media_dir: built
    try:
        plan = CasePlan(name, recipe, 0, "ts", None, VideoCodec("h264", bitrate_bps=1_500_000, gop_frames=50,
                                                                 bframes=2), AUDIO, AudioCodec("aac", 160_000), 0.0)
        labels = json.loads(corpus.build_case(plan, out, media).read_text())
    finally:
        del recipes.RECIPES[recipe]
    moved_ms = 1000.0 * labels["timing"].get("audio_offset_s", 0.0)
    return out / labels["file"], offset_ms + moved_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the encoded cases")
    parser.add_argument("--offsets", default=",".join(str(o) for o in recipes.FACE_OFFSETS_MS))
    parser.add_argument("--clips", default="", help="comma-separated subset of the face clips (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    media = clips.default_media_dir()
    rels = clips.present_face_clips(media)
    if args.clips:
        rels = [r for r in rels if any(part in r for part in args.clips.split(","))]
    if not rels:
        sys.exit(f"no face clips under {media} (set STREAMQC_MEDIA)")
    offsets = [int(o) for o in args.offsets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["| clip | " + " | ".join(f"{o:+d} ms" for o in offsets) + " | abstained | median abs error ms |",
             "|---|" + "---|" * (len(offsets) + 2)]
    all_errors: list[float] = []
    all_windows = all_abstained = 0
    # Per window, as a BT.1359 decision: (truly out of tolerance, said so / said in sync / abstained).
    verdicts = {(out, said): 0 for out in (True, False) for said in ("out", "in", "abstain")}
    limits = AvSyncDetector().options
    for rel in rels:
        cells, errors, windows, abstained = [], [], 0, 0
        for offset in offsets:
            made = build(args.out, media, rel, offset)
            if made is None:
                cells.append("unreadable")
                continue
            path, truth = made
            found = windows_of(path)
            spoke = [w for w in found if w.offset_ms is not None]
            errs = [abs(w.offset_ms - truth) for w in spoke]  # type: ignore[operator]
            truly_out = truth > limits.lag_ms or truth < -limits.lead_ms
            for w in found:
                said = "abstain" if w.offset_ms is None else (
                    "out" if w.offset_ms > limits.lag_ms or w.offset_ms < -limits.lead_ms else "in")
                verdicts[truly_out, said] += 1
            windows += len(found)
            abstained += len(found) - len(spoke)
            errors += errs
            cells.append(f"{statistics.median(errs):.0f}" if errs else "abstain")
            print(f"{rel} {offset:+d} ms: truth {truth:+.1f}, windows "
                  + ", ".join("abstain" if w.offset_ms is None else f"{w.offset_ms:+.0f} ({w.cue} {w.confidence:.2f})"
                              for w in found), flush=True)
        all_errors += errors
        all_windows += windows
        all_abstained += abstained
        median = f"{statistics.median(errors):.0f}" if errors else "-"
        lines.append(f"| {rel} | " + " | ".join(cells) + f" | {abstained}/{windows} | {median} |")
    overall = f"{statistics.median(all_errors):.0f}" if all_errors else "-"
    lines.append(f"| **all** | " + " | ".join("" for _ in offsets) + f" | {all_abstained}/{all_windows} "
                 f"({all_abstained / max(all_windows, 1):.0%}) | **{overall}** |")
    within = sum(e <= 40 for e in all_errors)
    lines += ["", f"{len(all_errors)} windows spoke, {within} of them within 40 ms; as BT.1359 decisions "
              f"(lead > {limits.lead_ms:.0f} ms, lag > {limits.lag_ms:.0f} ms), per window:", "",
              "| truly | said out of sync | said in sync | abstained |", "|---|---|---|---|"]
    for out in (True, False):
        lines.append(f"| {'out of sync' if out else 'in sync'} | " + " | ".join(
            str(verdicts[out, said]) for said in ("out", "in", "abstain")) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
