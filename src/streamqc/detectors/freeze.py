"""video.freeze: the picture stops changing.

Each analysed frame is reduced to a thumbnail of block means (16x16 source pixels per
block, from 16 samples each), which averages away sensor and coding noise but keeps
any real movement of something the size of a block. A frame is "still" when it
matches the thumbnail of the frame where the stillness began: comparing with that
reference, not with the previous frame, stops slow pans and gradients from passing as
frozen.

A frozen feed that is re-encoded does not stay bit-identical: each keyframe codes the
same picture again with different quantisation errors, B-frames flicker around the
P-frames, and a starved encoder keeps refining the picture for a few frames after the
motion stops. Such changes are short and then the picture holds (or returns to the
reference), while motion keeps changing. So a change only counts as motion when it
goes on for `motion_frames` analysed frames in a row; a change that returns to the
reference is flicker, and one that settles (the next `hold_frames` frames differ from
it by at most `hold_ratio` of the biggest step of the change) is a refresh: the
reference moves to it and the freeze goes on. A slow pan never settles, because its
steps are all alike, and motion with repeated frames holds for one frame only. A refresh inside a
freeze may not move blocks more than `max_refresh_levels` on average, so a cut between
two stills is not one freeze.

The threshold adapts to the noise: a block has changed when its difference is well
above both an absolute floor and the typical (median) difference of all blocks.
A picture with more than a few changed blocks, or whose typical difference is itself
large, is moving.

Slow change is motion too. A refresh re-codes the SAME picture: its errors have no
direction, so averaged over large regions of the picture (an 8x8 grid) they cancel, and
over the whole picture they keep its mean within a few tenths of a level. A gradient
that drifts, a focus pull, a camera's exposure settling, or the next picture of a
low-frame-rate camera (its held frames wait for it) move regions, or the whole picture,
one way. So every picture of a still run is also compared with the picture the run began
at (its anchor, which refreshes do not move): a region mean that moved more than
`max_drift_levels`, or a picture mean that moved more than `max_shift_levels`, ends the
run, however slowly it got there.

Stillness is judged against the stream's own cadence. A freeze is video that moved and
stopped, for longer than this stream normally stands still. A slideshow, a still shot
cut in by an editor, or a fixed camera on an empty car park stand still as their normal
way (and a camera on a still scene changes by sensor noise only, as a held picture with
noise does: the pixels cannot tell them apart). So a still run counts only once the
stream has been seen moving before it (a picture visibly new against the one before it,
neither of them black), and it must last `normal_still_factor` times the longest still
run the stream showed without a fault in the last `cadence_memory_s`. A stream that has
not moved since it began is reported only once it has stood still `critical_after_s`.

A still picture can still be live. A camera on a still scene keeps its sensor noise: the
picture changes by a little, frame after frame, at a level that is the stream's own. A
decoder or encoder that holds one picture repeats it exactly, or re-codes it only at
keyframes, and its change falls far below that level. So the typical change between
analysed pictures (the median over `live_window_frames`) is followed through a still run;
where it falls below `frozen_noise_ratio` of the level the same run showed before (at
least `min_live_noise_levels`: a picture that was never live shows nothing), the picture
stopped being live and a freeze begins there, whatever the cadence; it ends where the
noise comes back. Only the same run is compared, with the same picture: a cut to a
clean title card or a slide starts a new run, which has shown no live level to fall from.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from streamqc.detectors.base import Detector, FrameSampler, RunTracker, duration_event
from streamqc.events import Event
from streamqc.media import ANALYSIS_STEP, VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class FreezeOptions:
    min_duration_s: float = 2.0  # stillness shorter than this is not reported
    analysis_fps: float = 15.0  # pictures looked at per second, at most (0: every frame)
    block_px: int = 16  # side of the blocks compared, in source pixels
    change_floor_levels: float = 5.0  # a block mean moving less than this (8-bit luma) is unchanged
    noise_factor: float = 6.0  # ... or less than this many noise deviations (from the median difference)
    max_typical_change_levels: float = 2.5  # a median block change above this is motion everywhere
    # more changed blocks than this fraction of the picture (at least one) is motion;
    # fewer is an encoder refining a few blocks of a frozen picture
    max_changed_fraction: float = 0.002
    max_refresh_levels: float = 12.0  # a keyframe/refinement step inside a freeze moves blocks less than this on average
    hold_ratio: float = 0.25  # after a refresh the picture changes at most this fraction of the step
    hold_floor_levels: float = 0.2  # ... or at most this much (mean block change): it holds still
    motion_frames: int = 5  # changes in this many analysed frames in a row are motion
    # a settled picture must hold for this many analysed frames: motion with a repeated
    # frame every few (frame-rate conversion) pauses for one frame only
    hold_frames: int = 3
    # a region (1/64 of the picture) whose mean moved more than this from the run's first
    # picture has changed, however slowly: drift, a focus pull, exposure, a new picture
    max_drift_levels: float = 4.0
    # ... or the whole picture's mean moved more than this: light changed (exposure, a
    # fade); a re-coded picture keeps its mean within a few tenths of a level
    max_shift_levels: float = 1.0
    # a still run must last this many times the longest still run the stream showed as
    # normal (not reported) before it, within `cadence_memory_s`
    normal_still_factor: float = 2.0
    cadence_memory_s: float = 300.0  # how long a normal still run is remembered
    # A still black picture is video.black's to report; one defect, one page.
    black_margin_levels: int = 20
    black_fraction: float = 0.9
    major_after_s: float = 5.0
    live_window_frames: int = 15  # analysed frames over which a still picture's noise (median step) is measured
    # a still run whose typical step (mean block change, 8-bit levels) reached this was
    # live: a camera's sensor noise; a run below it has no live level to fall from
    min_live_noise_levels: float = 0.08
    # a typical step below this fraction of the run's live level is a held picture
    frozen_noise_ratio: float = 0.35
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
        # Analysed frames that differ from the reference, in a row: (thumbnail, time, step
        # from the frame before it).
        self._changes: list[tuple[np.ndarray, float, float]] = []
        self._holding = 0  # analysed frames the last change has held still for
        self._previous: np.ndarray | None = None
        self._before_previous: np.ndarray | None = None  # for measure()
        self._anchor: np.ndarray | None = None  # the picture the still run began at
        self._moved = False  # the stream has been seen moving
        # Still runs this stream showed as its normal way (not reported): (end, length),
        # kept as a sliding-window maximum (each longer than every one after it).
        self._normal: collections.deque[tuple[float, float]] = collections.deque()
        # The still run's steps between analysed pictures (time, step), the live level it
        # showed, and whether its picture stopped being live (a held picture).
        self._steps: collections.deque[tuple[float, float]] = collections.deque(maxlen=max(1, self.options.live_window_frames))
        self._levels: collections.deque[float] = collections.deque(maxlen=self._steps.maxlen + 1)
        self._live_level = 0.0
        self._dead = False

    def thumbnail(self, frame: VideoFrame) -> np.ndarray:
        cell = max(1, self.options.block_px // ANALYSIS_STEP)
        small = frame.small
        rows, cols = small.shape[0] // cell, small.shape[1] // cell
        area = small[: rows * cell, : cols * cell]
        # Sums of strided slices: several times faster than a 4-D reshape and reduce.
        row_sums = sum(area[i::cell] for i in range(cell))
        block_sums = sum(row_sums[:, j::cell] for j in range(cell))
        return block_sums.astype(np.float32) * (1.0 / (cell * cell))

    def is_still(self, thumb: np.ndarray, reference: np.ndarray) -> tuple[bool, float]:
        diff = np.abs(thumb - reference)
        if float(diff.max()) <= min(self.options.change_floor_levels, self.options.max_typical_change_levels):
            return True, 0.0  # the common frozen case, in one pass
        # The median block change is the noise scale: a talking mouth or a few moving
        # blocks do not move it (they would move a mean), motion everywhere pushes it
        # over the cap. A subsample is enough to estimate it.
        sample = diff[::2, ::2].ravel()
        middle = sample.size // 2
        typical = float(np.partition(sample, middle)[middle])
        if typical > self.options.max_typical_change_levels:
            return False, typical
        threshold = max(self.options.change_floor_levels, self.options.noise_factor * 1.4826 * typical)
        changed = int(np.count_nonzero(diff > threshold))
        return changed <= max(1, self.options.max_changed_fraction * diff.size), typical

    def drift(self, thumb: np.ndarray, anchor: np.ndarray) -> tuple[float, float]:
        """How far (levels) `thumb` moved from `anchor`: the largest move of a region mean
        on an 8x8 grid, and the move of the whole picture's mean."""
        rows, cols = thumb.shape
        grid_rows, grid_cols = min(8, rows), min(8, cols)
        height, width = rows // grid_rows, cols // grid_cols
        diff = (thumb - anchor)[: grid_rows * height, : grid_cols * width]
        row_sums = diff.reshape(grid_rows, height, grid_cols * width).sum(axis=1)
        region = row_sums.reshape(grid_rows, grid_cols, width).sum(axis=2) * (1.0 / (height * width))
        return float(np.abs(region).max()), abs(float(region.mean()))

    def drifted(self, thumb: np.ndarray, anchor: np.ndarray) -> bool:
        regions, whole = self.drift(thumb, anchor)
        return regions > self.options.max_drift_levels or whole > self.options.max_shift_levels

    def measure(self) -> dict[str, float]:
        """Motion: mean block change (8-bit levels) between the last two analysed pictures."""
        before, last = self._before_previous, self._previous
        if before is None or last is None or before.shape != last.shape:
            return {}
        return {"motion": round(float(np.abs(last - before).mean()), 3)}

    def feed(self, frame: VideoFrame) -> list[Event]:
        events = self._feed(frame)
        reached = self._run.reached() if not self._reference_black else None
        if reached:
            events.append(duration_event("video.freeze", *reached, self.options, ongoing=True))
        return events

    def _feed(self, frame: VideoFrame) -> list[Event]:
        if not self._sampler.wants(frame):
            if self._run.start is not None and not self._changes:
                self._run.last_end = frame.time + frame.duration
            return []
        thumb = self.thumbnail(frame)
        previous, self._previous = self._previous, thumb
        self._before_previous = previous
        end = frame.time + frame.duration
        if self._reference is None or self._reference.shape != thumb.shape or previous.shape != thumb.shape:
            self._changes, self._holding = [], 0
            events = self._close(frame.time)
            self._start_reference(thumb, frame.time, frame.black_level)
            return events
        if not self._moved and not self._reference_black and not self._is_black(thumb, frame.black_level):
            # Evidence that this stream moves: a picture visibly new against the one before
            # it (not a cut from or to black, not a change too slow to see frame to frame).
            self._moved = not self.is_still(thumb, previous)[0]
        anchor = self._anchor if self._anchor is not None else self._reference
        if self.is_still(thumb, self._reference)[0] and not self.drifted(thumb, anchor):
            self._changes, self._holding = [], 0  # flicker that came back, or no change at all
            events = [] if self._reference_black else self._liveness(float(np.abs(thumb - previous).mean()), frame.time)
            self._extend(self._reference_time, end)
            return events
        step = float(np.abs(thumb - previous).mean())
        if self._changes:
            last, last_time, _ = self._changes[-1]
            # Compare with the biggest step of the run of changes: a picture that popped
            # and then crept a little before holding still counts as settled.
            biggest = max(change[2] for change in self._changes)
            settled = step <= max(self.options.hold_ratio * biggest, self.options.hold_floor_levels)
            held = settled and self.is_still(thumb, last)[0]
            if held:
                self._holding += 1
                if self._holding >= self.options.hold_frames:
                    return self._settle(last, last_time, end, frame.black_level)
                return []
        self._holding = 0
        self._changes.append((thumb, frame.time, step))
        if len(self._changes) < self.options.motion_frames:
            return []
        first_change = self._changes[0][1]
        self._changes = []
        events = self._close(first_change)
        self._start_reference(thumb, frame.time, frame.black_level)
        return events

    def _liveness(self, step: float, time: float) -> list[Event]:
        """Follows the still picture's noise: a run that stops being live splits there."""
        o = self.options
        self._steps.append((time, step))
        if len(self._steps) < self._steps.maxlen:
            return []
        level = float(np.median([s for _, s in self._steps]))
        if not self._dead:
            # Live: the level it showed one window ago, so that a fall within a window is
            # measured against the level before it, not followed down.
            self._levels.append(level)
            self._live_level = self._levels[0] if len(self._levels) == self._levels.maxlen else 0.0
        frozen = o.frozen_noise_ratio * self._live_level
        if self._dead == (level < frozen) or self._live_level < o.min_live_noise_levels:
            return []
        if not self._dead and self._run.start is not None and self._run.open_for >= self._run.min_duration_s:
            return []  # already a freeze by the cadence: an encoder that stopped refining it
        # The change crossed the line: it began at the last step on the other side of a
        # midpoint between the live and the frozen levels.
        middle = 0.5 * self._live_level
        start = time
        for t, s in reversed(self._steps):
            if (s >= middle) != self._dead:
                break
            start = t
        events = self._close(start)
        self._dead = not self._dead
        self._reference_time = start
        return events

    def _settle(self, picture: np.ndarray, since: float, end: float, black_level: int) -> list[Event]:
        """The picture changed and now holds at `picture`: a refresh, or a new still."""
        first_change = self._changes[0][1]
        self._changes, self._holding = [], 0
        events: list[Event] = []
        in_run = self._run.start is not None
        assert self._reference is not None
        anchor = self._anchor if self._anchor is not None else self._reference
        if in_run and (
            float(np.abs(picture - self._reference).mean()) > self.options.max_refresh_levels
            or self.drifted(picture, anchor)
        ):
            events = self._close(first_change)  # a cut to another still, or a new picture
            in_run = False
        self._start_reference(picture, since, black_level, refresh=in_run)
        self._extend(since, end)
        return events

    def _extend(self, start: float, end: float) -> None:
        if self._run.start is None:
            self._run.min_duration_s = self._required_s(start)
        self._run.update(start if self._run.start is None else end, True, end)

    def _required_s(self, start: float) -> float:
        """How long a still run that begins at `start` must last to be a freeze here."""
        o = self.options
        if self._dead:
            return o.min_duration_s  # a live picture stopped being live: a held picture
        if not self._moved:
            return max(o.min_duration_s, o.critical_after_s)
        while self._normal and self._normal[0][0] < start - o.cadence_memory_s:
            self._normal.popleft()
        longest = self._normal[0][1] if self._normal else 0.0
        return max(o.min_duration_s, o.normal_still_factor * longest)

    def _close(self, time: float) -> list[Event]:
        start = self._run.start
        closed = self._run.update(time, False, time)
        return self._closed(start, time, closed)

    def _closed(self, start: float | None, end: float, closed: tuple[float, float] | None) -> list[Event]:
        if self._reference_black or start is None:
            return []  # a black picture is video.black's to report
        if closed:
            return [self._event(*closed)]
        # A still run this stream shows as normal: a shorter one that ends earlier can
        # no longer be the longest in the window.
        while self._normal and self._normal[-1][1] <= end - start:
            self._normal.pop()
        self._normal.append((end, end - start))
        return []

    def _is_black(self, thumb: np.ndarray, black_level: int) -> bool:
        dark = np.count_nonzero(thumb <= black_level + self.options.black_margin_levels)
        return bool(dark >= self.options.black_fraction * thumb.size)

    def _start_reference(self, thumb: np.ndarray, time: float, black_level: int, refresh: bool = False) -> None:
        """A new reference picture; `refresh`: the same picture re-coded, the run goes on."""
        self._reference = thumb
        self._reference_time = time
        if not refresh:
            self._steps.clear()
            self._levels.clear()
            self._live_level, self._dead = 0.0, False
            self._anchor = thumb
            self._reference_black = self._is_black(thumb, black_level)

    def finish(self, end: float) -> list[Event]:
        if self._changes and self._run.start is not None:
            end = self._changes[0][1]  # changing when the input ended: count it as motion
            self._run.last_end = end
        start = self._run.start
        closed = self._run.finish(end)
        return self._closed(start, end, closed)

    def _event(self, start: float, end: float) -> Event:
        return duration_event("video.freeze", start, end, self.options)
