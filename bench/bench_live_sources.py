"""What does our own HLS/DASH client cost next to FFmpeg's HLS demuxer on the same stream?

A finished (VOD) presentation is packaged once by FFmpeg's hls and dash muxers (cached
in bench/.cache/), served from a local HTTP server on 127.0.0.1, and read to its end
by each variant, in rounds with the order rotated:

- `ffmpeg-hls`: `ffmpeg:URL.m3u8`, FFmpeg's own HLS demuxer (one container, in-process)
- `ours-hls`:   our HLS client (httpx fetch thread + a pipe into one PyAV demuxer + a decode thread)
- `ours-dash`:  our DASH client (one pipe and decode thread per representation)

Each variant decodes every frame (one decoder thread, like `threads=1`); the figures
are medians of wall time and of process CPU time (all threads), reported as ratios to
`ffmpeg-hls` measured in the same run.

    .venv/bin/python bench/bench_live_sources.py --seconds 30 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
from fractions import Fraction

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from peers.http_origin import HttpOrigin  # noqa: E402
from peers.packager import LivePackager  # noqa: E402
from streamqc.media import AudioChunk, VideoFrame  # noqa: E402
from streamqc.sources import SourceOptions, open_media  # noqa: E402
from streamqc.synth.spec import VideoSpec  # noqa: E402

VERSION = 1
SPEC = VideoSpec(640, 360, Fraction(25))


def package(folder: pathlib.Path, seconds: float) -> None:
    marker = folder / f"done-v{VERSION}-{seconds:g}"
    if marker.exists():
        return
    for fmt, target, options in (
        ("hls", folder / "hls" / "index.m3u8", {"hls_time": "2", "hls_list_size": "0",
                                                 "hls_segment_filename": str(folder / "hls" / "seg%05d.ts")}),
        ("dash", folder / "dash" / "manifest.mpd", {"seg_duration": "2", "use_template": "1", "use_timeline": "1",
                                                    "adaptation_sets": "id=0,streams=v id=1,streams=a"}),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        packager = LivePackager(target, fmt, options, segment_s=2.0, video=SPEC, preroll_s=1e9)
        packager.scenario.duration_s = seconds
        packager.start()
        packager._thread.join()
    marker.write_text("ok")


def run_once(url: str) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    frames = 0
    with open_media(url, SourceOptions(threads=1)) as reader:
        for buffer in reader:
            if isinstance(buffer, (VideoFrame, AudioChunk)):
                frames += isinstance(buffer, VideoFrame)
    return time.perf_counter() - wall, time.process_time() - cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core (default: not pinned)")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    folder = ROOT / "bench" / ".cache" / "live-sources"
    package(folder, args.seconds)
    origin = HttpOrigin(folder).start()
    variants = {"ffmpeg-hls": "ffmpeg:" + origin.url("hls/index.m3u8"),
                "ours-hls": origin.url("hls/index.m3u8"),
                "ours-dash": origin.url("dash/manifest.mpd")}
    names = list(variants)
    results: dict[str, list[tuple[float, float, int]]] = {n: [] for n in names}
    try:
        for r in range(args.repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                results[name].append(run_once(variants[name]))
    finally:
        origin.close()
    base_wall = statistics.median(w for w, _, _ in results["ffmpeg-hls"])
    base_cpu = statistics.median(c for _, c, _ in results["ffmpeg-hls"])
    print(f"{args.seconds:g} s of {SPEC.width}x{SPEC.height}p25 H.264 + AAC, 2 s segments, "
          f"{args.repeats} rounds, medians; ratios to ffmpeg-hls in this run")
    print("| variant | frames | wall s | CPU s | wall ratio | CPU ratio | x real time |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for name in names:
        wall = statistics.median(w for w, _, _ in results[name])
        cpu = statistics.median(c for _, c, _ in results[name])
        frames = results[name][0][2]
        summary[name] = {"wall_s": wall, "cpu_s": cpu, "frames": frames,
                         "wall_ratio": wall / base_wall, "cpu_ratio": cpu / base_cpu}
        print(f"| {name} | {frames} | {wall:.2f} | {cpu:.2f} | {wall / base_wall:.2f} | {cpu / base_cpu:.2f} | "
              f"{args.seconds / wall:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "repeats": args.repeats, "variants": summary}, indent=2))


if __name__ == "__main__":
    main()
