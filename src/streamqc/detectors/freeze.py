"""video.freeze: the picture stops changing.

Each frame is reduced to a thumbnail of block means (16x16 source pixels per block),
which averages away sensor noise and coding noise but keeps any real movement of
something the size of a block. A frame is "still" when it matches the thumbnail of
the frame where the stillness began: comparing with that reference, not with the
previous frame, stops slow pans and gradients from passing as frozen, and a frozen
feed whose keyframes re-encode the same picture stays frozen, because the small shift
a keyframe brings stays under the threshold.

The threshold adapts to the noise: a block has changed when its difference is well
above both an absolute floor and the typical (mean) difference of all blocks.
A picture with more than a few changed blocks, or whose typical difference is itself
large, is moving.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamqc.detectors.base import Detector, FrameSampler, RunTracker, severity_for
from streamqc.events import Event
from streamqc.media import VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class FreezeOptions:
    min_duration_s: float = 2.0  # stillness shorter than this is not reported
    analysis_fps: float = 15.0  # pictures looked at per second, at most (0: every frame)
    block_px: int = 16  # side of the blocks compared, in source pixels
    change_floor_levels: float = 3.0  # a block mean moving less than this (8-bit luma) is unchanged
    noise_factor: float = 6.0  # ... or less than this many noise deviations (from the mean difference)
    max_typical_change_levels: float = 2.5  # a median block change above this is motion everywhere
    max_changed_blocks: int = 1  # more changed blocks than this is motion
    # A still black picture is video.black's to report; one defect, one page.
    black_margin_levels: int = 20
    black_fraction: float = 0.9
    major_after_s: float = 5.0
    critical_after_s: float = 30.0


class FreezeDetector(Detector):
    name = "freeze"
    Options = FreezeOptions
    accepts = (VideoFrame,)

    def __init__(self, options: FreezeOptions | None = None) -> None:
        super().__init__(options)
        self._run = RunTracker(self.options.min_duration_s)
        self._sampler = FrameSampler(self.options.analysis_fps)
        self._reference: np.ndarray | None = None
        self._reference_time = 0.0
        self._reference_black = False

    def thumbnail(self, frame: VideoFrame) -> np.ndarray:
        # 2x2 samples per block: enough to average coding noise down, at a quarter of
        # the memory traffic of the shared 4x4-subsampled copy.
        cell = 2
        sampled = frame.sample(max(1, self.options.block_px // cell))
        rows, cols = sampled.shape[0] // cell, sampled.shape[1] // cell
        area = sampled[: rows * cell, : cols * cell]
        block_sums = area[0::2, 0::2] + area[0::2, 1::2] + area[1::2, 0::2] + area[1::2, 1::2]
        return block_sums.astype(np.float32) * 0.25

    def is_still(self, thumb: np.ndarray, reference: np.ndarray) -> tuple[bool, float]:
        diff = np.abs(thumb - reference)
        if float(diff.max()) <= min(self.options.change_floor_levels, self.options.max_typical_change_levels):
            return True, 0.0  # the common frozen case, without sorting anything
        # The mean absolute difference is the noise scale (0.8 sigma for Gaussian noise); a
        # few moving blocks barely move it, and motion everywhere pushes it over the cap.
        typical = float(diff.mean())
        if typical > self.options.max_typical_change_levels:
            return False, typical
        threshold = max(self.options.change_floor_levels, self.options.noise_factor * 1.25 * typical)
        changed = int(np.count_nonzero(diff > threshold))
        return changed <= self.options.max_changed_blocks, typical

    def feed(self, frame: VideoFrame) -> list[Event]:
        if not self._sampler.wants(frame):
            if self._run.start is not None:
                self._run.last_end = frame.time + frame.duration
            return []
        thumb = self.thumbnail(frame)
        events: list[Event] = []
        reference = self._reference
        if reference is None or reference.shape != thumb.shape:
            self._start_reference(thumb, frame.time, frame.black_level)
            return events
        still, typical = self.is_still(thumb, reference)
        if still:
            if self._run.start is None:
                self._run.update(self._reference_time, True, frame.time + frame.duration)
            else:
                self._run.update(frame.time, True, frame.time + frame.duration)
        else:
            closed = self._run.update(frame.time, False, frame.time)
            if closed and not self._reference_black:
                events.append(self._event(*closed))
            self._start_reference(thumb, frame.time, frame.black_level)
        return events

    def _start_reference(self, thumb: np.ndarray, time: float, black_level: int) -> None:
        self._reference = thumb
        self._reference_time = time
        dark = np.count_nonzero(thumb <= black_level + self.options.black_margin_levels)
        self._reference_black = dark >= self.options.black_fraction * thumb.size

    def finish(self, end: float) -> list[Event]:
        closed = self._run.finish(end)
        return [self._event(*closed)] if closed and not self._reference_black else []

    def _event(self, start: float, end: float) -> Event:
        o = self.options
        return Event(
            kind="video.freeze",
            start=start,
            end=end,
            severity=severity_for(end - start, o.major_after_s, o.critical_after_s),
            confidence=0.95,
            details={"duration_s": round(end - start, 3)},
        )
