"""video.black: the picture is black, also with a small logo or a bug on it.

A frame is black when nearly all of it sits at the black level AND that dark part is
flat. The flatness test is what separates a black screen from a dark scene: a night
shot has most pixels near black too, but with visible texture in them, while a black
frame from an encoder or a dead source varies by a level or two at most. The bright
remainder (a logo, a clock) may cover up to `max_logo_fraction` of the picture.

Flat is measured on the middle 80 % of the dark pixels (their 10th to 90th percentile,
as a deviation), so the anti-aliased rim of a logo does not count as detail, and across
the picture as well as within it. A dark scene can be smooth and low in contrast where
it is lit by little (a night street, a dim room: a pixel deviation of 2-3 levels), but
its regions still differ: lit and unlit parts, a horizon, a pool of light. Black is one
level everywhere, whatever that level is (a "black" slate is often coded at luma 20-30,
not 16). So the means of the picture's dark regions (32x32 pixels) must also sit within
`max_spread_levels` of one another (again the range of their middle 80 %).
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
    # deviation of the dark pixels (from their 10th-90th percentiles); above it there is
    # a scene: the noise on a black picture is a level or two
    max_detail_levels: float = 2.0
    # spread (10th to 90th percentile) of the means of the dark 32x32-pixel regions; above
    # it the darkness varies across the picture: a dim scene, not a black one
    max_spread_levels: float = 5.0
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
        # The spread of the middle 80 % of the dark pixels, as a standard deviation
        # (p90 - p10 = 2.56 sigma for noise): the anti-aliased rim of a logo, a few
        # pixels in the tails, does not count as detail; the texture of a scene does.
        values = small[dark]
        counts = np.cumsum(np.bincount(values - values.min()))
        low, high = np.searchsorted(counts, (0.1 * count, 0.9 * count))
        detail = float(high - low) / 2.56
        if detail > o.max_detail_levels:
            return False, fraction, detail
        return self.spread(small, limit) <= o.max_spread_levels, fraction, detail

    @staticmethod
    def spread(small: np.ndarray, limit: int) -> float:
        """Levels between the 10th and 90th percentile of the means of the regions (8x8
        working pixels, 32x32 source pixels) that are dark throughout."""
        rows, cols = small.shape[0] // 8, small.shape[1] // 8
        blocks = small[: rows * 8, : cols * 8].reshape(rows, 8, cols, 8)
        dark = blocks.max(axis=(1, 3)) <= limit
        if np.count_nonzero(dark) < 5:
            return 0.0  # too small a picture to judge regions: the pixel detail decides
        means = blocks.mean(axis=(1, 3), dtype=np.float32)[dark]
        low, high = np.percentile(means, (10, 90))
        return float(high - low)

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
