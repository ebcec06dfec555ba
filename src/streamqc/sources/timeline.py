"""Map each track's raw timestamps onto one continuous media clock.

FFmpeg already unwraps the 33-bit MPEG-TS clock inside a demuxer session, but live
inputs restart, HLS splices content with EXT-X-DISCONTINUITY and broken muxers jump.
Detectors need a clock that only moves forward at the pace of the media, so every
jump is folded out here (and reported), and a 33-bit wrap that reaches us is undone
silently.
"""

from __future__ import annotations

import dataclasses

WRAP_33_BIT_S = 2**33 / 90000.0


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineOptions:
    forward_jump_s: float = 1.0  # a gap longer than this between consecutive buffers is a jump
    backward_jump_s: float = 0.1  # timestamps going back by more than this are a jump
    same_jump_window_s: float = 2.0  # tracks that jump by the same amount within this are one discontinuity


@dataclasses.dataclass(slots=True)
class Jump:
    """A discontinuity folded out of the clock: `raw_delta_s` is how far the timestamps jumped."""

    time: float  # continuous time where it happened
    raw_delta_s: float
    media: str
    new_report: bool  # False when another track already reported the same jump


@dataclasses.dataclass(slots=True)
class _Track:
    offset: float = 0.0
    last_raw: float | None = None
    last_end: float | None = None  # continuous time where the previous buffer ended


class Timeline:
    def __init__(self, options: TimelineOptions = TimelineOptions()) -> None:
        self.options = options
        self._tracks: dict[str, _Track] = {}
        self._recent: list[Jump] = []

    def place(self, key: str, media: str, raw_s: float, duration_s: float) -> tuple[float, Jump | None]:
        """Return the continuous time of a buffer at raw time `raw_s`, and the jump before it, if any."""
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(offset=self._wrap_against_others(raw_s))
        jump = None
        if track.last_raw is not None and track.last_end is not None:
            expected = track.last_end - track.offset
            delta = raw_s - expected
            if abs(delta + WRAP_33_BIT_S) < 10.0:
                track.offset += WRAP_33_BIT_S
                delta += WRAP_33_BIT_S
            if delta > self.options.forward_jump_s or delta < -self.options.backward_jump_s:
                track.offset -= delta
                jump = self._record(track.last_end, delta, media)
        time = raw_s + track.offset
        track.last_raw = raw_s
        track.last_end = max(time + duration_s, track.last_end or time)
        return time, jump

    def _wrap_against_others(self, raw_s: float) -> float:
        """A track that starts on the other side of a 33-bit wrap from the first one.

        Muxers write a first audio PTS of -1920 (AAC priming) as 2^33 - 1920: without
        this, that track would sit 26 hours away from the picture.
        """
        for other in self._tracks.values():
            if other.last_raw is None:
                continue
            apart = raw_s + other.offset - other.last_raw
            if apart > WRAP_33_BIT_S / 2:
                return -WRAP_33_BIT_S + other.offset
            if apart < -WRAP_33_BIT_S / 2:
                return WRAP_33_BIT_S + other.offset
            return other.offset
        return 0.0

    def _record(self, time: float, delta: float, media: str) -> Jump:
        window = self.options.same_jump_window_s
        self._recent = [j for j in self._recent if time - j.time < window]
        seen = any(abs(j.raw_delta_s - delta) < window and j.media != media for j in self._recent)
        jump = Jump(time=time, raw_delta_s=delta, media=media, new_report=not seen)
        self._recent.append(jump)
        return jump

    # Where a raw timestamp would land on the continuous clock, without moving the clock
    # (for packets the decoder rejected: they have a time but no picture).
    def peek(self, key: str, raw_s: float) -> float:
        track = self._tracks.get(key)
        return raw_s + (track.offset if track else 0.0)
