"""Synthetic programme encoded in real time into FFmpeg's own live packagers (hls, dash)."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable
from fractions import Fraction

from streamqc.synth.audio import programme
from streamqc.synth.content import MovingObjects
from streamqc.synth.encode import AudioCodec, EncoderSink, VideoCodec
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

# Small pictures keep a real-time encoder at ~20 % of one core.
SMALL_VIDEO = VideoSpec(192, 108, Fraction(25))
AUDIO = AudioSpec(48000, 2)


class LivePackager:
    """Encode `Scenario` ticks paced at media speed into `target` (format `fmt`).

    The first `preroll_s` seconds are written at once, as if the channel had been on
    the air before the test; the rest at the pace of the media. A keyframe starts every
    `segment_s` (the packager cuts there); `long_segment(factor)` withholds keyframes
    so the next segment lasts `factor` segments.
    """

    def __init__(self, target: pathlib.Path, fmt: str, format_options: dict[str, str], segment_s: float = 1.2,
                 seed: int = 1, video: VideoSpec = SMALL_VIDEO, preroll_s: float = 3.0,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.segment_frames = max(1, round(segment_s * float(video.fps)))
        self.video = video
        self.preroll_s = preroll_s
        self.on_tick = on_tick
        self.scenario = Scenario(MovingObjects(video, seed), programme(AUDIO, seed, "music"), duration_s=3600.0)
        self._sink = EncoderSink(target, fmt, (video, VideoCodec("h264", 300_000, gop_frames=100_000)),
                                 (AUDIO, AudioCodec("aac", 64_000)), format_options=format_options)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._long: tuple[int, int] = (-1, -1)  # (first frame, frame after) of a long segment
        self._last_key = 0
        self.frames_written = 0
        self.keyframes_written = 0  # the segment being encoded now is number keyframes_written - 1
        self._thread = threading.Thread(target=self._run, name="packager", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def long_segment(self, factor: float = 3.0) -> int:
        """Make the next segment `factor` segments long; returns its number."""
        with self._lock:
            start = self._next_key()
            self._long = (start, start + round(factor * self.segment_frames))
            return self.keyframes_written

    @property
    def current_segment(self) -> int:
        return max(0, self.keyframes_written - 1)

    def _next_key(self) -> int:
        return self._last_key + self.segment_frames

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            for tick in self.scenario.ticks():
                delay = t0 + tick.time_s - self.preroll_s - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if self._stop.is_set():
                    break
                with self._lock:
                    first, after = self._long
                    key = tick.index == 0 or (tick.index >= self._next_key() and not first < tick.index < after)
                    if key:
                        self._last_key = tick.index
                        self.keyframes_written += 1
                self._sink.write_audio(tick.audio_start, tick.audio)
                self._sink.write_video(tick.index, tick.picture, keyframe=key)
                self.frames_written = tick.index + 1
                if self.on_tick is not None and tick.index % 5 == 0:
                    self.on_tick()
        finally:
            self._sink.close()
            if self.on_tick is not None:
                self.on_tick()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
