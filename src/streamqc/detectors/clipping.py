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
A burst of fewer than `min_runs` runs is no clipping at all: a click or a pop that
reaches full scale once is audio.click's. So a burst is an event of severity minor or
above only where its runs hold at least `min_clipped_fraction` of its samples (over at
least one second); below that it is an `info` note saying how many samples reached
full scale.

A lossy codec removes the runs themselves: it keeps the band below its cut-off and
re-quantises, so a flat top comes back lowered (AAC at 128-192 kb/s: to about 0.90-0.96
of full scale) with a ripple of a few per cent at the cut-off frequency, and no sample
stays at full scale. What survives is the shape: a clipped crest is a plateau, a natural
one is rounded. So each half-cycle (between zero crossings) of a channel, smoothed over
`flat_smoothing_ms` to take out the codec's ripple, is measured by the width of its top:
a rounded crest (a sine's) is twice as wide at 80 % of its peak as at 95 %, a plateau
nearly as wide at both. A loud half-cycle (peak >= `flat_level_dbfs`, at least
`flat_min_width_ms` wide at 80 %) whose width at 95 % is at least
`flat_width_ratio` of its width at 80 % is a flat crest. Real programme has them now and
then (a square-ish synth note, a bass note with a flat crest, a hot master's limited
peak): on the clean real records measured, at most 9 in any second (a pop master at
-7.8 LUFS 8, a rain recording 9, dubstep 4, limiter-mastered speech, music and pink
noise 1-2), while passages clipped (2-35 % of their samples on the rails) and coded
with AAC at 128-192 kb/s or MP2 have 40 to several hundred a second (espeak and read
speech, a pop mix, hip-hop, piano). A channel with at least `flat_crests_per_s` flat
crests within one second is clipped there, whatever its peak; those crests join the
channel's burst like runs, and make it major. What this cannot see: noise-like
programme (pink noise) clipped and then coded, whose plateaus are a few samples long
and drowned in the codec's noise (MP2 leaves enough full-scale runs for an info note,
AAC nothing); high-pitched sound whose clipped crests are only a few samples wide (a
sung voice near 600 Hz, a frog's croak); and a passage with fewer clipped crests than
that in a second (a techno loop, 6 % clipped, through AAC: 16-19).

Per chunk, the common case (nothing near full scale) costs one pass for the peak;
runs are found with vectorised edges only in chunks that reach full scale, and a run
still going at the end of a chunk is carried into the next. Half-cycles are measured
only in audio that reaches `flat_level_dbfs`, a quarter second at a time, and only
those loud enough are smoothed and measured; the unfinished last half-cycle of each
channel is carried into the next block.
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
    min_runs: int = 3  # fewer runs (and no flat crests) are a pop at full scale, not clipping: no event
    major_after_runs: int = 10  # a burst with this many runs or more is major
    # share of a burst's samples (counted over at least 1 s) in clipped runs below
    # which it is a hot master's touches of full scale: an info note, not clipping
    min_clipped_fraction: float = 0.005
    # flat crests (the shape a clipped top keeps through a lossy codec)
    flat_level_dbfs: float = -4.4  # a half-cycle whose (smoothed) peak reaches this is loud enough to judge (0.6 of full scale)
    flat_smoothing_ms: float = 0.1  # moving average that takes out a codec's ripple before the shape is measured (5 samples at 48 kHz)
    flat_min_width_ms: float = 0.125  # a crest narrower than this at 80 % of its peak is too short to call flat
    flat_width_ratio: float = 0.7  # width at 95 % of the peak over width at 80 %: a sine's is 0.49, a plateau's near 1
    flat_crests_per_s: int = 20  # this many flat crests of one channel within 1 s are clipping (clean records: 9 at most)


@dataclasses.dataclass(slots=True)
class _Burst:
    start: float
    end: float
    runs: int
    longest: int  # samples
    clipped: int  # samples in runs
    channel: int
    rate: int
    flat: int = 0  # flat crests in stretches dense enough to be clipping


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
        self._flat_level = np.float32(10.0 ** (self.options.flat_level_dbfs / 20.0))
        self._tails: dict[int, tuple[float, np.ndarray]] = {}  # channel -> (time, samples) of its unfinished half-cycle
        self._held: list[np.ndarray] = []  # loud audio not yet measured for flat crests (measured a quarter second at a time)
        self._held_time = 0.0
        self._held_samples = 0
        self._recent: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # channel -> flat crest times of the last second, counted yet

    def feed(self, chunk: AudioChunk) -> list[Event]:
        samples = chunk.samples
        n = samples.shape[0]
        if n == 0:
            return []
        events: list[Event] = []
        if chunk.sample_rate != self._rate:
            self._open.clear()  # a run does not go on across a format change
            self._held.clear()
            self._tails.clear()
            self._recent.clear()
            self._rate = chunk.sample_rate
        rate = self._rate
        for channel, burst in list(self._bursts.items()):
            carried = self._open.get(channel)
            if chunk.time - burst.end > self.options.merge_gap_s and (
                carried is None or carried[0] - burst.end > self.options.merge_gap_s
            ):
                events.extend(self._events(self._bursts.pop(channel)))
        level = self._level
        starts: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        channels: list[int] = []
        peak = max(float(samples.max()), -float(samples.min()))
        loud = peak >= self._flat_level
        if self._held and abs(chunk.time - self._held_time - self._held_samples / rate) > 0.002:
            self._flush(events, rate)  # a gap in time: what was held does not go on into this chunk
            self._tails.clear()
        if loud or self._held:
            if not self._held:
                self._held_time = chunk.time
            self._held.append(samples)
            self._held_samples += n
            if not loud or self._held_samples >= rate // 4:
                self._flush(events, rate)
        else:
            self._tails.clear()  # a quiet chunk: no loud half-cycle goes on into the next
        if peak < level:  # the common case: nowhere near full scale
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

    def _flush(self, events: list[Event], rate: int) -> None:
        samples = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        self._flat_crests(events, samples, self._held_time, rate)
        self._held.clear()
        self._held_samples = 0

    def _flat_crests(self, events: list[Event], samples: np.ndarray, start: float, rate: int) -> None:
        """Find the flat crests of `samples` (from media time `start`) per channel; those in a dense second join the channel's burst."""
        o = self.options
        half = round(o.flat_smoothing_ms * rate / 2000.0)  # the moving average spans 2 * half + 1 samples
        min_width = max(2, round(o.flat_min_width_ms * rate / 1000.0))
        level = self._flat_level
        for channel in range(samples.shape[1]):
            column = samples[:, channel]
            time = start
            tail = self._tails.pop(channel, None)
            if tail is not None:
                time, column = tail[0], np.concatenate((tail[1], column))
            sign = np.signbit(column)
            starts = np.flatnonzero(sign[1:] != sign[:-1]) + 1
            tail = column[int(starts[-1]) if starts.size else 0 :][-(rate // 10) :]  # the unfinished half-cycle, 0.1 s at most
            self._tails[channel] = (time + (column.size - tail.size) / rate, tail)
            if starts.size == 0:
                continue
            bounds = np.concatenate(([0], starts))  # complete half-cycles: bounds[i]..bounds[i+1]
            length = np.diff(bounds)
            # smoothing only lowers a crest: half-cycles not loud before it are not after it
            raw = np.maximum.reduceat(np.abs(column[: starts[-1]]), bounds[:-1])
            pick = np.flatnonzero((raw >= level) & (length >= min_width))
            if pick.size == 0:
                continue
            size = length[pick]
            offset = np.cumsum(size) - size  # where each picked half-cycle begins among the gathered samples
            index = np.repeat(bounds[pick] - offset, size) + np.arange(int(size.sum())) + half
            padded = np.concatenate((np.zeros(half, np.float32), column, np.zeros(half, np.float32))) if half else column
            smooth = padded[index].copy()
            for k in range(1, half + 1):
                smooth += padded[index - k]
                smooth += padded[index + k]
            smooth = np.abs(smooth) / np.float32(2 * half + 1)
            crest = np.maximum.reduceat(smooth, offset)
            each = np.repeat(crest, size)
            top = smooth >= 0.8 * each
            w80 = np.add.reduceat(top, offset)
            w95 = np.add.reduceat(smooth >= 0.95 * each, offset)
            flat = np.flatnonzero((crest >= level) & (w80 >= min_width) & (w95 >= o.flat_width_ratio * w80))
            if flat.size:  # each flat crest's time: where its top (>= 80 % of its peak) begins and ends
                where = index - half
                begin = np.minimum.reduceat(np.where(top, where, column.size), offset)[flat]
                end = np.maximum.reduceat(np.where(top, where, 0), offset)[flat] + 1
                self._dense(events, channel, time + begin / rate, time + end / rate, rate)

    def _dense(self, events: list[Event], channel: int, begin: np.ndarray, end: np.ndarray, rate: int) -> None:
        """Add flat crests (start and end times) of one channel; those within a second holding enough of them join its burst."""
        n = self.options.flat_crests_per_s
        times, counted = self._recent.get(channel, (np.empty(0), np.empty(0, bool)))
        ends = np.concatenate((times, end))
        times = np.concatenate((times, begin))
        counted = np.concatenate((counted, np.zeros(begin.size, bool)))
        first = np.searchsorted(times, times - 1.0)  # the earliest crest within the second before each
        dense = np.flatnonzero(np.arange(times.size) - first + 1 >= n)
        if dense.size:
            cover = np.zeros(times.size + 1, np.int32)
            np.add.at(cover, first[dense], 1)
            np.add.at(cover, dense + 1, -1)
            new = (np.cumsum(cover[:-1]) > 0) & ~counted
            counted |= new
            picked = np.flatnonzero(new)
            if picked.size:
                self._add_flat(events, channel, times[picked], ends[picked], rate)
        keep = times > times[-1] - 1.0
        self._recent[channel] = (times[keep], counted[keep])

    def _add_flat(self, events: list[Event], channel: int, begin: np.ndarray, end: np.ndarray, rate: int) -> None:
        for lo, hi in self._groups(begin, end):
            self._fold(events, channel, float(begin[lo]), float(end[hi - 1]), rate, flat=hi - lo)

    def _groups(self, begin: np.ndarray, end: np.ndarray):
        """(lo, hi) slices of time-ordered spans, split where one ends `merge_gap_s` before the next begins."""
        breaks = np.flatnonzero(begin[1:] - end[:-1] > self.options.merge_gap_s) + 1
        bounds = np.concatenate(([0], breaks, [begin.size]))
        return zip(bounds[:-1].tolist(), bounds[1:].tolist())

    def _fold(self, events: list[Event], channel: int, first: float, last: float, rate: int,
              runs: int = 0, longest: int = 0, clipped: int = 0, flat: int = 0) -> None:
        """Fold a group of runs or flat crests into the channel's burst, or close that burst
        (to `events`) and open a new one when the group is more than `merge_gap_s` after it."""
        burst = self._bursts.get(channel)
        if burst is not None and first - burst.end <= self.options.merge_gap_s:
            burst.start = min(burst.start, first)
            burst.end = max(burst.end, last)
            burst.runs += runs
            burst.longest = max(burst.longest, longest)
            burst.clipped += clipped
            burst.flat += flat
            return
        if burst is not None:
            events.extend(self._events(burst))
        self._bursts[channel] = _Burst(first, last, runs, longest, clipped, channel, rate, flat)

    def _merge(self, events: list[Event], starts: list, lengths: list, channels: list[int], rate: int) -> None:
        """Fold this chunk's finished runs of each channel into its burst; closed bursts go to `events`."""
        for start, length, channel in zip(starts, lengths, channels):
            keep = length >= self.options.min_run_samples
            start, length = start[keep], length[keep]
            if not start.size:
                continue
            end = start + length / rate
            for lo, hi in self._groups(start, end):
                group = length[lo:hi]
                self._fold(events, channel, float(start[lo]), float(end[hi - 1]), rate,
                           runs=int(group.size), longest=int(group.max()), clipped=int(group.sum()))

    def finish(self, end: float) -> list[Event]:
        events: list[Event] = []
        if self._held:
            self._flush(events, self._rate)
        if self._open:
            opened = list(self._open.items())
            self._open.clear()
            starts = [np.array([start]) for _, (start, _) in opened]
            lengths = [np.array([length]) for _, (_, length) in opened]
            self._merge(events, starts, lengths, [channel for channel, _ in opened], self._rate)
        events += [e for burst in self._bursts.values() for e in self._events(burst)]
        self._bursts.clear()
        return sorted(events, key=lambda e: (e.start, e.details["channel"]))

    def _events(self, burst: _Burst) -> list[Event]:
        if burst.runs < self.options.min_runs and not burst.flat:
            return []  # one full-scale pop is a click's (audio.click), not a clipped passage
        return [self._event(burst)]

    def _event(self, burst: _Burst) -> Event:
        fraction = burst.clipped / (max(burst.end - burst.start, 1.0) * burst.rate)
        if burst.flat:
            severity = Severity.MAJOR  # a second dense with flat crests: audibly clipped
        elif fraction < self.options.min_clipped_fraction:
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
                "flat_crests": burst.flat,
                "level_dbfs": self.options.level_dbfs,
            },
        )
