"""audio.click: isolated clicks, pops and discontinuities.

A click is a few samples the waveform could not have reached from its neighbourhood:
an impulse, a splice that steps the waveform for a moment, a damaged frame. Four
things set it apart from the transients of programme (drum hits, plosives, crunches):

- it stands far out of its surroundings: its sample peak is `ratio_db` above the RMS of
  `context_s` of audio on EACH side (a drum hit or a plosive is followed by its own
  body, as loud as the onset, so it does not stand out from its after-context);
- it is sharp: its steps from sample to sample (the first difference, the residual of
  the simplest prediction) stand out too, by `step_ratio_db` over the RMS of the steps
  around it (a loud but smooth excursion of speech or bass does not); a click whose
  edges a codec has rounded off (a short offset of the waveform, a splice) must then
  tower over its neighbourhood by `towering_margin_db` instead;
- nothing nearby comes close: it is `margin_db` above every other peak within
  `neighbourhood_s` (a sample peak, not an average, so a noisy passage with a few
  loud grains does not pass);
- it is alone: no other transient (standing out by `transient_ratio_db`, and less
  than `rival_db` quieter) within `isolation_s`. Crackle, crunching and rattles are
  many such transients in a row: texture, not a click.

A codec smears a click over a few milliseconds (AAC's short blocks, MP2's subband
filters): the `guard_s` either side of it belong to it and are left out of every
context. Quiet ticks under `min_peak_dbfs` are not reported.

Cost: per 1 ms window one energy sum (the contexts come from running sums of those),
then one comparison of every sample with its window's threshold; only the rare samples
above it (candidates) are looked at one by one. A click is reported `isolation_s`
after it, and up to `batch_s` more (audio is analysed a few chunks at a time); the
first and last `context_s` + `guard_s` of the input have no full context and are not
judged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamqc.detectors.base import AudioWindows, Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk


@dataclasses.dataclass(frozen=True, slots=True)
class ClickOptions:
    ratio_db: float = 16.5  # a click's sample peak over the RMS of the louder of its two contexts
    step_ratio_db: float = 19.0  # its largest sample-to-sample step over the RMS of the steps around it
    # ... unless it towers this far over every peak near it (a step whose edges a codec
    # rounded off is not sharp, but nothing around it comes close)
    towering_margin_db: float = 7.0
    margin_db: float = 4.0  # its peak over every other sample peak within neighbourhood_s
    # quieter clicks are not reported: at that level real recordings (rain, speech, the
    # end of a bite in the crunching clip) have isolated ticks that stand out as much
    min_peak_dbfs: float = -18.0
    transient_ratio_db: float = 14.0  # a neighbour standing out this much is another transient
    isolation_s: float = 0.5  # a click has no other transient within this, either side ...
    rival_db: float = 10.0  # ... that is less than this much quieter than the click
    context_s: float = 0.04  # the RMS context, on each side
    neighbourhood_s: float = 0.1  # the peak context, on each side
    guard_s: float = 0.004  # the click's own smear (codec ringing), left out of its contexts
    window_s: float = 0.001  # energy is summed per window of this length
    major_peak_dbfs: float = -6.0  # a click this loud is a major pop
    batch_s: float = 0.25  # audio analysed in one go (clicks are reported up to this much later)


@dataclasses.dataclass(slots=True)
class _Transient:
    time: float
    window: int  # absolute window index
    channel: int
    peak: float  # squared sample peak
    ratio: float  # peak over the context mean square
    step_ratio: float  # largest squared step over the mean square of the steps around
    margin: float  # peak over the largest other peak of the neighbourhood


def _db(power: float) -> float:
    return round(10.0 * float(np.log10(max(power, 1e-20))), 1)


class ClickDetector(Detector):
    name = "click"
    Options = ClickOptions
    accepts = (AudioChunk,)

    def __init__(self, options: ClickOptions | None = None) -> None:
        super().__init__(options)
        opts = self.options
        self._windows = AudioWindows(opts.window_s)
        self._ratio = 10.0 ** (opts.ratio_db / 10.0)
        self._step_ratio = 10.0 ** (opts.step_ratio_db / 10.0)
        self._transient_ratio = 10.0 ** (opts.transient_ratio_db / 10.0)
        self._margin = 10.0 ** (opts.margin_db / 10.0)
        self._towering = 10.0 ** (opts.towering_margin_db / 10.0)
        self._rival = 10.0 ** (-opts.rival_db / 10.0)
        self._min_peak = 10.0 ** (opts.min_peak_dbfs / 10.0)
        self._rate = 0
        self._channels = 0
        self._size = 0  # samples per window
        # Samples (channels, windows, size) and window energies (channels, windows) from
        # absolute window self._base on: what is still to judge plus the context it needs.
        self._samples = np.zeros((0, 0, 0), np.float32)
        self._energy = np.zeros((0, 0), np.float64)
        self._base = 0
        self._origin = 0.0  # time of absolute window 0
        self._judged = 0  # absolute index of the first window not judged yet
        self._transients: list[_Transient] = []  # found, waiting to know whether they are alone
        self._decided: list[_Transient] = []  # decided on, still near enough to be another's neighbour
        self._queued: list[AudioChunk] = []  # chunks not analysed yet
        self._queued_s = 0.0

    def feed(self, chunk: AudioChunk) -> list[Event]:
        # Chunks are taken a few at a time: numpy's cost per call outweighs the work on one.
        queued = self._queued
        if queued and (chunk.sample_rate != queued[0].sample_rate or chunk.samples.shape[1] != queued[0].samples.shape[1]):
            events = self._analyse(self._joined())
        else:
            events = []
        queued.append(chunk)
        self._queued_s += chunk.duration
        if self._queued_s >= self.options.batch_s:
            events += self._analyse(self._joined())
        return events

    def _joined(self) -> AudioChunk:
        chunks, self._queued, self._queued_s = self._queued, [], 0.0
        if len(chunks) == 1:
            return chunks[0]
        first = chunks[0]
        # Joined along the sample axis of the transposed (channel-major) views.
        samples = np.concatenate([c.samples.T for c in chunks], axis=1).T
        return AudioChunk(first.time, samples, first.sample_rate, first.format)

    def _analyse(self, chunk: AudioChunk) -> list[Event]:
        events: list[Event] = []
        for start, windows, rate in self._windows.push(chunk):
            per_channel = windows.transpose(2, 0, 1)  # (channels, n, size): rows contiguous in channel-major audio
            if rate != self._rate or per_channel.shape[0] != self._channels:
                events += self._decide(float("inf"))
                self._reset(rate, per_channel.shape[0], per_channel.shape[2], start)
            energy = np.einsum("cij,cij->ci", per_channel, per_channel, dtype=np.float64)
            self._samples = np.concatenate((self._samples, per_channel), axis=1)
            self._energy = np.concatenate((self._energy, energy), axis=1)
            self._find()
            frontier = self._origin + self._judged * self._step
            events += self._decide(frontier - self.options.isolation_s)
            self._trim()
        return events

    @property
    def _step(self) -> float:
        return self._size / self._rate

    def _reset(self, rate: int, channels: int, size: int, start: float) -> None:
        self._rate, self._channels, self._size = rate, channels, size
        self._guard = max(1, int(round(self.options.guard_s / self._step)))
        self._context = max(2, int(round(self.options.context_s / self._step)))
        self._reach = max(self._guard + 1, int(round(self.options.neighbourhood_s / self._step)))
        self._samples = np.zeros((channels, 0, size), np.float32)
        self._energy = np.zeros((channels, 0), np.float64)
        self._base = 0
        self._origin = start
        self._judged = self._guard + self._context  # the input's first moments have no before-context
        self._transients = []
        self._decided = []

    def _find(self) -> None:
        """Judge the windows whose after-context has arrived: collect their transients."""
        guard, context = self._guard, self._context
        end = self._base + self._energy.shape[1] - guard - context  # absolute
        if end <= self._judged:
            return
        first, last = self._judged - self._base, end - self._base  # relative to the buffers
        self._judged = end
        sums = np.zeros((self._channels, self._energy.shape[1] + 1), np.float64)
        np.cumsum(self._energy, axis=1, out=sums[:, 1:])
        before = sums[:, first - guard : last - guard] - sums[:, first - guard - context : last - guard - context]
        after = (sums[:, first + guard + 1 + context : last + guard + 1 + context]
                 - sums[:, first + guard + 1 : last + guard + 1])
        mean_square = np.maximum(before, after) / (context * self._size)
        threshold = np.maximum(self._transient_ratio * mean_square, self._min_peak).astype(np.float32)
        block = self._samples[:, first:last]
        above = np.square(block) > threshold[:, :, None]
        if not np.count_nonzero(above):
            return  # the common case: nothing stands out anywhere
        channels, windows = np.nonzero(above.any(axis=2))
        for channel, offset in zip(channels.tolist(), windows.tolist()):
            window = first + offset
            peak = float(np.max(np.square(self._samples[channel, window])))
            lo = self._samples[channel, max(0, window - guard) : window + guard + 1]
            if peak < float(np.max(np.square(lo))):
                continue  # the smear of a bigger peak next to it
            near = self._samples[channel, max(0, window - self._reach) : window - guard]
            far = self._samples[channel, window + guard + 1 : window + self._reach + 1]
            others = max(float(np.max(np.abs(near), initial=0.0)), float(np.max(np.abs(far), initial=0.0)))
            around = self._samples[channel, window - guard - context : window + guard + context + 1].ravel()
            steps = np.square(np.diff(around))
            span = context * self._size
            step_level = max(float(steps[:span].mean()), float(steps[-span:].mean()))
            own = steps[(guard + context) * self._size - 1 : (guard + context + 1) * self._size]
            self._transients.append(_Transient(
                time=self._origin + (self._base + window) * self._step,
                window=self._base + window,
                channel=channel,
                peak=peak,
                ratio=peak / max(float(mean_square[channel, offset]), 1e-20),
                step_ratio=float(own.max()) / max(step_level, 1e-20),
                margin=peak / max(others * others, 1e-20),
            ))

    def _decide(self, until: float) -> list[Event]:
        """Transients up to `until` have their whole isolation span: report the clicks."""
        ready = [t for t in self._transients if t.time <= until]
        if not ready:
            return []
        self._transients = [t for t in self._transients if t.time > until]
        ready.sort(key=lambda t: t.time)
        same = self._guard * self._step
        # One transient in several channels, or spread over its own guard, is one group.
        groups: list[list[_Transient]] = []
        for transient in ready:
            if groups and transient.time - groups[-1][-1].time <= same:
                groups[-1].append(transient)
            else:
                groups.append([transient])
        isolation = self.options.isolation_s
        known = self._decided + ready + self._transients
        events: list[Event] = []
        for group in groups:
            clicks = [t for t in group if t.ratio >= self._ratio and t.margin >= self._margin
                      and (t.step_ratio >= self._step_ratio or t.margin >= self._towering)]
            if not clicks:
                continue
            start, end = group[0].time, group[-1].time
            rival = max(t.peak for t in group) * self._rival
            if not any(start - isolation <= t.time < start - same or end + same < t.time <= end + isolation
                       for t in known if t.peak >= rival):
                events.append(self._event(clicks))
        self._decided = [t for t in self._decided + ready if t.time > until - isolation]
        return events

    def _trim(self) -> None:
        """Forget the windows no later judgement or neighbourhood needs."""
        keep_from = self._judged - self._guard - max(self._context, self._reach) - self._base
        if keep_from > 0:
            self._samples = self._samples[:, keep_from:]
            self._energy = self._energy[:, keep_from:]
            self._base += keep_from

    def _event(self, clicks: list[_Transient]) -> Event:
        loudest = max(clicks, key=lambda t: t.peak)
        peak_dbfs = _db(loudest.peak)
        return Event(
            kind="audio.click",
            start=clicks[0].time,
            end=clicks[-1].time + self._step,
            severity=Severity.MAJOR if peak_dbfs >= self.options.major_peak_dbfs else Severity.MINOR,
            confidence=0.8,
            details={
                "channels": sorted({t.channel for t in clicks}),
                "peak_dbfs": peak_dbfs,
                "ratio_db": _db(loudest.ratio),
                "step_ratio_db": _db(loudest.step_ratio),
                "margin_db": _db(loudest.margin),
            },
        )

    def finish(self, end: float) -> list[Event]:
        events = self._analyse(self._joined()) if self._queued else []
        # What is still waiting heard no transient after it up to the end of the input.
        return events + self._decide(float("inf"))
