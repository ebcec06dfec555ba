"""audio.clipping: sustained runs of full-scale samples, per channel.

A signal driven past full scale comes out with flat tops: several consecutive samples
at (or, from a float decoder, beyond) ±1.0. A loud master that merely touches 0 dBFS
does so with single samples, or two, so a run must be at least `min_run_samples` long
(3: a 1 kHz tone at 48 kHz clipped by only 0.1 dB already flattens 3 samples of every
crest). Clipping is reported per channel, as the issue and the corpus labels have it (a
hot feed often clips one side only, and a fix is per channel): runs of one channel
closer together than `merge_gap_s` are one event (one burst of distortion in that
channel), whose details name the channel, how many runs there were and how long the
longest was. A passage clipped in both channels is two events over the same time.

A hot master is not a clipped passage, though both put samples on the ceiling: what
differs is how much of the signal sits there. A limiter-mastered record touches full
scale in short runs now and then (a real pop master at -7.8 LUFS: 0.12-0.18 % of its
samples, in bursts; a close-miked recording 0.1 %), while a signal driven past full
scale spends a good part of every loud crest there (1-19 % of a burst's samples on
labelled clipped passages after MP2, AAC or none; a real distorted recording 14 %).
So a burst is an event of severity minor or above only where its runs hold at least
`min_clipped_fraction` of its samples (over at least one second); below that it is
an `info` note saying how many samples reached full scale.

Per chunk, the common case (nothing near full scale) costs one pass for the peak;
runs are found with vectorised edges only in chunks that reach full scale, and a run
still going at the end of a chunk is carried into the next.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk


@dataclasses.dataclass(frozen=True, slots=True)
class ClippingOptions:
    level_dbfs: float = -0.01  # samples at or above this magnitude (dBFS) are at full scale
    min_run_samples: int = 3  # consecutive full-scale samples in one channel that make a clipped run
    merge_gap_s: float = 1.0  # runs of one channel closer than this are one event (a pause in a hot passage does not split it)
    major_after_runs: int = 10  # a burst with this many runs or more is major
    # share of a burst's samples (counted over at least 1 s) in clipped runs below
    # which it is a hot master's touches of full scale: an info note, not clipping
    min_clipped_fraction: float = 0.005


@dataclasses.dataclass(slots=True)
class _Burst:
    start: float
    end: float
    runs: int
    longest: int  # samples
    clipped: int  # samples in runs
    channel: int
    rate: int


class ClippingDetector(Detector):
    name = "clipping"
    Options = ClippingOptions
    accepts = (AudioChunk,)

    def __init__(self, options: ClippingOptions | None = None) -> None:
        super().__init__(options)
        self._level = np.float32(10.0 ** (self.options.level_dbfs / 20.0))
        # channel -> (start time, samples so far) of a run still at full scale when the last chunk ended
        self._open: dict[int, tuple[float, int]] = {}
        self._bursts: dict[int, _Burst] = {}  # channel -> its burst still open
        self._rate = 0

    def feed(self, chunk: AudioChunk) -> list[Event]:
        samples = chunk.samples
        n = samples.shape[0]
        if n == 0:
            return []
        events: list[Event] = []
        if chunk.sample_rate != self._rate:
            self._open.clear()  # a run does not go on across a format change
            self._rate = chunk.sample_rate
        rate = self._rate
        for channel, burst in list(self._bursts.items()):
            carried = self._open.get(channel)
            if chunk.time - burst.end > self.options.merge_gap_s and (
                carried is None or carried[0] - burst.end > self.options.merge_gap_s
            ):
                events.append(self._event(self._bursts.pop(channel)))
        level = self._level
        starts: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        channels: list[int] = []
        if samples.max() < level and samples.min() > -level:  # the common case: nowhere near full scale
            if not self._open:
                return sorted(events, key=lambda e: (e.start, e.details["channel"]))
            for channel, (start, length) in self._open.items():
                starts.append(np.array([start]))
                lengths.append(np.array([length]))
                channels.append(channel)
            self._open.clear()
        else:
            full = (samples >= level) | (samples <= -level)  # (n, channels)
            for channel in range(samples.shape[1]):
                column = full[:, channel]
                carried = self._open.pop(channel, None)
                if not column.any():
                    if carried is not None:
                        starts.append(np.array([carried[0]]))
                        lengths.append(np.array([carried[1]]))
                        channels.append(channel)
                    continue
                edges = np.diff(column.view(np.int8), prepend=np.int8(0), append=np.int8(0))
                begin = np.flatnonzero(edges == 1)
                length = np.flatnonzero(edges == -1) - begin
                time = chunk.time + begin / rate
                if carried is not None:
                    if begin[0] == 0:  # the carried run goes on into this chunk
                        length[0] += carried[1]
                        time[0] = carried[0]
                    else:
                        time = np.concatenate(([carried[0]], time))
                        length = np.concatenate(([carried[1]], length))
                if column[-1]:  # still at full scale when the chunk ends: carry the last run
                    self._open[channel] = (float(time[-1]), int(length[-1]))
                    time, length = time[:-1], length[:-1]
                starts.append(time)
                lengths.append(length)
                channels.append(channel)
        if starts:
            self._merge(events, starts, lengths, channels, rate)
        return sorted(events, key=lambda e: (e.start, e.details["channel"]))

    def _merge(self, events: list[Event], starts: list, lengths: list, channels: list[int], rate: int) -> None:
        """Fold this chunk's finished runs of each channel into its burst; closed bursts go to `events`."""
        gap = self.options.merge_gap_s
        for start, length, channel in zip(starts, lengths, channels):
            keep = length >= self.options.min_run_samples
            start, length = start[keep], length[keep]
            if not start.size:
                continue
            end = start + length / rate
            breaks = np.flatnonzero(start[1:] - end[:-1] > gap) + 1
            bounds = np.concatenate(([0], breaks, [start.size]))
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                first, last = float(start[lo]), float(end[hi - 1])
                group = length[lo:hi]
                burst = self._bursts.get(channel)
                if burst is not None and first - burst.end <= gap:
                    burst.end = max(burst.end, last)
                    burst.runs += int(group.size)
                    burst.longest = max(burst.longest, int(group.max()))
                    burst.clipped += int(group.sum())
                    continue
                if burst is not None:
                    events.append(self._event(burst))
                self._bursts[channel] = _Burst(first, last, int(group.size), int(group.max()), int(group.sum()), channel, rate)

    def finish(self, end: float) -> list[Event]:
        events: list[Event] = []
        if self._open:
            opened = list(self._open.items())
            self._open.clear()
            starts = [np.array([start]) for _, (start, _) in opened]
            lengths = [np.array([length]) for _, (_, length) in opened]
            self._merge(events, starts, lengths, [channel for channel, _ in opened], self._rate)
        events += [self._event(burst) for burst in self._bursts.values()]
        self._bursts.clear()
        return sorted(events, key=lambda e: (e.start, e.details["channel"]))

    def _event(self, burst: _Burst) -> Event:
        fraction = burst.clipped / (max(burst.end - burst.start, 1.0) * burst.rate)
        if fraction < self.options.min_clipped_fraction:
            severity = Severity.INFO  # full scale touched, the signal not driven into it
        elif burst.runs >= self.options.major_after_runs:
            severity = Severity.MAJOR
        else:
            severity = Severity.MINOR
        return Event(
            kind="audio.clipping",
            start=burst.start,
            end=burst.end,
            severity=severity,
            confidence=0.9,
            details={
                "channel": burst.channel,
                "runs": burst.runs,
                "longest_run_samples": burst.longest,
                "longest_run_ms": round(burst.longest * 1000.0 / burst.rate, 2),
                "clipped_samples": burst.clipped,
                "clipped_fraction": round(fraction, 5),
                "level_dbfs": self.options.level_dbfs,
            },
        )
