"""What every detector shares: the feed/finish contract, options, and run tracking.

A detector is a small state machine over buffers of one kind. It does no I/O and
keeps no frames: only the few numbers (or one thumbnail) it needs from the past.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from streamqc.events import Event, Severity
from streamqc.media import AudioChunk, Buffer, StreamNote, VideoFrame


class Detector:
    """Base class. Subclasses set `name`, `Options` and `accepts`, and implement feed/finish."""

    name: ClassVar[str]  # the options namespace: `--set <name>.<option>=value`
    Options: ClassVar[type]  # a frozen dataclass; every field has a default and a unit in its name
    accepts: ClassVar[tuple[type, ...]] = (VideoFrame, AudioChunk, StreamNote)

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    def feed(self, buffer: Buffer) -> list[Event]:
        raise NotImplementedError

    def finish(self, end: float) -> list[Event]:
        """The input ended at media time `end`: close what is open."""
        return []


def severity_for(duration_s: float, major_after_s: float, critical_after_s: float) -> Severity:
    if duration_s >= critical_after_s:
        return Severity.CRITICAL
    if duration_s >= major_after_s:
        return Severity.MAJOR
    return Severity.MINOR


def duration_event(kind: str, start: float, end: float, options: Any, ongoing: bool = False, **details: Any) -> Event:
    """An event for a condition that lasted from `start` to `end`, graded by how long.

    `ongoing`: the condition still goes on (a live announcement; `end` is "so far").
    """
    return Event(
        ongoing=ongoing,
        kind=kind,
        start=start,
        end=end,
        severity=severity_for(end - start, options.major_after_s, options.critical_after_s),
        confidence=0.95,
        details={"duration_s": round(end - start, 3), **details},
    )


class RunTracker:
    """Turns a per-step yes/no condition into intervals that last at least `min_duration_s`.

    `update(time, active)` is called once per step (frame or audio window) with the
    step's start time; a run that ends returns its (start, end) if it was long enough.
    `reached()` reports a run still going on, once, when it first lasts long enough: a
    live monitor alerts then instead of waiting for the end.
    """

    def __init__(self, min_duration_s: float) -> None:
        self.min_duration_s = min_duration_s
        self.start: float | None = None
        self.last_end: float | None = None
        self.announced = False

    def update(self, time: float, active: bool, step_end: float) -> tuple[float, float] | None:
        closed = None
        if active:
            if self.start is None:
                self.start = time
            self.last_end = step_end
        elif self.start is not None:
            closed = self._close(time)
        return closed

    def finish(self, end: float) -> tuple[float, float] | None:
        if self.start is None:
            return None
        return self._close(max(end, self.last_end or end))

    def reached(self) -> tuple[float, float] | None:
        """(start, end so far) of the open run the first time it lasts min_duration_s, else None."""
        if self.announced or self.start is None or self.open_for < self.min_duration_s:
            return None
        self.announced = True
        assert self.last_end is not None
        return self.start, self.last_end

    @property
    def open_for(self) -> float:
        if self.start is None or self.last_end is None:
            return 0.0
        return self.last_end - self.start

    def _close(self, end: float) -> tuple[float, float] | None:
        start, self.start, self.last_end = self.start, None, None
        announced, self.announced = self.announced, False
        assert start is not None
        # An announced run is always closed, so a live alert is never left open.
        return (start, end) if announced or end - start >= self.min_duration_s else None


class FrameSampler:
    """Picks the frames a picture detector looks at: at most `max_fps` a second.

    A freeze or a black screen lasts seconds; looking at 15 pictures a second finds its
    start within a frame or two and halves the cost at 30 fps. 0 means every frame.
    """

    def __init__(self, max_fps: float) -> None:
        self.interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._next = float("-inf")

    def wants(self, frame: VideoFrame) -> bool:
        if frame.time + frame.duration * 0.5 < self._next:
            return False
        self._next = max(self._next + self.interval, frame.time + self.interval - frame.duration * 0.5)
        return True


class AudioWindows:
    """Cuts a stream of audio chunks into fixed windows, carrying the remainder over.

    Yields (start_time, windows) with windows shaped (n, window_samples, channels), so
    detectors compute per-window statistics in one vectorised call per chunk.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._rest: np.ndarray | None = None
        self._rest_time = 0.0
        self._rate = 0

    def push(self, chunk: AudioChunk) -> Iterator[tuple[float, np.ndarray, int]]:
        samples = chunk.samples
        if self._rate != chunk.sample_rate or self._rest is None or self._rest.shape[1] != samples.shape[1]:
            self._rate = chunk.sample_rate
            self._rest = samples[:0]
            self._rest_time = chunk.time
        elif self._rest.shape[0] == 0:
            self._rest_time = chunk.time
        size = max(1, int(round(self.window_s * self._rate)))
        # Joined along the sample axis of the transposed views, the result stays
        # channel-major like the chunks (reductions over interleaved arrays are ~10x slower).
        data = np.concatenate([self._rest.T, samples.T], axis=1).T if self._rest.shape[0] else samples
        n = data.shape[0] // size
        if n:
            yield self._rest_time, data[: n * size].reshape(n, size, data.shape[1]), self._rate
        self._rest = data[n * size :]
        self._rest_time += n * size / self._rate


def dbfs(value: np.ndarray | float) -> np.ndarray:
    """Amplitude (1.0 = full scale) to dBFS; silence is -inf-safe at -200 dB."""
    return 20.0 * np.log10(np.maximum(value, 1e-10))


def apply_options(options_type: type, values: dict[str, Any], namespace: str) -> Any:
    """Build an options dataclass from user values, naming the bad key on error."""
    from streamqc.errors import ConfigError

    fields = {f.name: f for f in dataclasses.fields(options_type)}
    converted: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown option {namespace}.{key} (known: {known})")
        default = fields[key].default
        try:
            value = converted[key] = _coerce(raw, type(default))
        except (TypeError, ValueError):
            raise ConfigError(f"bad value for {namespace}.{key}: {raw!r} (expected {type(default).__name__})") from None
        # Durations, rates, sizes and counts are not negative; levels in dB under full
        # scale are not positive: a value of the other sign is a typo, not a setting.
        if type(default) in (int, float) and (value < 0 <= default or default < 0 < value):
            sign = "negative" if value < 0 else "positive"
            raise ConfigError(f"bad value for {namespace}.{key}: {raw!r} (cannot be {sign})")
    try:
        return dataclasses.replace(options_type(), **converted)
    except ValueError as err:  # an options class's own check (__post_init__)
        raise ConfigError(f"bad value for {namespace}.{err}") from None


def _coerce(raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise TypeError(raw)
        return float(raw)
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise TypeError(raw)
        return int(raw)
    if kind is str:
        return str(raw)
    return raw
