#!/usr/bin/env python
"""Throughput of `streamqc check` against decode-only PyAV and FFmpeg's detect filters.

One run:
  1. makes (once, cached in bench/.cache/) a 720p30 H.264 + AAC MPEG-TS reference of
     moving procedural content, and prints what it really is (an ffprobe-like summary
     read back with PyAV) after checking it is what it claims;
  2. runs every variant in a fresh subprocess per repetition, pinned to one core with
     the decoders on one thread, alternating the variants round by round (order rotated
     each round); each subprocess times its own work with perf_counter and with its CPU
     time (interpreter start-up and imports are not timed; opening the input is). On a
     shared machine the wall clock counts the time the core was lent to others: quote
     the CPU-time ratios there;
  3. times every detector's feed() (thread CPU time) over whole decode passes in one
     pinned process, next to decode-only passes in the same process;
  4. prints medians and ratios (and writes them as JSON with --json).

The streamqc measured is a snapshot of src/ taken at the start (--code head: the last
commit, the default; worktree: uncommitted edits too; live: no snapshot), so commits
made by others during the run do not mix code versions.

    .venv/bin/python bench/bench_check.py [--seconds 60] [--repeats 5] [--json out.json]

Variants:
  decode      demux + decode both tracks (PyAV, threads=1), the luma plane as a numpy
              view per picture and `to_ndarray()` per audio frame: the floor any
              in-process monitor pays.
  check       streamqc.check.check_input(path, source=SourceOptions(threads=1)) with
              every detector on (the defaults).
  ffmpeg      the same decode feeding FFmpeg's analogous filter chain through PyAV's
              filter graph: freezedetect + blackdetect on video, silencedetect on
              audio, metadata read from every output frame.
  decode-bare as `decode` but without the numpy views: shows what the views cost.
  ffmpeg-ebur128 (optional) as `ffmpeg` plus ebur128=peak=true: streamqc's loudness
              detector's counterpart.

See bench/README.md for how to read the output and the numbers measured here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Issue 3: with every detector on, check keeps >= 0.80 of decode-only throughput (the
# foundation's 0.85 held for its first nine detectors; see bench/README.md).
TARGET_CHECK_VS_DECODE = 0.80

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"

WIDTH, HEIGHT, FPS = 1280, 720, 30
VIDEO_KBPS = 3000
GOP = 2 * FPS  # 2 s
BFRAMES = 3
AUDIO_RATE = 48000
AUDIO_KBPS = 128
REFERENCE_VERSION = 2  # bump when the generator changes, to make a new cached file

VARIANTS = ("decode", "check", "ffmpeg", "decode-bare", "ffmpeg-ebur128")
DEFAULT_VARIANTS = ("decode", "check", "ffmpeg", "decode-bare")
VARIANT_HELP = {
    "decode": "decode-only PyAV: demux + decode video and audio (threads=1), luma numpy view + audio to_ndarray()",
    "check": "streamqc check_input(threads=1), every detector on",
    "ffmpeg": "same decode -> PyAV filter graph: freezedetect+blackdetect (video), silencedetect (audio)",
    "decode-bare": "decode-only PyAV, no numpy views (what the views cost)",
    "ffmpeg-ebur128": "as ffmpeg, plus ebur128=peak=true on audio (streamqc's loudness counterpart)",
}
FFMPEG_CHAIN_NOTE = (
    "FFmpeg chain = the analogous filters only: freezedetect (n=-60dB d=2) + blackdetect (d=2) on video, "
    "silencedetect (n=-60dB d=2) on audio. It has no counterpart of streamqc's dropout, clipping, loudness, "
    "decode_error, discontinuity, format_change or missing_track detectors (no second silencedetect, "
    "ebur128, astats or blockdetect); the optional variant ffmpeg-ebur128 adds ebur128=peak=true."
)


# --------------------------------------------------------------------------------------
# The reference input
# --------------------------------------------------------------------------------------


def reference_path(seconds: int) -> Path:
    return CACHE / f"ref_v{REFERENCE_VERSION}_720p30_h264_aac_{seconds}s.ts"


def _value_noise(rng, height: int, width: int, cell: int):
    """Smooth random texture: a random grid every `cell` pixels, bilinearly interpolated."""
    import numpy as np

    gh, gw = height // cell + 2, width // cell + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32) / cell
    xs = np.arange(width, dtype=np.float32) / cell
    y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return top + (bottom - top) * fy


def _texture(rng, height: int, width: int, octaves: tuple[int, ...]):
    import numpy as np

    out = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for i, cell in enumerate(octaves):
        weight = 0.6**i
        out += weight * _value_noise(rng, height, width, cell)
        weight_sum += weight
    out /= weight_sum
    return out


def make_reference(path: Path, seconds: int) -> None:
    """720p30 H.264 (libx264 veryfast, ~3 Mb/s, 2 s GOP, B-frames) + AAC stereo 48 kHz in MPEG-TS.

    Content: a Lissajous pan over a large procedural texture (smooth multi-octave noise
    with hard-edged stripes and boxes), scene cuts every 7 s to another part of the
    texture, moving bright/dark shapes, per-frame grain; audio of a chord with a slow
    envelope, a sweeping tone, and pink-ish noise, around -20 dBFS.
    """
    import av
    import numpy as np

    rng = np.random.default_rng(20240601)
    big_h, big_w = 2 * HEIGHT, 3 * WIDTH
    print(f"making the reference ({seconds} s) -> {path}", flush=True)
    t0 = time.perf_counter()
    tex = _texture(rng, big_h, big_w, (256, 96, 32, 9, 3))
    tex = 16 + 219 * (tex - tex.min()) / (tex.max() - tex.min())
    # hard edges: stripes and boxes, like graphics, text and architecture do
    yy, xx = np.mgrid[0:big_h, 0:big_w]
    stripes = ((xx // 24 + yy // 160) % 2 == 0) & ((yy // 320) % 3 == 1)
    tex[stripes] = 0.5 * tex[stripes] + 100
    for _ in range(120):
        y, x = rng.integers(0, big_h - 120), rng.integers(0, big_w - 200)
        h, w = rng.integers(10, 120), rng.integers(20, 200)
        tex[y : y + h, x : x + w] = rng.uniform(20, 235)
    del yy, xx, stripes
    luma_tex = np.clip(tex, 16, 235).astype(np.uint8)
    chroma = [
        np.clip(128 + 60 * (_texture(rng, big_h // 2, big_w // 2, (128, 40, 12)) - 0.5), 16, 240).astype(np.uint8)
        for _ in range(2)
    ]
    grain = rng.integers(-4, 5, size=(7, HEIGHT, WIDTH), dtype=np.int16)
    shapes = [
        dict(
            y=float(rng.uniform(0, HEIGHT - 100)),
            x=float(rng.uniform(0, WIDTH - 100)),
            vy=float(rng.uniform(-6, 6)),
            vx=float(rng.uniform(-9, 9)),
            h=int(rng.integers(40, 140)),
            w=int(rng.integers(40, 200)),
            level=int(rng.choice([30, 220, 128])),
        )
        for _ in range(5)
    ]
    disk_r = 60
    dy, dx = np.mgrid[-disk_r:disk_r, -disk_r:disk_r]
    disk = dy * dy + dx * dx < disk_r * disk_r

    tmp = path.with_suffix(".tmp.ts")
    container = av.open(str(tmp), "w", format="mpegts")
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.bit_rate = VIDEO_KBPS * 1000
    video.codec_context.gop_size = GOP
    video.options = {
        "preset": "veryfast",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes={BFRAMES}:b-pyramid=normal"
        f":vbv-maxrate={VIDEO_KBPS}:vbv-bufsize={2 * VIDEO_KBPS}",
    }
    audio = container.add_stream("aac", rate=AUDIO_RATE)
    audio.layout = "stereo"
    audio.bit_rate = AUDIO_KBPS * 1000

    # audio: a chord with a slow envelope + a sweeping tone + pink-ish noise, stereo
    n = seconds * AUDIO_RATE
    tt = np.arange(n) / AUDIO_RATE
    chord = sum(np.sin(2 * np.pi * f * tt) for f in (220.0, 277.18, 329.63)) / 3
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * tt / 5.0)
    sweep = np.sin(2 * np.pi * (300 * tt + 40 * np.sin(2 * np.pi * tt / 3) * 3 / (2 * np.pi)))
    white = rng.standard_normal((2, n))
    spectrum = np.fft.rfft(white, axis=1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1))
    pink = np.fft.irfft(spectrum, n=n, axis=1)
    pink /= np.abs(pink).max()
    left = 0.12 * chord * envelope + 0.05 * sweep + 0.05 * pink[0]
    right = 0.12 * chord * envelope[::-1] + 0.04 * np.roll(sweep, 480) + 0.05 * pink[1]
    pcm = np.stack([left, right]).astype(np.float32)
    audio_step = 1024
    audio_next = 0  # next audio sample to encode: audio is muxed along with the video, as a broadcast mux does

    def encode_audio_until(sample: int) -> None:
        nonlocal audio_next
        while audio_next < min(sample, n):
            block = np.ascontiguousarray(pcm[:, audio_next : audio_next + audio_step])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = audio_next
            for packet in audio.encode(frame):
                container.mux(packet)
            audio_next += audio_step

    n_frames = seconds * FPS
    max_y, max_x = big_h - HEIGHT, big_w - WIDTH
    for i in range(n_frames):
        t = i / FPS
        scene = int(t // 7)
        phase = scene * 1.7
        cy = 0.5 + 0.45 * np.sin(0.21 * t + phase)
        cx = 0.5 + 0.45 * np.sin(0.13 * t * 1.9 + 2 * phase)
        oy, ox = int(cy * max_y), int(cx * max_x)
        oy -= oy % 2
        ox -= ox % 2
        y = luma_tex[oy : oy + HEIGHT, ox : ox + WIDTH].astype(np.int16)
        y += grain[i % len(grain)]
        for s in shapes:
            s["y"] += s["vy"]
            s["x"] += s["vx"]
            if not 0 <= s["y"] <= HEIGHT - s["h"]:
                s["vy"] = -s["vy"]
                s["y"] = min(max(s["y"], 0), HEIGHT - s["h"])
            if not 0 <= s["x"] <= WIDTH - s["w"]:
                s["vx"] = -s["vx"]
                s["x"] = min(max(s["x"], 0), WIDTH - s["w"])
            sy, sx = int(s["y"]), int(s["x"])
            y[sy : sy + s["h"], sx : sx + s["w"]] = s["level"]
        # a disk circling the centre
        py = int(HEIGHT / 2 + 200 * np.sin(2 * np.pi * t / 4)) - disk_r
        px = int(WIDTH / 2 + 400 * np.cos(2 * np.pi * t / 4)) - disk_r
        region = y[py : py + 2 * disk_r, px : px + 2 * disk_r]
        region[disk] = 235 - region[disk] // 2
        frame_yuv = np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8)
        frame_yuv[:HEIGHT] = np.clip(y, 16, 235)
        u = chroma[0][oy // 2 : oy // 2 + HEIGHT // 2, ox // 2 : ox // 2 + WIDTH // 2]
        v = chroma[1][oy // 2 : oy // 2 + HEIGHT // 2, ox // 2 : ox // 2 + WIDTH // 2]
        frame_yuv[HEIGHT : HEIGHT + HEIGHT // 4] = u.reshape(HEIGHT // 4, WIDTH)
        frame_yuv[HEIGHT + HEIGHT // 4 :] = v.reshape(HEIGHT // 4, WIDTH)
        frame = av.VideoFrame.from_ndarray(frame_yuv, format="yuv420p")
        frame.pts = i
        for packet in video.encode(frame):
            container.mux(packet)
        encode_audio_until((i + 1) * AUDIO_RATE // FPS)
    for packet in video.encode(None):
        container.mux(packet)
    encode_audio_until(n)

    for packet in audio.encode(None):
        container.mux(packet)
    container.close()
    tmp.rename(path)
    print(f"made in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.1f} MB)", flush=True)


def probe(path: Path, decode_video: bool) -> dict:
    """An ffprobe-like description read back with PyAV (packets; pictures too when asked)."""
    import av

    out: dict = {"file": str(path), "size_bytes": path.stat().st_size}
    with av.open(str(path)) as container:
        out["format"] = container.format.name
        out["duration_s"] = round(container.duration / 1e6, 3) if container.duration else None
        out["bit_rate_kbps"] = round(container.bit_rate / 1000) if container.bit_rate else None
        vs, aus = container.streams.video[0], container.streams.audio[0]
        vctx, actx = vs.codec_context, aus.codec_context
        out["video"] = {
            "codec": vctx.name,
            "profile": vctx.profile,
            "width": vctx.width,
            "height": vctx.height,
            "pix_fmt": vctx.pix_fmt,
            "fps": float(vs.average_rate or vs.guessed_rate),
            "has_b_frames": vctx.has_b_frames,
        }
        out["audio"] = {
            "codec": actx.name,
            "profile": actx.profile,
            "sample_rate": actx.sample_rate,
            "channels": actx.channels,
            "layout": actx.layout.name,
            "sample_fmt": actx.format.name if actx.format else None,
        }
        vbytes = abytes = vpackets = apackets = 0
        keyframes: list[int] = []
        reordered = 0  # packets shown before an earlier-decoded picture: B-frames
        max_pts = None
        vfirst = vlast = afirst = alast = None
        for packet in container.demux(vs, aus):
            if packet.size == 0:
                continue
            if packet.stream is vs:
                if packet.is_keyframe:
                    keyframes.append(vpackets)
                vpackets += 1
                vbytes += packet.size
                if packet.pts is not None:
                    if max_pts is not None and packet.pts < max_pts:
                        reordered += 1
                    max_pts = packet.pts if max_pts is None else max(max_pts, packet.pts)
                    t = float(packet.pts * packet.time_base)
                    vfirst = t if vfirst is None else min(vfirst, t)
                    vlast = t if vlast is None else max(vlast, t)
            else:
                apackets += 1
                abytes += packet.size
                t = float(packet.pts * packet.time_base)
                afirst = t if afirst is None else min(afirst, t)
                alast = t + (packet.duration or 0) * float(packet.time_base)
        vdur = (vlast - vfirst + 1 / FPS) if vfirst is not None else 0
        adur = (alast - afirst) if afirst is not None else 0
        gops = sorted({b - a for a, b in zip(keyframes, keyframes[1:])})
        out["video"].update(
            frames=vpackets,
            duration_s=round(vdur, 3),
            bit_rate_kbps=round(vbytes * 8 / vdur / 1000) if vdur else None,
            keyframes=len(keyframes),
            gop_frames=gops,
            reordered_packets=reordered,
        )
        out["audio"].update(
            packets=apackets,
            duration_s=round(adur, 3),
            bit_rate_kbps=round(abytes * 8 / adur / 1000) if adur else None,
        )
    if decode_video:
        counts: dict[str, int] = {}
        with av.open(str(path)) as container:
            vs = container.streams.video[0]
            vs.codec_context.thread_type = "AUTO"
            for frame in container.decode(vs):
                kind = frame.pict_type
                name = getattr(kind, "name", None) or _PICT_TYPES.get(int(kind), str(kind))
                counts[name] = counts.get(name, 0) + 1
        out["video"]["picture_types"] = counts
    return out


_PICT_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}  # AVPictureType


def verify(info: dict, seconds: int) -> list[str]:
    v, a = info["video"], info["audio"]
    problems = []
    expect = [
        (info["format"] == "mpegts", f"format {info['format']}"),
        (v["codec"] == "h264", f"video codec {v['codec']}"),
        ((v["width"], v["height"]) == (WIDTH, HEIGHT), f"size {v['width']}x{v['height']}"),
        (abs(v["fps"] - FPS) < 0.01, f"fps {v['fps']}"),
        (v["frames"] == seconds * FPS, f"{v['frames']} video frames, expected {seconds * FPS}"),
        (v["gop_frames"] in ([GOP], []), f"GOP {v['gop_frames']}, expected [{GOP}]"),
        (v["reordered_packets"] > 0, "no B-frames (no reordered packets)"),
        (v["bit_rate_kbps"] and 0.8 * VIDEO_KBPS <= v["bit_rate_kbps"] <= 1.15 * VIDEO_KBPS, f"video {v['bit_rate_kbps']} kb/s"),
        (a["codec"] == "aac", f"audio codec {a['codec']}"),
        (a["sample_rate"] == AUDIO_RATE and a["channels"] == 2, f"audio {a['sample_rate']} Hz {a['channels']} ch"),
        (abs(a["duration_s"] - seconds) < 0.2, f"audio {a['duration_s']} s"),
    ]
    if "picture_types" in v:
        expect.append((v["picture_types"].get("B", 0) > 0, f"picture types {v['picture_types']}"))
    for ok, what in expect:
        if not ok:
            problems.append(what)
    return problems


def print_probe(info: dict) -> None:
    v, a = info["video"], info["audio"]
    print(f"Input #0, {info['format']}, from '{info['file']}':")
    print(f"  Duration: {info['duration_s']} s, bitrate: {info['bit_rate_kbps']} kb/s, size {info['size_bytes'] / 1e6:.1f} MB")
    types = v.get("picture_types")
    types_text = ", ".join(f"{k} {n}" for k, n in sorted(types.items())) if types else "?"
    print(
        f"  Stream video: {v['codec']} ({v['profile']}), {v['pix_fmt']}, {v['width']}x{v['height']}, {v['fps']:g} fps, "
        f"{v['bit_rate_kbps']} kb/s, {v['frames']} frames, GOP {v['gop_frames']} ({v['keyframes']} keyframes), "
        f"pictures: {types_text}, reordered packets {v['reordered_packets']}"
    )
    print(
        f"  Stream audio: {a['codec']} ({a['profile']}), {a['sample_rate']} Hz, {a['layout']}, {a['sample_fmt']}, "
        f"{a['bit_rate_kbps']} kb/s, {a['packets']} packets, {a['duration_s']} s"
    )


def ensure_reference(seconds: int) -> tuple[Path, dict]:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = reference_path(seconds)
    meta_path = path.with_suffix(".probe.json")
    if not path.exists():
        make_reference(path, seconds)
        meta_path.unlink(missing_ok=True)
    meta = None
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("size_bytes") != path.stat().st_size:
            meta = None
    if meta is None:  # decode once to count picture types; packets are re-read every run
        meta = probe(path, decode_video=True)
        meta_path.write_text(json.dumps(meta, indent=1))
    info = probe(path, decode_video=False)
    info["video"]["picture_types"] = meta["video"]["picture_types"]
    print_probe(info)
    problems = verify(info, seconds)
    if problems:
        raise SystemExit(f"the reference is not what it claims: {'; '.join(problems)} (delete {path} to remake it)")
    return path, info


# --------------------------------------------------------------------------------------
# Measured work (runs in a pinned subprocess)
# --------------------------------------------------------------------------------------


def _pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def _open_single_threaded(path: str):
    import av

    container = av.open(path)
    vs, aus = container.streams.video[0], container.streams.audio[0]
    for s in (vs, aus):
        s.codec_context.thread_type = "SLICE"  # as streamqc's reader does for threads=1
        s.codec_context.thread_count = 1
    return container, vs, aus


def _flush(ctx) -> list:
    """Frames still in a decoder; PyAV's demux already ends with a flush packet per stream."""
    import av.error

    try:
        return ctx.decode(None)
    except av.error.EOFError:
        return []


def work_decode(path: str, views: bool) -> dict:
    import numpy as np

    container, vs, aus = _open_single_threaded(path)
    vctx, actx = vs.codec_context, aus.codec_context
    nv = na = samples = 0
    luma_sum = 0
    for packet in container.demux(vs, aus):
        is_video = packet.stream is vs
        frames = (vctx if is_video else actx).decode(packet)
        if is_video:
            for frame in frames:
                nv += 1
                if views:
                    plane = frame.planes[0]
                    luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
                    luma_sum += luma.shape[0]
        else:
            for frame in frames:
                na += 1
                if views:
                    samples += frame.to_ndarray().shape[1]
                else:
                    samples += frame.samples
    for frame in _flush(vctx):
        nv += 1
    for frame in _flush(actx):
        na += 1
        samples += frame.samples
    container.close()
    return {"video_frames": nv, "audio_frames": na, "audio_samples": samples}


def work_check(path: str) -> dict:
    from streamqc.check import check_input
    from streamqc.sources import SourceOptions

    result = check_input(path, source=SourceOptions(threads=1))
    return {
        "media_duration_s": result.duration,
        "events": sorted({e.kind for e in result.events}),
        "event_count": len(result.events),
    }


def work_ffmpeg(path: str, loudness: bool = False) -> dict:
    import av
    import av.error

    container, vs, aus = _open_single_threaded(path)
    vctx, actx = vs.codec_context, aus.codec_context
    graphs: dict[bool, av.filter.Graph] = {}
    tags: dict[str, int] = {}
    pulled = 0

    def build(frame, is_video: bool):
        graph = av.filter.Graph()
        if is_video:
            src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base)
            nodes = [src, graph.add("freezedetect", "n=-60dB:d=2"), graph.add("blackdetect", "d=2"), graph.add("buffersink")]
        else:
            src = graph.add_abuffer(
                sample_rate=frame.sample_rate,
                format=frame.format.name,
                layout=frame.layout.name,
                channels=frame.layout.nb_channels,
                time_base=frame.time_base,
            )
            nodes = [src, graph.add("silencedetect", "n=-60dB:d=2")]
            if loudness:
                nodes.append(graph.add("ebur128", "peak=true:metadata=1"))
            nodes.append(graph.add("abuffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph

    def drain(graph) -> None:
        nonlocal pulled
        while True:
            try:
                out = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            pulled += 1
            metadata = out.metadata
            if metadata:
                for key in metadata:
                    tags[key] = tags.get(key, 0) + 1

    def push(frames, is_video: bool) -> None:
        for frame in frames:
            graph = graphs.get(is_video)
            if graph is None:
                graph = graphs[is_video] = build(frame, is_video)
            graph.push(frame)
            drain(graph)

    for packet in container.demux(vs, aus):
        is_video = packet.stream is vs
        push((vctx if is_video else actx).decode(packet), is_video)
    push(_flush(vctx), True)
    push(_flush(actx), False)
    for graph in graphs.values():
        graph.push(None)
        drain(graph)
    container.close()
    return {"frames_out": pulled, "metadata_keys": tags}


def _time_luma_sampling(clock, acc: dict) -> None:
    """Wrap VideoFrame's luma subsampling helpers (`sample()`, the cached `small`) to time them.

    The copies are made lazily, by whichever detector first asks, and only on the
    frames a detector looks at; timing them where they happen (outermost call only)
    lets the breakdown show them on their own line and take them out of the
    detector that triggered them.
    """
    import functools

    from streamqc.media import VideoFrame

    def timed(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if acc["depth"]:
                return fn(*args, **kwargs)
            acc["depth"] = 1
            t = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                acc["s"] += clock() - t
                acc["calls"] += 1
                acc["depth"] = 0

        return wrapper

    names = []
    if callable(VideoFrame.__dict__.get("sample")):
        VideoFrame.sample = timed(VideoFrame.__dict__["sample"])
        names.append("sample()")
    small = VideoFrame.__dict__.get("small")
    if isinstance(small, functools.cached_property):
        prop = functools.cached_property(timed(small.func))
        prop.__set_name__(VideoFrame, "small")
        VideoFrame.small = prop
        names.append("small")
    acc["names"] = names


def work_breakdown(path: str, passes: int) -> dict:
    """Per-detector feed() cost over whole decode passes, in this one process.

    Each pass replays check_input's loop (open_media -> DetectorChain routes) with the
    thread's CPU clock (time.thread_time) read around every feed() call: on a shared
    machine a wall clock would charge a detector for the time the core was lent to
    another process. The clock's own cost, calibrated here, is subtracted. The luma
    subsampling copies (VideoFrame.sample()/small, made lazily on the frames the
    detectors look at) are timed where they happen and shown on their own line, not
    charged to whichever detector first asks. Decode-only passes alternate with the
    instrumented ones and give the baseline, on the same CPU clock.
    """
    from streamqc.media import AudioChunk, StreamNote, VideoFrame
    from streamqc.pipeline import DetectorChain
    from streamqc.sources import SourceOptions, open_media

    pc = time.thread_time
    # the clock's own cost per timed call, to subtract
    # (what an empty timed interval reads, averaged: the part of two clock reads inside it)
    n_cal = 100_000
    empty = 0.0
    for _ in range(n_cal):
        t = pc()
        empty += pc() - t
    timer_cost = empty / n_cal
    sampling = {"s": 0.0, "calls": 0, "depth": 0}
    _time_luma_sampling(pc, sampling)

    runs = []
    decode_runs = []
    for _ in range(passes):
        c0 = pc()
        work_decode(path, views=True)
        decode_runs.append(pc() - c0)
        chain = DetectorChain.from_options(None)
        routes = chain._routes
        spent = {d.name: 0.0 for d in chain.detectors}
        calls = {d.name: 0 for d in chain.detectors}
        sampling["s"], sampling["calls"] = 0.0, 0
        counts = {"video": 0, "audio": 0, "note": 0}
        t_start = pc()
        with open_media(path, SourceOptions(threads=1)) as reader:
            for buffer in reader:
                kind = type(buffer)
                if kind is VideoFrame:
                    counts["video"] += 1
                elif kind is AudioChunk:
                    counts["audio"] += 1
                else:
                    counts["note"] += 1
                for detector in routes[kind]:
                    inner = sampling["s"]
                    t = pc()
                    detector.feed(buffer)
                    spent[detector.name] += pc() - t - (sampling["s"] - inner)
                    calls[detector.name] += 1
        end = buffer.time if isinstance(buffer, StreamNote) else 0.0
        chain.finish(end)
        total = pc() - t_start
        for name in spent:
            spent[name] = max(0.0, spent[name] - calls[name] * timer_cost)
        sampling_s = max(0.0, sampling["s"] - sampling["calls"] * timer_cost)
        runs.append(
            {
                "total_s": total,
                "small_s": sampling_s,
                "sampling_calls": sampling["calls"],
                "detectors_s": spent,
                "calls": calls,
                "counts": counts,
            }
        )
    return {"timer_cost_s": timer_cost, "decode_s": decode_runs, "runs": runs, "sampling_helpers": sampling.get("names", [])}


def worker_main(args) -> None:
    _pin(args.cpu)
    # everything the work needs is imported before the clock starts
    import av  # noqa: F401
    import av.filter  # noqa: F401
    import numpy  # noqa: F401
    # The loudness meter imports scipy.signal on its first audio (so the monitor's main
    # process, which never meters, does not pay for it): a one-off start-up cost like the
    # other imports, not throughput.
    import scipy.signal  # noqa: F401

    import streamqc.check  # noqa: F401
    import streamqc.pipeline  # noqa: F401

    wall0, cpu0 = time.perf_counter(), time.process_time()
    if args.worker == "decode":
        out = work_decode(args.path, views=True)
    elif args.worker == "decode-bare":
        out = work_decode(args.path, views=False)
    elif args.worker == "check":
        out = work_check(args.path)
    elif args.worker == "ffmpeg":
        out = work_ffmpeg(args.path)
    elif args.worker == "ffmpeg-ebur128":
        out = work_ffmpeg(args.path, loudness=True)
    elif args.worker == "breakdown":
        out = work_breakdown(args.path, args.passes)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    out["seconds"] = time.perf_counter() - wall0  # the wall clock, as asked
    out["cpu_seconds"] = time.process_time() - cpu0  # CPU time: what preemption by other processes does not inflate
    out["cpu"] = sorted(os.sched_getaffinity(0))
    out["streamqc_from"] = str(Path(streamqc.check.__file__).resolve().parent)
    print("RESULT " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------


def run_worker(name: str, path: Path, cpu: int, passes: int = 1, code_dir: Path | None = None) -> dict:
    env = dict(os.environ)
    if code_dir is not None:  # measure the snapshot, not a tree others are editing
        env["PYTHONPATH"] = str(code_dir) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--path", str(path)]
    cmd += ["--cpu", str(cpu), "--passes", str(passes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[len("RESULT ") :])
            if code_dir is not None and not out["streamqc_from"].startswith(str(code_dir.resolve())):
                raise RuntimeError(f"worker {name} imported streamqc from {out['streamqc_from']}, not the snapshot {code_dir}")
            return out
    raise RuntimeError(f"worker {name} failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _median(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the reference (default 60)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the variants (default 5)")
    parser.add_argument("--breakdown-passes", type=int, default=3, help="passes for the per-detector costs (default 3; 0 skips)")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma list of {', '.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--code",
        choices=("head", "worktree", "live"),
        default="head",
        help="the streamqc measured: head = src/ of the last commit (default), worktree = a snapshot of src/ as it is "
        "now, uncommitted edits included; both are copied at the start so that edits made during the run do not mix "
        "code versions; live = import from src/ in every run",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    code = _code_version()
    code["mode"] = args.code
    code_dir = None if args.code == "live" else _snapshot_src(args.code)
    if code_dir is not None:
        code["snapshot_sha256"] = _tree_hash(code_dir / "streamqc")
    code["label"] = code["head"] if args.code == "head" else code["head"] + (" + uncommitted src/" if code["src_dirty"] else "")
    print(
        f"streamqc code measured: {code['label']} ("
        + {"head": "src/ of the commit", "worktree": "snapshot of the working tree's src/", "live": "live src/"}[args.code]
        + (f", sha256 {code['snapshot_sha256'][:12]})" if code_dir else ")")
    )
    try:
        _run(args, variants, cpu, code, code_dir)
    finally:
        if code_dir is not None:
            shutil.rmtree(code_dir, ignore_errors=True)


def _run(args, variants: list[str], cpu: int, code: dict, code_dir: Path | None) -> None:
    path, info = ensure_reference(args.seconds)
    path.read_bytes()  # into the page cache before the first timed run
    n_video = info["video"]["frames"]
    print(f"\n{os.cpu_count()} cores on this machine; every measured process pinned to cpu {cpu}, decoders threads=1")
    print(f"{args.repeats} rounds of {', '.join(variants)} (order rotated each round), a fresh process per run")
    print("each run reports wall seconds (perf_counter) / CPU seconds (process_time)")
    load_before = os.getloadavg()

    rounds: list[dict[str, dict]] = []
    extras: dict[str, dict] = {}
    t_bench = time.perf_counter()
    for r in range(args.repeats):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        this_round = {}
        for name in order:
            out = run_worker(name, path, cpu, code_dir=code_dir)
            this_round[name] = {"wall": out["seconds"], "cpu": out["cpu_seconds"]}
            extras.setdefault(name, out)
        rounds.append(this_round)
        print(
            f"  round {r + 1}: " + "  ".join(f"{n} {this_round[n]['wall']:.2f}/{this_round[n]['cpu']:.2f}s" for n in variants),
            flush=True,
        )

    breakdown = None
    if args.breakdown_passes > 0:
        print(
            f"\nper-detector costs: {args.breakdown_passes} instrumented passes (and as many decode-only) in one pinned process",
            flush=True,
        )
        breakdown = run_worker("breakdown", path, cpu, passes=args.breakdown_passes, code_dir=code_dir)
    load_after = os.getloadavg()

    results = summarise(variants, rounds, n_video, args.seconds, breakdown)
    results.update(
        code=code,
        reference=info,
        machine={
            "cores": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "pinned_cpu": cpu,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "python": platform.python_version(),
            "pyav": _version("av"),
            "numpy": _version("numpy"),
            "ffmpeg_libs": _ffmpeg_versions(),
        },
        settings={
            "seconds": args.seconds,
            "repeats": args.repeats,
            "variants": variants,
            "breakdown_passes": args.breakdown_passes,
        },
        check_events=extras.get("check", {}).get("events"),
        ffmpeg_metadata_keys={v: extras[v].get("metadata_keys") for v in ("ffmpeg", "ffmpeg-ebur128") if v in extras},
        ffmpeg_chain_note=FFMPEG_CHAIN_NOTE,
        wall_s=round(time.perf_counter() - t_bench, 1),
    )
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.json}")


RATIOS = (
    # key, numerator, denominator: throughput of `den` relative to `num` = t_num / t_den
    ("check_vs_decode", "decode", "check"),
    ("check_vs_ffmpeg", "ffmpeg", "check"),
    ("check_vs_ffmpeg_ebur128", "ffmpeg-ebur128", "check"),
    ("ffmpeg_vs_decode", "decode", "ffmpeg"),
    ("decode_vs_decode_bare", "decode-bare", "decode"),
)


def summarise(variants, rounds, n_video, seconds, breakdown) -> dict:
    out: dict = {"video_frames": n_video, "clocks": {}}
    for clock in ("wall", "cpu") if rounds else ():
        table = {}
        for name in variants:
            values = [r[name][clock] for r in rounds]
            med = _median(values)
            table[name] = {
                "median_s": med,
                "min_s": min(values),
                "max_s": max(values),
                "fps": n_video / med,
                "x_realtime": seconds / med,
                "samples_s": values,
            }
        ratios = {}
        for key, num, den in RATIOS:
            if num not in variants or den not in variants:
                continue
            per_round = [r[num][clock] / r[den][clock] for r in rounds]
            ratios[key] = {
                "median": _median(per_round),  # median of the ratios paired within each round
                "min": min(per_round),
                "max": max(per_round),
                "of_medians": table[num]["median_s"] / table[den]["median_s"],
                "per_round": per_round,
            }
        out["clocks"][clock] = {"variants": table, "ratios": ratios}
    if breakdown:
        out["breakdown"] = summarise_breakdown(breakdown)
    return out


def summarise_breakdown(raw: dict) -> dict:
    runs = raw["runs"]
    decode_s = _median(raw["decode_s"])
    counts = runs[0]["counts"]
    nv = counts["video"]
    rows = {}

    def row(values: list[float], calls: int) -> dict:
        med = _median(values)
        return {
            "median_s": med,
            "calls": calls,
            "us_per_call": 1e6 * med / calls if calls else None,
            "us_per_video_frame": 1e6 * med / nv,
            "pct_of_decode": 100 * med / decode_s,
        }

    helpers = "/".join(raw.get("sampling_helpers") or ["small"])
    rows[f"luma subsampling ({helpers})"] = row([r["small_s"] for r in runs], runs[0]["sampling_calls"])
    for name in runs[0]["detectors_s"]:
        rows[name] = row([r["detectors_s"][name] for r in runs], runs[0]["calls"][name])
    detectors_total = [r["small_s"] + sum(r["detectors_s"].values()) for r in runs]
    reader = [r["total_s"] - d for r, d in zip(runs, detectors_total)]
    return {
        "clock": "thread CPU time",
        "decode_only_s": decode_s,
        "decode_only_samples_s": raw["decode_s"],
        "instrumented_pass_s": _median([r["total_s"] for r in runs]),
        "reader_and_loop_s": _median(reader),
        "reader_overhead_over_decode_s": _median(reader) - decode_s,
        "detectors_total_s": _median(detectors_total),
        "counts": counts,
        "timer_cost_us": raw["timer_cost_s"] * 1e6,
        "rows": rows,
    }


RATIO_LABELS = {
    "check_vs_decode": f"check / decode-only   (t_decode / t_check, target >= {TARGET_CHECK_VS_DECODE})",
    "check_vs_ffmpeg": "check / FFmpeg chain  (t_ffmpeg / t_check)",
    "check_vs_ffmpeg_ebur128": "check / FFmpeg chain + ebur128 (t_ffmpeg-ebur128 / t_check)",
    "ffmpeg_vs_decode": "FFmpeg chain / decode (t_decode / t_ffmpeg)",
    "decode_vs_decode_bare": "decode / decode-bare  (t_bare / t_decode: cost of the numpy views)",
}


def print_report(res: dict) -> None:
    m = res["machine"]
    code = res["code"]
    print(
        f"\n== {res['settings']['seconds']} s 720p30 H.264 + AAC, one core (cpu {m['pinned_cpu']}) "
        f"of a {m['cores']}-core {m['cpu_model']}, "
        f"{res['settings']['repeats']} rounds; streamqc {code['label']} =="
    )
    titles = {"wall": "wall clock (perf_counter)", "cpu": "CPU time of the process (process_time)"}
    for clock, title in ((c, titles[c]) for c in res["clocks"]):
        table, ratios = res["clocks"][clock]["variants"], res["clocks"][clock]["ratios"]
        print(f"\n-- {title} --")
        print(f"{'variant':<15} {'median s':>9} {'min..max s':>13} {'fps':>7} {'x realtime':>10}  what")
        for name, row in table.items():
            print(
                f"{name:<15} {row['median_s']:>9.2f} {row['min_s']:>6.2f}..{row['max_s']:<6.2f} "
                f"{row['fps']:>7.0f} {row['x_realtime']:>10.1f}  {VARIANT_HELP[name]}"
            )
        print("throughput ratios: median of the per-round ratios [min..max], then the ratio of the medians")
        for key, value in ratios.items():
            spread = f"[{value['min']:.3f}..{value['max']:.3f}]"
            print(f"  {RATIO_LABELS[key]:<68} {value['median']:.3f}  {spread}  {value['of_medians']:.3f}")
        if "check_vs_decode" in ratios:
            verdict = "meets" if ratios["check_vs_decode"]["median"] >= TARGET_CHECK_VS_DECODE else "MISSES"
            print(f"  -> check {verdict} the {TARGET_CHECK_VS_DECODE} target on this clock")
    print(f"\nnote: {res['ffmpeg_chain_note']}")
    if res.get("check_events") is not None:
        print(
            f"check found on the reference: {res['check_events'] or 'nothing'}; "
            "FFmpeg metadata keys seen: "
            + "; ".join(
                f"{v}: {len(keys)} kinds, {sorted(keys)[:4]}" for v, keys in (res.get("ffmpeg_metadata_keys") or {}).items()
            )
        )
    bd = res.get("breakdown")
    if bd:
        c = bd["counts"]
        print(
            f"\n== per-detector cost: thread CPU time in one pinned process, "
            f"median of {len(bd['decode_only_samples_s'])} passes; "
            f"{c['video']} video frames, {c['audio']} audio chunks, {c['note']} notes; "
            f"clock cost {bd['timer_cost_us']:.2f} us per timed call subtracted =="
        )
        print(f"{'part':<34} {'median s':>9} {'calls':>6} {'us/call':>8} {'us/vframe':>10} {'% decode':>9}")
        for name, row in bd["rows"].items():
            print(
                f"{name:<34} {row['median_s']:>9.4f} {row['calls']:>6} {row['us_per_call']:>8.1f} "
                f"{row['us_per_video_frame']:>10.1f} {row['pct_of_decode']:>8.2f}%"
            )
        nv = c["video"]
        dec = bd["decode_only_s"]
        for label, value in (
            ("detectors + subsampling", bd["detectors_total_s"]),
            ("reader + loop, no detectors", bd["reader_and_loop_s"]),
            ("  of which over decode-only", bd["reader_overhead_over_decode_s"]),
            ("decode-only (same process)", dec),
        ):
            print(f"{label:<34} {value:>9.4f} {'':>6} {'':>8} {1e6 * value / nv:>10.1f} {100 * value / dec:>8.2f}%")
    load = f"{m['loadavg_before'][0]:.2f} / {m['loadavg_after'][0]:.2f}"
    print(f"\nload average before/after: {load}; bench wall {res['wall_s']} s")


def _snapshot_src(mode: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="streamqc-bench-src-"))
    root = HERE.parent
    if mode == "head":
        archive = subprocess.run(["git", "-C", str(root), "archive", "HEAD", "src/streamqc"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target), "--strip-components=1"], input=archive, check=True)
    else:
        shutil.copytree(root / "src" / "streamqc", target / "streamqc", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _code_version() -> dict:
    root = HERE.parent

    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"head": git("rev-parse", "--short", "HEAD") or "?", "src_dirty": bool(git("status", "--porcelain", "--", "src"))}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001
        return "?"


def _ffmpeg_versions() -> dict:
    try:
        import av

        return {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
    except Exception:  # noqa: BLE001
        return {}


if __name__ == "__main__":
    main()
