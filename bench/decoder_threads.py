"""Does a report depend on the decoder's thread count?

`check` lets FFmpeg choose the decoder threads, so the same file is decoded with 3
threads on a 2-core machine and 9 on an 8-core one. On undamaged input frame threading
gives the same pictures; on damaged input it need not, and a detector that reads the
pictures the decoder gave back can then report differently from machine to machine.
This checks every clip in the real media folder at several thread counts and prints,
per clip, the defect kinds (severity above info) found at each; `DIFF` marks a clip
whose kinds differ between thread counts.

    nice .venv/bin/python bench/decoder_threads.py                 # 1,2,3,4,6,8 threads; ~3 min on 2 cores
    nice .venv/bin/python bench/decoder_threads.py --threads 1,6 --repeats 3 --only tsduck-test

Several passes (`--repeats`) show what timing changes too: on damaged input the
frame-threaded decoders' output also depends on which thread finishes first.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from streamqc.check import check_input
from streamqc.errors import StreamQCError
from streamqc.sources.reader import SourceOptions
from streamqc.synth.clips import default_media_dir

MEDIA_SUFFIXES = {".ts", ".mp4", ".webm", ".avi", ".mpg", ".wav", ".ogg", ".mp3", ".flac", ".m3u8"}


def defect_kinds(clip: pathlib.Path, threads: int) -> list[str]:
    try:
        result = check_input(str(clip), source=SourceOptions(threads=threads))
    except StreamQCError:
        return ["unreadable"]
    return sorted({e.kind for e in result.events if e.severity.value != "info"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=pathlib.Path, default=default_media_dir())
    parser.add_argument("--threads", default="1,2,3,4,6,8", help="decoder thread counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="passes at each thread count")
    parser.add_argument("--only", default="", help="clips whose path contains this")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    clips = sorted(p for p in args.media.rglob("*") if p.suffix in MEDIA_SUFFIXES and args.only in str(p))
    if not clips:
        raise SystemExit(f"no media under {args.media} (set STREAMQC_MEDIA or --media)")
    differing = 0
    for clip in clips:
        runs = {f"{t}" + (f"#{r}" if args.repeats > 1 else ""): defect_kinds(clip, t)
                for t in counts for r in range(args.repeats)}
        same = len({tuple(kinds) for kinds in runs.values()}) == 1
        differing += not same
        print("same" if same else "DIFF", clip.relative_to(args.media), json.dumps(runs), flush=True)
    print(f"{differing} of {len(clips)} clips differ between thread counts {args.threads}")


if __name__ == "__main__":
    main()
