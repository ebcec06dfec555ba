"""video.black: the picture is black, also with a small logo or a bug on it.

A frame is black when nearly all of it sits at the black level AND that dark part is
flat. The flatness test is what separates a black screen from a dark scene: a night
shot has most pixels near black too, but with visible texture in them, while a black
frame from an encoder or a dead source varies by a level or two at most. The bright
remainder (a logo, a clock) may cover up to `max_logo_fraction` of the picture.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamqc.detectors.base import Detector, FrameSampler, RunTracker, duration_event
from streamqc.events import Event
from streamqc.media import VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class BlackOptions:
    min_duration_s: float = 2.0
    analysis_fps: float = 15.0  # pictures looked at per second, at most (0: every frame)
    black_margin_levels: int = 20  # a pixel within this many 8-bit levels above the black level is dark
    max_logo_fraction: float = 0.10  # the non-dark part may cover at most this fraction of the picture
    max_detail_levels: float = 3.0  # standard deviation of the dark pixels; above it there is a scene
    major_after_s: float = 5.0
    critical_after_s: float = 30.0


class BlackDetector(Detector):
    name = "black"
    Options = BlackOptions
    accepts = (VideoFrame,)

    def __init__(self, options: BlackOptions | None = None) -> None:
        super().__init__(options)
        self._run = RunTracker(self.options.min_duration_s)
        self._sampler = FrameSampler(self.options.analysis_fps)
        self._last_small = None  # the last analysed picture's working copy, for measure()

    def measure(self) -> dict[str, float]:
        """Mean luma (8-bit levels) of the last analysed picture, for the analytics store."""
        return {} if self._last_small is None else {"luma_mean": round(float(self._last_small.mean()), 2)}

    def judge(self, frame: VideoFrame) -> tuple[bool, float, float]:
        """(is black, dark fraction, detail of the dark part in levels)."""
        o = self.options
        small = frame.small
        limit = frame.black_level + o.black_margin_levels
        dark = small <= limit
        count = int(np.count_nonzero(dark))
        fraction = count / small.size
        if fraction < 1.0 - o.max_logo_fraction:
            return False, fraction, float("nan")
        values = small[dark].astype(np.float32)
        detail = float(values.std())
        return detail <= o.max_detail_levels, fraction, detail

    def feed(self, frame: VideoFrame) -> list[Event]:
        if not self._sampler.wants(frame):
            if self._run.start is not None:
                self._run.last_end = frame.time + frame.duration
            return []
        self._last_small = frame.small
        black, _, _ = self.judge(frame)
        closed = self._run.update(frame.time, black, frame.time + frame.duration)
        events = [self._event(*closed)] if closed else []
        reached = self._run.reached()
        if reached:
            events.append(duration_event("video.black", *reached, self.options, ongoing=True))
        return events

    def finish(self, end: float) -> list[Event]:
        closed = self._run.finish(end)
        return [self._event(*closed)] if closed else []

    def _event(self, start: float, end: float) -> Event:
        return duration_event("video.black", start, end, self.options)
