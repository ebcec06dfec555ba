"""Measure, on the written file, where frames and samples really landed.

Labels are on the programme clock (frame i at i / fps, sample n at n / rate). The
clock `streamqc check` reports is the decoded file's: 0 = pts of the first decoded video
frame (first audio sample when there is no video). Encoders and muxers add delays of
their own (AAC priming of 1024 samples, AC-3's 256, B-frame reorder, a TS start offset),
so rather than trusting a table of them, decode the file and measure:

- video: pts of every video packet relative to the first decoded frame must be i / fps;
- audio: cross-correlate the decoded audio with the programme that was encoded, which
  gives the decoded time of programme sample n directly, whatever the codec did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
from scipy import signal


@dataclasses.dataclass(slots=True)
class Timing:
    origin_s: float  # container pts of the first decoded video frame (or audio sample)
    video_pts_s: np.ndarray  # presentation times of video packets, sorted, relative to origin
    audio_start_s: float | None  # first decoded audio sample, relative to origin
    audio: np.ndarray | None  # decoded audio, float32 (n, channels)
    audio_rate: int | None
    first_frame_corrupt: bool = False

    def audio_time_of(self, sample_index: int) -> float:
        assert self.audio_start_s is not None and self.audio_rate
        return self.audio_start_s + sample_index / self.audio_rate


def probe(path: str | Path) -> Timing:
    """Decode just enough of `path` to know its clock; decode all of its audio."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0] if c.streams.video else None
        as_ = c.streams.audio[0] if c.streams.audio else None
        first_video: float | None = None
        corrupt = False
        pts: list[float] = []
        chunks: list[np.ndarray] = []
        audio_first: float | None = None
        streams = [s for s in (vs, as_) if s is not None]
        for packet in c.demux(*streams):
            if packet.stream is vs:
                if packet.pts is not None:
                    pts.append(float(packet.pts * packet.time_base))
                if first_video is None:
                    try:
                        for f in packet.decode():
                            if first_video is None:
                                first_video = float(f.pts * f.time_base)
                                corrupt = bool(f.is_corrupt)
                    except av.FFmpegError:
                        pass
            elif packet.stream is as_:
                try:
                    for f in packet.decode():
                        if audio_first is None:
                            audio_first = float(f.pts * f.time_base)
                        chunks.append(_as_float(f))
                except av.FFmpegError:
                    pass
        if vs is not None and first_video is None:
            # Frames held by the decoder until the end (very short files).
            try:
                for f in vs.codec_context.decode(None):
                    first_video = float(f.pts * f.time_base)
                    break
            except av.FFmpegError:
                pass
        rate = as_.codec_context.sample_rate if as_ is not None else None
    origin = first_video if first_video is not None else (audio_first or 0.0)
    audio = np.concatenate(chunks) if chunks else None
    return Timing(
        origin_s=origin,
        video_pts_s=np.sort(np.asarray(pts)) - origin,
        audio_start_s=None if audio_first is None else audio_first - origin,
        audio=audio,
        audio_rate=rate,
        first_frame_corrupt=corrupt,
    )


def _as_float(frame: av.AudioFrame) -> np.ndarray:
    arr = frame.to_ndarray()
    if frame.format.is_planar:
        arr = arr.T
    else:
        arr = arr.reshape(-1, len(frame.layout.channels))
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    return arr.astype(np.float32)


def audio_offset(timing: Timing, programme: np.ndarray, rate: int, search_s: float = 0.15) -> float | None:
    """Decoded time minus programme time of the programme's samples, in seconds.

    0 when sample n plays at n / rate on the check clock. None when no stretch of the
    programme is loud enough to correlate.
    """
    if timing.audio is None or timing.audio_start_s is None or len(programme) == 0:
        return None
    src = programme.mean(axis=1)
    dec = timing.audio.mean(axis=1)
    # A track that stops early (a lost audio track) holds only the programme before the
    # stop: look for the loudest stretch there, not in audio that was never muxed.
    src = src[: max(0, len(dec) + int(round(timing.audio_start_s * rate)))]
    win = min(rate, len(src) // 4)
    if win < rate // 10:
        return None
    # The loudest second of the programme: correlation peaks are sharpest there.
    step = win // 8
    usable = (len(src) // step) * step
    energy = (src[:usable] ** 2).reshape(-1, step).sum(axis=1)
    energy = np.convolve(energy, np.ones(8), "valid")
    order = np.argsort(energy)[::-1]
    found: list[tuple[float, float]] = []  # (score, offset) per window
    for cand in order[:4]:
        n0 = int(cand * step)
        n0 = min(max(n0, 0), len(src) - win)
        ref = src[n0 : n0 + win]
        if np.sqrt(np.mean(ref * ref)) < 1e-4:
            break
        expect = int(round(n0 - timing.audio_start_s * rate))  # index of n0 in `dec` if offset 0
        pad = int(search_s * rate)
        lo, hi = max(0, expect - pad), min(len(dec), expect + win + pad)
        seg = dec[lo:hi]
        if len(seg) < win:
            continue
        corr = signal.correlate(seg, ref, mode="valid", method="fft")
        csum = np.concatenate([[0.0], np.cumsum(seg.astype(np.float64) ** 2)])
        norm = np.sqrt(np.maximum(csum[win:] - csum[:-win], 0)) * np.sqrt(np.sum(ref * ref)) + 1e-12
        score = corr / norm
        k = int(np.argmax(score))
        if score[k] < 0.5:
            continue
        j = lo + k  # decoded index where programme sample n0 sits
        found.append((float(score[k]), (timing.audio_start_s + j / rate) - n0 / rate))
    if not found:
        return None
    # Repetitive programme (music loops) can peak at a wrong lag in one window; the
    # true lag is the one most windows agree on, then the best-scoring of those.
    offsets = np.array([o for _, o in found])
    votes = [(np.sum(np.abs(offsets - o) < 2 / rate), sc) for sc, o in found]
    best = max(range(len(found)), key=lambda i: votes[i])
    return found[best][1]


def check_video_grid(timing: Timing, fps: float, frames: int, tolerance_s: float = 0.0012) -> None:
    """Raise unless the file has `frames` video frames on the i / fps grid from 0."""
    pts = timing.video_pts_s
    if len(pts) != frames:
        raise AssertionError(f"{len(pts)} video packets, expected {frames}")
    expect = np.arange(frames) / fps
    err = np.abs(pts - expect)
    if err.max() > tolerance_s:
        i = int(np.argmax(err))
        raise AssertionError(f"video frame {i} at {pts[i]:.4f} s, expected {expect[i]:.4f} s")
