"""video.corruption: macroblocks broken by lost or damaged data, judged from the pixels.

A decoder that loses data conceals it macroblock by macroblock (a stale or smeared copy,
a flat DC guess, or garbage decoded from a desynchronised bitstream), so the damage has
straight edges on the 16-pixel grid where the picture does not continue across the
boundary. Natural content does: a texture or an edge crosses a macroblock boundary as it
crosses any other line. So for every 16-pixel segment of every macroblock boundary we
compare the step across the boundary with the gradient just inside it on both sides: a
segment is *broken* when the step is both `min_step_levels` above and `step_ratio` times
the inside gradient, and the inside has detail (`min_detail_levels`: a starved encoder
paints flat 16x16 blocks whose edges are steps with nothing inside). A broken segment
with a broken neighbour on the same boundary line is a *seam* (a single one is texture
noise).

A picture is corrupt when the share of blocks touched by seams is `min_area` above both
what is usual for the stream (the median of the last `baseline_frames` analysed
pictures: a letterbox edge or a graphic on the grid gives seams in every picture) and
`grid_ratio` times the share on the 8-pixel lines between the macroblock boundaries:
coding blockiness (a starved I-frame, MPEG-2 without a deblocking filter) breaks both
grids alike, lost macroblocks only the 16-pixel one. Seen by the pixels alone, it takes
`min_pixel_frames` analysed pictures in a row. The decoder's own "corrupt" flag on a
picture is supporting evidence (`use_decoder_flag`): damage whose concealment looks
smooth still counts, while re-encoded damage, with no flag, must show in the pixels.

Corrupt pictures closer than `merge_gap_s` make one event. `details.area` is the share of
the picture in the corruption map (blocks cut off by seams on `map_sides` sides or more,
over the event; null when only the decoder saw it), `details.box` the map's bounding box
in relative coordinates (x0, y0, x1, y1); severity grows with area and duration.

The measurement reads four luma rows around each horizontal boundary and four columns
around each vertical one, every `sample_step_px`-th pixel along them, on
`analysis_fps` pictures a second: a few percent of the picture, never a full pass.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import deque

import numpy as np

from streamqc.detectors.base import Detector, FrameSampler
from streamqc.events import Event, Severity
from streamqc.media import VideoFrame

MB = 16  # macroblock side, pixels: the grid concealment works on in H.264, MPEG-2 (and CTU multiples in HEVC)


@dataclasses.dataclass(frozen=True, slots=True)
class CorruptionOptions:
    # pictures looked at per second, at most (0: every frame); the decoder's corrupt ones always
    analysis_fps: float = 6.0
    sample_step_px: int = 4  # pixels between samples along each boundary
    min_step_levels: float = 10.0  # a boundary step must exceed the inside gradient by this (8-bit luma) ...
    step_ratio: float = 2.0  # ... and be this many times the inside gradient
    # ... where the inside has at least this much detail (mean gradient, levels): a starved
    # encoder paints flat 16x16 blocks whose edges are steps too, with nothing inside
    min_detail_levels: float = 6.0
    min_area: float = 0.1  # mapped fraction of the picture above the recent typical one
    # A broken block is cut off on two sides or more, its clean neighbour on one: the
    # reported map (area, box) holds the first, the frame's score counts both.
    map_sides: int = 2
    min_seams: int = 4  # broken segments in seams a corrupt frame needs, at least
    baseline_frames: int = 31  # analysed frames the typical mapped fraction is taken over
    min_baseline_frames: int = 3  # analysed frames before the first judgement
    # the 16-pixel grid's mapped fraction must exceed this many times that of the
    # 8-pixel lines between (by min_area): more than coding blockiness breaks both alike
    grid_ratio: float = 2.0
    # analysed frames in a row an event seen by the pixels alone needs: lost data stays
    # until the next keyframe, a starved encoder's blockiness flickers
    min_pixel_frames: int = 2
    use_decoder_flag: bool = True  # a frame the decoder marked corrupt counts, whatever its pixels
    merge_gap_s: float = 0.5  # corrupt frames closer than this are one event
    min_duration_s: float = 0.0
    major_area: float = 0.05  # events covering this fraction of the picture, or lasting
    major_after_s: float = 1.0  # this long, are major
    critical_area: float = 0.25
    critical_after_s: float = 5.0


@dataclasses.dataclass(slots=True)
class _Open:
    start: float
    end: float
    frames: int = 0
    flagged: int = 0
    pixel_frames: int = 0
    streak: int = 0  # pixel-corrupt analysed frames in a row, now
    longest: int = 0
    union: np.ndarray | None = None


class CorruptionDetector(Detector):
    name = "corruption"
    Options = CorruptionOptions
    accepts = (VideoFrame,)

    def __init__(self, options: CorruptionOptions | None = None) -> None:
        super().__init__(options)
        self._sampler = FrameSampler(self.options.analysis_fps)
        self._recent: deque[float] = deque(maxlen=max(1, self.options.baseline_frames))
        self._open: _Open | None = None
        self._shape: tuple[int, int] | None = None
        self._seams = 0

    # --- measurement -------------------------------------------------------------------

    def corruption_map(self, frame: VideoFrame, offset: int = 0) -> np.ndarray:
        """Per block (rows x cols of macroblocks): on how many sides seams cut it off."""
        luma = frame.luma[offset:, offset:]
        rows, cols = luma.shape[0] // MB, luma.shape[1] // MB
        sides = np.zeros((rows, cols), np.uint8)
        self._seams = 0
        if rows < 2 or cols < 2:
            return sides
        o = self.options
        step = max(1, o.sample_step_px)
        shift = frame.bit_depth - 8
        per_segment = max(1, MB // step)
        # Horizontal boundaries y = 16k: rows 16k-2 .. 16k+1, every `step`-th column.
        band = luma[MB - 2 : rows * MB - 2].reshape(rows - 1, MB, -1)[:, :4, : cols * MB : step]
        broken_h = self._broken(band, shift, per_segment, axis=1)  # (rows-1, cols)
        # Vertical boundaries x = 16k: columns 16k-2 .. 16k+1, every `step`-th row.
        strip = luma[: rows * MB : step, MB - 2 : cols * MB - 2].reshape(-1, cols - 1, MB)[:, :, :4]
        broken_v = self._broken(strip.transpose(0, 2, 1), shift, per_segment, axis=0)  # (rows, cols-1)
        # A seam: two broken segments in a row along one boundary line.
        seam_h = broken_h & (_shifted(broken_h, 1, axis=1) | _shifted(broken_h, -1, axis=1))
        seam_v = broken_v & (_shifted(broken_v, 1, axis=0) | _shifted(broken_v, -1, axis=0))
        sides[:-1] += seam_h
        sides[1:] += seam_h
        sides[:, :-1] += seam_v
        sides[:, 1:] += seam_v
        self._seams = int(np.count_nonzero(seam_h)) + int(np.count_nonzero(seam_v))
        return sides

    def _broken(self, lines: np.ndarray, shift: int, per_segment: int, axis: int) -> np.ndarray:
        """Segments whose boundary step stands out from the gradient inside.

        `lines` holds the four lines around each boundary on `axis` 1 (horizontal
        boundaries: (boundaries, 4, samples)) or 1 after a transpose (vertical:
        (samples, 4, boundaries)); the result is (boundaries, segments) or (segments,
        boundaries)."""
        data = lines.astype(np.int32 if shift else np.int16, order="C")  # 16-bit samples overflow int16
        if shift > 0:
            data >>= shift
        # Along axis 1: the step into the boundary's last line, across it, out of its first.
        steps = np.abs(np.diff(data, axis=1))
        # Segment sums as sums of strided slices: numpy reduces a short inner axis slowly.
        if axis == 1:  # (boundaries, 3, samples)
            n = steps.shape[2] // per_segment
            seg = sum(steps[:, :, k : n * per_segment : per_segment] for k in range(per_segment))
            across, inside2 = seg[:, 1], seg[:, 0] + seg[:, 2]
        else:  # (samples, 3, boundaries)
            n = steps.shape[0] // per_segment
            seg = sum(steps[k : n * per_segment : per_segment] for k in range(per_segment))
            across, inside2 = seg[:, 1], seg[:, 0] + seg[:, 2]
        o = self.options
        # inside2 is twice the mean inside gradient: compare with twice the thresholds.
        across2 = 2 * across
        return ((across2 > inside2 + int(2 * o.min_step_levels * per_segment))
                & (across2 * 10 > inside2 * int(10 * o.step_ratio))
                & (inside2 >= int(2 * o.min_detail_levels * per_segment)))

    # --- events --------------------------------------------------------------------------

    def feed(self, frame: VideoFrame) -> list[Event]:
        events: list[Event] = []
        if self._open is not None and frame.time - self._open.end > self.options.merge_gap_s:
            events = self._close()
        flagged = frame.corrupt and self.options.use_decoder_flag
        if not self._sampler.wants(frame) and not flagged:
            return events
        o = self.options
        sides = self.corruption_map(frame)
        touched = sides > 0
        seams = self._seams
        if touched.shape != self._shape:
            self._shape = touched.shape
            self._recent.clear()
            events += self._close()
        area = float(touched.mean()) if touched.size else 0.0
        if len(self._recent) < o.min_baseline_frames:
            self._recent.append(area)  # nothing to compare with yet
            return events
        typical = statistics.median(self._recent)
        excess = area - typical
        if excess >= o.min_area and seams >= o.min_seams:
            # Coding blockiness (a starved I-frame, MPEG-2 without a deblocking filter)
            # breaks the 8-pixel transform grid as much as the 16-pixel one; lost
            # macroblocks break the 16-pixel grid and leave the lines between alone.
            inner = self.corruption_map(frame, offset=MB // 2) > 0
            excess = min(excess, area - o.grid_ratio * float(inner.mean()))
            seams -= self._seams
        by_pixels = excess >= o.min_area and seams >= o.min_seams
        if not by_pixels and self._open is not None:
            self._open.streak = 0
        if not (by_pixels or flagged):
            self._recent.append(area)
            return events
        run = self._open
        if run is None:
            run = self._open = _Open(frame.time, frame.time + frame.duration)
        run.end = frame.time + frame.duration
        run.frames += 1
        run.flagged += int(flagged)
        if by_pixels:
            run.pixel_frames += 1
            run.streak += 1
            run.longest = max(run.longest, run.streak)
            core = sides >= o.map_sides
            if not core.any():
                core = touched
            run.union = core if run.union is None or run.union.shape != core.shape else run.union | core
        return events

    def finish(self, end: float) -> list[Event]:
        return self._close()

    def _close(self) -> list[Event]:
        run, self._open = self._open, None
        if run is None or run.end - run.start < self.options.min_duration_s:
            return []
        if not run.flagged and run.longest < self.options.min_pixel_frames:
            return []  # one odd picture of a starved encoder, not damage
        o = self.options
        union = run.union
        if union is not None and union.any():
            area = float(union.mean())
            ys, xs = np.nonzero(union.any(axis=1))[0], np.nonzero(union.any(axis=0))[0]
            h, w = union.shape
            box = [round(float(v), 3) for v in (xs[0] / w, ys[0] / h, (xs[-1] + 1) / w, (ys[-1] + 1) / h)]
        else:
            area, box = None, None  # the decoder said so; the pixels do not show where
        duration = run.end - run.start
        if (area or 0.0) >= o.critical_area or duration >= o.critical_after_s:
            severity = Severity.CRITICAL
        elif (area or 0.0) >= o.major_area or duration >= o.major_after_s:
            severity = Severity.MAJOR
        else:
            severity = Severity.MINOR
        evidence = "pixels+decoder" if run.pixel_frames and run.flagged else ("pixels" if run.pixel_frames else "decoder")
        confidence = 0.95 if evidence == "pixels+decoder" else (0.8 if evidence == "decoder" else 0.6 + 0.35 * min(1.0, run.pixel_frames / 3))
        details = {"duration_s": round(duration, 3), "area": None if area is None else round(area, 4), "box": box,
                   "frames": run.frames, "evidence": evidence}
        return [Event("video.corruption", run.start, run.end, severity, round(confidence, 3), details)]


def _shifted(mask: np.ndarray, by: int, axis: int) -> np.ndarray:
    """`mask` moved by `by` cells along `axis`, False where nothing moved in."""
    out = np.zeros_like(mask)
    src = [slice(None)] * mask.ndim
    dst = [slice(None)] * mask.ndim
    if by > 0:
        src[axis], dst[axis] = slice(None, -by), slice(by, None)
    else:
        src[axis], dst[axis] = slice(-by, None), slice(None, by)
    out[tuple(dst)] = mask[tuple(src)]
    return out
