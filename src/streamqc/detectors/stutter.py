"""video.stutter: dropped or repeated frames in moving video; video.cadence: a regular pattern of them.

Both come down to a "held slot": a frame period in which no new picture appeared.
It shows in the timestamps (a gap of two or more frame periods: frames were dropped,
or a muxer left out duplicates) or in the pictures (a picture identical to the one
before, while the pictures around it move: a repeated frame). Pictures are compared
on a sparse grid of luma samples (about 80 across): a repeated picture differs from
its predecessor by coding noise only, a moving one by much more.

A repeat is a picture that brings nothing new where new pictures usually come: still
next to both its neighbours and next to the typical new picture. A flash (a camera
flash, a strobe, a sync marker lighting up for a frame or two) changes the picture
hugely into and out of the run between, which looks like motion around a still run;
but the run moves as much as the footage does, or the picture after it is back where
the one before it was (within `flash_ratio` of the change into the run, where a real
repeat's neighbours differ by two frames of motion or more). Neither is a repeat.

Frame-rate conversion holds slots on a schedule: 25 to 30 fps every 6th, 24 to 30 fps
every 5th, 30 to 60 fps every 2nd. When the last `cadence_holds` held slots come at
intervals that differ by at most one slot, or one held slot fewer at exactly one
interval (a camera running at n/(n+1) of its clock; random repeats seldom keep one
interval exactly), the input has a cadence: it is reported once as an info note
(`video.cadence`, not a defect), and held slots that keep to it (at a multiple of its
interval, as low motion hides some) are not stutter. Cycles of `min_hidden_cycle_slots`
or more (24 to 25 fps) are recognised across hidden held slots too. After an edit the
cadence resumes at another phase: `cadence_holds` - 1 held slots that keep its interval
among themselves re-anchor it. Film shown at 50
or 60 fps holds two slots in a row now and then (24 to 50: every picture twice, one in
twelve three times; 3:2 pulldown at 60), which no single interval describes: a schedule
of `new` source pictures spread over `every` slots (each slot showing the picture on
screen at its time, for every period up to `max_cadence_slots`) is a cadence too when
twice `cadence_holds` held slots over one and a half periods or more all fall on its
held slots, no clearly moving picture falls on one, and every slot of the period has
been seen held or moving. Held slots off any cadence are stutter: `min_holds`
of them with less than `merge_gap_s` between neighbours are one `video.stutter` event,
reported once `merge_gap_s` has passed without another (by then a cadence that was
still being recognised has been).

Whether the video moves at all is judged on the median of the last
`motion_window_frames` picture differences (a frozen picture that an encoder refreshes
every few frames is not moving), or, once a cadence is known, on the median of the share
of them it leaves new: film at 50 or 60 fps repeats half its frames or more. Before
that, video whose frames mostly repeat moves if its new pictures change a
`sparse_motion_area` share of the picture (a refresh changes little of it).

A picture that skips ahead with evenly spaced timestamps (a dropped frame re-timed)
has no sure sign in one picture difference, so stutter is found from its repeats and
timestamp gaps.

Pictures the decoder could not rebuild are damage, which `video.decode_error` reports:
a timestamp gap across which the decoder reported an error, or a still picture that
came with one (concealment copies the last good picture), holds no slot. How many
pictures a damaged stream yields depends on the decoder's thread count, so counting
them would make the report depend on the machine.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import ANALYSIS_STEP, StreamNote, VideoFrame


SPARSE_MOTION_QUANTILE = 0.7  # of the recent frames: a new picture's, wherever 3 frames in 10 or more are new
# A cadence leaving this share of frames new or more keeps the median as the motion test:
# a higher quantile would let an encoder's refreshes of a frozen picture count as motion.
MOSTLY_NEW = 0.6


@dataclasses.dataclass(frozen=True, slots=True)
class StutterOptions:
    grid_columns: int = 80  # luma samples compared across the picture, at most (rows at the same spacing)
    motion_levels: float = 2.0  # RMS difference (8-bit luma) of the pictures around a repeat: moving
    repeat_ratio: float = 0.3  # a picture differing less than this fraction of that is a repeat
    motion_window_frames: int = 15  # ... and the median difference of this many frames is motion too (not a
    # freeze whose picture an encoder keeps refreshing; under a cadence repeating more than 4
    # frames in 10, the median of its new pictures)
    # Moving video, not a still picture with a small animated element (a slide, a logo):
    # the pictures around a repeat change by more than change_levels in at least this
    # share of the grid.
    min_moving_area: float = 0.01
    change_levels: float = 8.0
    # Until a cadence is known, video whose frames mostly repeat moves only if its new
    # pictures change this share of the grid by more than change_levels.
    sparse_motion_area: float = 0.1
    # The pictures either side of a still run that differ less than this fraction of the
    # change into and out of it came back: the run was a flash, not a repeat.
    flash_ratio: float = 0.7
    max_repeat_frames: int = 2  # longer runs of repeated pictures are a pause, not a repeat (3:2 holds 2)
    hole_ratio: float = 1.75  # a timestamp gap this many frame periods long has held slots (webcams jitter by half a period)
    max_hole_s: float = 0.5  # longer gaps are stream discontinuities, not dropped frames
    min_holds: int = 3  # held slots that make a stutter event (one or two are a glitch, not a stutter)
    merge_gap_s: float = 2.0  # held slots closer than this are one stutter event
    major_after_holds: int = 10  # a stutter with this many held slots or more is major
    # held slots at near-equal intervals that make a cadence: four of a stutter's few random
    # repeats fall at near-equal intervals by chance now and then, five seldom do
    cadence_holds: int = 5
    max_cadence_slots: int = 30  # a cadence repeats within this many frame periods
    # A cadence this long or longer is recognised across held slots that low motion hid
    # (24 to 25 fps holds every 24-25 slots; a still moment hides one); at shorter ones,
    # whole numbers of cycles would fit most random intervals.
    min_hidden_cycle_slots: int = 10
    batch_frames: int = 15  # pictures compared in one go (events come up to this many frames later)


class _Compared(NamedTuple):
    """A picture compared with the one before it."""
    time: float
    slot: int
    difference: float  # RMS difference from the picture before (8-bit luma)
    area: float  # share of the grid changed by more than change_levels
    damaged: bool  # the decoder reported an error since the picture before
    picture: np.ndarray  # the grid itself


@dataclasses.dataclass(slots=True)
class _Hold:
    time: float
    slot: int  # index of the held slot on the input's frame-period count
    source: str  # "timestamps" | "pictures"
    cadence: bool = False


class StutterDetector(Detector):
    name = "stutter"
    Options = StutterOptions
    accepts = (VideoFrame, StreamNote)

    def __init__(self, options: StutterOptions | None = None) -> None:
        super().__init__(options)
        self._previous: np.ndarray | None = None  # the last picture of the last batch
        # (time, duration, grid, damaged) not compared yet; damaged: the decoder reported
        # an error since the picture before
        self._batch: list[tuple[float, float, np.ndarray, bool]] = []
        self._damage_since_last = False
        self._last_time: float | None = None
        self._slot = 0  # frame periods counted so far
        self._gaps: collections.deque[float] = collections.deque(maxlen=15)
        # The last pictures compared, waiting for the one after them.
        # (and the one before the moving picture that leads into a repeat, to tell a flash)
        self._recent: collections.deque[_Compared] = collections.deque(maxlen=self.options.max_repeat_frames + 3)
        self._holds: list[_Hold] = []  # held slots of the stutter being gathered (and cadence candidates)
        self._cadence: tuple[int, int] | None = None  # (shortest, longest) interval in slots
        # A conversion's schedule: (slots in its period, which of them are held), by slot number
        self._schedule: tuple[int, np.ndarray] | None = None
        # (slot, picture difference) of the last pictures, for the moving pictures a schedule must not hold
        self._seen: collections.deque[tuple[int, float]] = collections.deque(maxlen=4 * self.options.max_cadence_slots)
        self._cadence_reported = False
        self._new_fraction = 1.0  # share of the frames that bring a new picture, under the cadence known
        self._cadence_slot: int | None = None  # the last held slot that kept to the cadence
        self._differences: collections.deque[float] = collections.deque(maxlen=self.options.motion_window_frames)
        self._areas: collections.deque[float] = collections.deque(maxlen=self.options.motion_window_frames)
        self._frame_period = 0.0
        self._since_median = 0

    # -- per frame -------------------------------------------------------------------
    def feed(self, frame: VideoFrame | StreamNote) -> list[Event]:
        if isinstance(frame, StreamNote):
            if frame.kind == "decode_error" and frame.media == "video":
                self._damage_since_last = True
            return []
        picture = self._grid(frame)
        events: list[Event] = []
        if self._batch and self._batch[-1][2].shape != picture.shape:
            events = self._run_batch()
        # Pictures are compared a batch at a time: one vectorised difference for many
        # frames costs less than numpy's per-call overhead on each.
        self._batch.append((frame.time, frame.duration, picture, self._damage_since_last or frame.corrupt))
        self._damage_since_last = False
        if len(self._batch) > self.options.batch_frames:
            events += self._run_batch()
        return events

    def _run_batch(self) -> list[Event]:
        batch, self._batch = self._batch, []
        previous = self._previous
        pictures = np.stack([p for _, _, p, _ in batch])
        differences = [float("nan")] * len(batch)
        if previous is not None and previous.shape == pictures.shape[1:]:
            pictures = np.concatenate((previous[None], pictures))
            first = 0
        else:
            first = 1  # the first picture, or a new size: nothing to compare it with
        steps = (pictures[1:] - pictures[:-1]).reshape(pictures.shape[0] - 1, -1)
        rms = np.sqrt(np.einsum("ij,ij->i", steps, steps) / steps.shape[1]).tolist()
        differences[first:] = rms
        areas = [0.0] * len(batch)
        areas[first:] = (np.abs(steps) > self.options.change_levels).mean(axis=1).tolist()
        self._previous = batch[-1][2]
        events: list[Event] = []
        for (time, duration, picture, damaged), difference, area in zip(batch, differences, areas):
            events += self._step(time, duration, picture, difference, area, damaged)
        return events

    def _step(self, time: float, duration: float, picture: np.ndarray, difference: float, area: float,
              damaged: bool) -> list[Event]:
        last_time, self._last_time = self._last_time, time
        if last_time is None or difference != difference:  # the first picture, or a new size
            self._recent.clear()
            return []
        events: list[Event] = []
        gap = time - last_time
        period = self._period(gap, duration)
        slots = 1
        if period > 0 and self.options.hole_ratio * period <= gap <= self.options.max_hole_s:
            slots = int(round(gap / period))
            for k in range(1, 1 if damaged else slots):
                events += self._hold(last_time + k * period, self._slot + k, "timestamps")
        elif gap > self.options.max_hole_s or gap <= 0:
            self._recent.clear()  # a discontinuity: what came before says nothing of this picture
        self._slot += slots
        self._recent.append(_Compared(time, self._slot, difference, area, damaged, picture))
        self._seen.append((self._slot, difference))
        self._differences.append(difference)
        self._areas.append(area)
        events += self._repeats()
        events += self._close(time)
        return events

    def _grid(self, frame: VideoFrame) -> np.ndarray:
        luma = frame.luma
        # A multiple of the shared thumbnail's step: where another detector has made
        # frame.small already (freeze, black), the grid is a free subsample of it.
        step = max(1, luma.shape[1] // (self.options.grid_columns * ANALYSIS_STEP)) * ANALYSIS_STEP
        small = frame.__dict__.get("small")
        if small is not None:
            return small[:: step // ANALYSIS_STEP, :: step // ANALYSIS_STEP].astype(np.float32)
        grid = luma[::step, ::step]
        if frame.bit_depth > 8:
            grid = grid >> (frame.bit_depth - 8)  # the 8-bit scale of frame.small
        return grid.astype(np.float32)

    def _period(self, gap: float, duration: float) -> float:
        """The input's frame period: the typical gap, which held slots do not move."""
        if gap > 0:
            self._gaps.append(gap)
        # The median is worth recomputing only while it is young or when a gap is unusual.
        usual = abs(gap - self._frame_period) <= 0.05 * self._frame_period
        if len(self._gaps) >= 5 and (len(self._gaps) < self._gaps.maxlen or not usual or self._since_median >= 30):
            self._frame_period = float(np.median(self._gaps))
            self._since_median = 0
        elif len(self._gaps) < 5:
            self._frame_period = duration
        self._since_median += 1
        return self._frame_period

    def _repeats(self) -> list[Event]:
        """A run of 1..max_repeat_frames still pictures between two moving ones: repeats."""
        recent = self._recent
        ratio, after = self.options.repeat_ratio, recent[-1].difference
        if after < self.options.motion_levels:
            return []
        length = 0
        while length + 2 <= len(recent) and recent[-2 - length].difference < ratio * after:
            length += 1
        if length == 0 or length + 2 > len(recent) or length > self.options.max_repeat_frames:
            return []  # no still picture before this one, or a pause longer than a repeat
        moving = min(recent[-2 - length].difference, after)
        run = [recent[-1 - k] for k in range(length, 0, -1)]
        if moving < self.options.motion_levels or any(r.difference >= ratio * moving for r in run):
            return []
        if any(r.damaged for r in run):
            return []  # a concealed picture: damage, not a repeat
        if min(recent[-2 - length].area, recent[-1].area) < self.options.min_moving_area:
            return []  # a still picture with a small moving element: no motion to stutter
        level = self._motion_level()
        if level < self.options.motion_levels:
            return []  # mostly still: an encoder refreshing a frozen picture, not moving video
        # A flash: the pictures around the run changed hugely, but the run itself moved as
        # much as a typical picture does, or the picture after the run is back where the
        # one before it was. Only a run that holds still where new pictures move is a repeat.
        if any(r.difference >= ratio * level for r in run):
            return []
        if len(recent) >= length + 3:
            step = recent[-1].picture - recent[-3 - length].picture
            across = math.sqrt(float(np.einsum("ij,ij->", step, step)) / step.size)
            if across < self.options.flash_ratio * moving:
                return []
        events: list[Event] = []
        for picture in run:
            events += self._hold(picture.time, picture.slot, "pictures")
        return events

    def _motion_level(self) -> float:
        """The picture difference of the typical new picture: the median of the recent
        differences, or under a cadence that repeats more than 4 frames in 10 (film at
        50 or 60 fps repeats up to 3 in 5), the median of the share of them it leaves new."""
        share = 1.0 - 0.5 * self._new_fraction if self._new_fraction < MOSTLY_NEW else 0.5
        level = float(np.quantile(self._differences, share))
        if level >= self.options.motion_levels or self._new_fraction < 1.0:
            return level
        # Film at 50 or 60 fps before its cadence is known: most frames repeat, but the
        # new ones (3 in 10 or more) change much of the picture. An encoder refreshing a
        # frozen picture as often changes little of it.
        if float(np.quantile(self._areas, SPARSE_MOTION_QUANTILE)) >= self.options.sparse_motion_area:
            return float(np.quantile(self._differences, SPARSE_MOTION_QUANTILE))
        return level

    # -- held slots: cadence or stutter -----------------------------------------------
    def _hold(self, time: float, slot: int, source: str) -> list[Event]:
        hold = _Hold(time, slot, source)
        self._holds.append(hold)
        if self._schedule is not None:
            if self._on_schedule(slot):
                hold.cadence = True
                return []
            # Off the schedule: a stutter, or the schedule was a near one (9 new in 19 for
            # 12 in 25 fit a second of film) and a longer look finds the right one.
            return self._find_schedule(2 * self.options.cadence_holds)
        if self._cadence is not None and self._cadence_slot is not None and self._keeps_cadence(slot - self._cadence_slot):
            hold.cadence = True
            self._cadence_slot = slot
            return []
        if self._cadence is not None and self._resumes_cadence():
            return []
        return self._find_cadence()

    def _resumes_cadence(self) -> bool:
        """Whether the cadence known resumed at another phase (an edit, a loop, a freeze
        cut into it): the last `cadence_holds` - 1 held slots keep its interval among
        themselves, whole cycles apart (low motion hides held slots), one cycle at least
        once; for a cadence of two interval lengths, as `_cycle` allows."""
        assert self._cadence is not None
        latest = self._holds[-(self.options.cadence_holds - 1):]
        if len(latest) < self.options.cadence_holds - 1:
            return False
        intervals = np.diff([h.slot for h in latest])
        shortest, longest = self._cadence
        if shortest == longest:  # one interval: whole cycles of it exactly, one of them single
            if intervals.min() != shortest or (intervals % shortest).any():
                return False
        else:
            cycle = self._cycle(intervals)
            if cycle is None or cycle[0] < shortest or cycle[1] > longest:
                return False
        for h in latest:
            h.cadence = True
        self._cadence_slot = latest[-1].slot
        return True

    def _on_schedule(self, slot: int) -> bool:
        assert self._schedule is not None
        every, held = self._schedule
        return bool(held[slot % every])

    def _keeps_cadence(self, interval: int) -> bool:
        """Whether two held slots `interval` apart fit the cadence (low motion may hide some between)."""
        assert self._cadence is not None
        shortest, longest = self._cadence
        cycles = max(1, round(interval / ((shortest + longest) / 2)))
        return cycles * shortest <= interval <= cycles * longest

    def _find_cadence(self) -> list[Event]:
        # A cadence already known changes only on twice the evidence: the holds of a
        # stutter inside a cadenced picture can fall at near-equal intervals for a while.
        need = self.options.cadence_holds * (1 if self._cadence is None else 2)
        latest = self._holds[-need:]
        intervals = np.diff([h.slot for h in latest])
        # One held slot fewer will do at exactly one interval: a stutter's random repeats
        # fall at near-equal intervals now and then, at exactly one seldom, while a camera
        # or converter whose rate is n/(n+1) of the clock's holds every (n+1)th slot.
        few = self.options.cadence_holds - 1
        exact = intervals[-(few - 1):]
        cycle = self._cycle(intervals) if len(latest) == need else None
        if cycle is None:
            if (self._cadence is None and self._schedule is None and len(latest) >= few
                    and exact.min() == exact.max() and 2 <= exact[0] <= self.options.max_cadence_slots):
                latest, intervals, cycle = latest[-few:], exact, (int(exact[0]), int(exact[0]))
            elif len(latest) == need:
                return self._find_schedule(2 * need)
            else:
                return []
        shortest, longest = cycle
        first = self._cadence is None
        self._cadence = cycle
        self._cadence_slot = latest[-1].slot
        for hold in latest:
            hold.cadence = True
        if first:  # held slots before these, while the cadence was being recognised, kept to it too
            anchor = latest[0].slot
            for hold in reversed(self._holds[:-len(latest)]):
                if self._keeps_cadence(anchor - hold.slot):
                    hold.cadence = True
                    anchor = hold.slot
        mean = float(intervals.sum()) / float(np.maximum(1, np.round(intervals / shortest)).sum())
        self._new_fraction = 1.0 - 1.0 / mean
        return self._note(latest, [shortest, longest] if longest != shortest else shortest, 1.0 - 1.0 / mean)

    def _cycle(self, intervals: np.ndarray) -> tuple[int, int] | None:
        """The cadence (shortest and longest interval of one cycle) that held slots at these
        intervals keep, or None: intervals that differ by one slot at most, or, from
        `min_hidden_cycle_slots` on, whole numbers of such cycles (low motion hides a held
        slot now and then) as long as two intervals or more are single cycles."""
        o = self.options
        base = int(intervals.min())
        if base < 2:
            return None
        cycles = np.maximum(1, np.round(intervals / base))
        per_cycle = intervals / cycles
        shortest, longest = int(np.floor(per_cycle.min())), int(np.ceil(per_cycle.max()))
        if longest > o.max_cadence_slots or longest - shortest > 1:
            return None
        if cycles.max() > 1 and (base < o.min_hidden_cycle_slots or (cycles == 1).sum() < 2):
            return None
        return shortest, longest

    def _find_schedule(self, need: int) -> list[Event]:
        """A conversion's schedule that every recent held slot keeps and no moving picture breaks."""
        span = 4 * self.options.max_cadence_slots
        newest = self._holds[-1].slot
        if self._schedule is None:
            window = [h for h in self._holds if h.slot > newest - span]
            found = self._fit_schedule(window, need)
        else:
            # A better schedule: the held slots that kept to the known one and the one that
            # did not (a stutter before must not stop it being found; 9 new in 19 fits a
            # second of 12 in 25). Or the schedule moved (an edit breaks the cadence and it
            # resumes at another phase): the last slots alone, on twice the evidence.
            window = [h for h in self._holds if h.slot > newest - span and (h.cadence or h.slot == newest)]
            found = self._fit_schedule(window, need)
            if found is None:
                window = [h for h in self._holds if h.slot > newest - span // 2]
                found = self._fit_schedule(window, 2 * need)
        if found is None:
            return []
        every, schedule = found
        self._schedule = found
        for hold in self._holds:
            if schedule[hold.slot % every]:
                hold.cadence = True
        new = every - int(schedule.sum())
        self._new_fraction = new / every
        at = np.flatnonzero(schedule)
        intervals = sorted({int(i) for i in np.diff(np.append(at, at[0] + every))})
        return self._note(window, intervals if len(intervals) > 1 else intervals[0], new / every,
                          f"{new} new in every {every}")

    def _fit_schedule(self, window: list[_Hold], need: int) -> tuple[int, np.ndarray] | None:
        """The shortest schedule whose held slots hold all of `window` and no clearly moving picture since."""
        o = self.options
        if len(window) < need or not self._seen:
            return None
        held = np.array([h.slot for h in window])
        # Clearly moving: half the difference of a typical new picture. An encoder refining
        # a repeated picture (a keyframe, a starved first copy) can change it by a third.
        slots, differences = np.array(self._seen).T
        clearly = max(o.motion_levels, 0.5 * float(np.quantile(differences, SPARSE_MOTION_QUANTILE)))
        moving = np.setdiff1d(slots[(differences >= clearly) & (slots > held[0])].astype(np.int64), held)
        seen = np.union1d(held, moving)
        for every, schedules in _schedules(o.max_cadence_slots):
            if held[-1] - held[0] < 1.5 * every:
                return None
            if len(np.unique(seen % every)) < every:
                continue  # a slot of the period never seen held or moving: the schedule is not pinned down
            fits = schedules[:, held % every].all(axis=1) & ~schedules[:, moving % every].any(axis=1)
            if fits.any():
                return every, schedules[int(np.argmax(fits))]  # the fewest held slots: the rows are in that order
        return None

    def _note(self, holds: list[_Hold], held_every: int | list[int], new_fraction: float,
              schedule: str | None = None) -> list[Event]:
        if self._cadence_reported:
            return []
        self._cadence_reported = True
        details: dict[str, object] = {"held_every_frames": held_every, "new_frames_fraction": round(new_fraction, 3),
                                      "from": holds[-1].source}
        if schedule is not None:
            details["schedule"] = schedule
        return [Event(kind="video.cadence", start=holds[0].time, end=holds[-1].time, severity=Severity.INFO,
                      confidence=0.9, details=details)]

    def _close(self, now: float) -> list[Event]:
        """Report the stutter whose last held slot is `merge_gap_s` old."""
        if not self._holds:
            return []
        stutter = [h for h in self._holds if not h.cadence]
        if not stutter:
            # Keep what recognising a cadence or a schedule looks at.
            oldest = self._holds[-1].slot - 4 * self.options.max_cadence_slots
            drop = 0
            while drop < len(self._holds) - 4 * self.options.cadence_holds and self._holds[drop].slot <= oldest:
                drop += 1
            del self._holds[:drop]
            return []
        if now - stutter[-1].time <= self.options.merge_gap_s:
            return []
        self._holds = []
        return self._events(stutter)

    def _events(self, holds: list[_Hold]) -> list[Event]:
        events: list[Event] = []
        group: list[_Hold] = []
        for hold in holds + [None]:  # type: ignore[list-item]
            if hold is not None and (not group or hold.time - group[-1].time <= self.options.merge_gap_s):
                group.append(hold)
                continue
            if len(group) >= self.options.min_holds:
                events.append(self._event(group))
            group = [hold] if hold is not None else []
        return events

    def _event(self, group: list[_Hold]) -> Event:
        repeated = sum(1 for h in group if h.source == "pictures")
        return Event(
            kind="video.stutter",
            start=group[0].time,
            end=group[-1].time + self._frame_period,
            severity=Severity.MAJOR if len(group) >= self.options.major_after_holds else Severity.MINOR,
            confidence=0.8,
            details={"held_frames": len(group), "repeated": repeated, "missing": len(group) - repeated},
        )

    def finish(self, end: float) -> list[Event]:
        events = self._run_batch() if self._batch else []
        stutter = [h for h in self._holds if not h.cadence]
        self._holds = []
        return events + self._events(stutter)


@functools.cache
def _schedules(max_every: int) -> list[tuple[int, np.ndarray]]:
    """Per period `every` (2..max_every): every conversion's held slots, one row per
    number of new pictures and phase, the fewest held slots first.

    A slot is held when it shows the same source picture as the slot before: with `new`
    pictures in `every` slots, slot s shows picture floor(s * new / every)."""
    out = []
    for every in range(2, max_every + 1):
        rows = []
        for new in range(every - 1, 0, -1):
            if math.gcd(new, every) != 1:
                continue
            s = np.arange(every)
            held = (s * new) // every == ((s - 1) * new) // every
            rows += [np.roll(held, phase) for phase in range(every)]
        out.append((every, np.array(rows)))
    return out
