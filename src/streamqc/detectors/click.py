"""audio.click: isolated clicks, pops and discontinuities.

A click is a few samples the waveform could not have reached from its neighbourhood:
an impulse, a splice that steps the waveform for a moment, a damaged frame. Inside
dense programme (speech, music, noise) it need not be louder than the programme, so it
is judged as audio restoration judges it: by the residual of a short-term linear
predictor. Speech, music and noise are predictable from their last few milliseconds
(an all-pole model of `order` coefficients, fitted on `context_s` of audio on each side
of the candidate, without the candidate); a click is not. What sets a click apart:

- its prediction error stands far out of the error around it: the error's peak is
  `ratio_db` above the RMS of the error over `context_s` on EACH side, and
  `margin_db` above every other error peak within `neighbourhood_s` (the glottal
  pulses of voiced speech, the grains of noise, come in many alike);
- it has no body: the programme after it is no more than `body_db` louder than before
  it, unless its sample peak towers `ratio_towering_db` over the RMS of both sides and
  its error stands `onset_audible_db` over the louder sound after it (a click on the
  onset of a word or a note). A drum hit, a clap, a knock or a plosive is an onset
  followed by its own decaying sound, and its error stands only a few dB over that
  decay (a knock 5 dB; clicks on onsets 10 dB and more); a click is added to the
  programme and leaves it as it was, so the programme also goes on after it: where the sound after it is more than `cut_db`
  quieter than before, the "click" is the edge of a cut to silence, which
  audio.silence or audio.dropout reports;
- it is alone: no other transient (an error peak standing out by
  `transient_ratio_db`, and less than `rival_db` quieter) within `isolation_s`.
  Crackle, crunching, rattles and rhythm are many such transients: texture, not a click;
  and it stands in no texture of ticks: fewer than `texture_ticks` first-difference
  steps (the candidate screen's, at any level) less than `texture_db` below its own
  within `texture_s` either side. A stream of water is thousands of little ticks, and
  now and then a drop louder than all of them within half a second: it is the texture's
  largest tick, not a fault (11-14 such ticks around water drops; 8 at most around
  clicks in speech, music, rain and noise);
- it is heard: its prediction error is `audible_db` over the programme's RMS (the
  predictor finds tiny irregularities in very predictable sound, whale song, a held
  note, that nobody hears), or `smeared_audible_db` where its sample peak towers
  `ratio_towering_db` over the programme (a codec smears part of a click into what the
  predictor can follow); and its sample peak reaches `min_peak_dbfs` (quieter ticks in
  real recordings stand out as much and are not faults anyone hears).

A codec smears a click over a few milliseconds (AAC's short blocks, MP2's subband
filters): the `guard_s` either side of it belong to it and are left out of every
context and of the predictor's fit.

Cost: per sample one first difference (the simplest prediction) and one comparison
with its window's threshold; the predictor is fitted and run only around the rare
candidates that stand out there (`candidate_db`) and could be heard (a first step within
`step_slack_db` of the audibility bar). A click is reported `isolation_s` or `texture_s`
(the longer) after it, and up to
`batch_s` more (audio is analysed a few chunks at a time); the first and last
`neighbourhood_s` + `guard_s` of the input have no full context and are not judged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from streamqc.detectors.base import AudioWindows, Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk


@dataclasses.dataclass(frozen=True, slots=True)
class ClickOptions:
    order: int = 24  # coefficients of the short-term predictor (its memory: 0.5 ms at 48 kHz)
    ratio_db: float = 17.0  # the prediction error's peak over its RMS on the louder side
    margin_db: float = 9.0  # ... and over every other error peak within neighbourhood_s
    audible_db: float = 5.0  # the error's peak over the programme's RMS on the louder side ...
    # ... or this much where its sample peak towers ratio_towering_db over that RMS (a codec
    # smears part of a click into a waveform the predictor can follow)
    smeared_audible_db: float = 2.0
    body_db: float = 6.0  # the programme after it at most this much louder than before it ...
    ratio_towering_db: float = 12.0  # ... unless its sample peak stands this far over both sides' RMS
    onset_audible_db: float = 8.0  # ... and its error this far over the louder programme after it
    cut_db: float = 30.0  # the programme after it this much quieter than before: a cut's edge, not a click
    # quieter clicks are not reported: at that level real recordings (rain, speech, the
    # end of a bite in the crunching clip) have isolated ticks that stand out as much
    min_peak_dbfs: float = -18.0
    candidate_db: float = 16.0  # a first-difference step this far over the steps around is looked at ...
    step_slack_db: float = 3.0  # ... when it is at most this much short of audible_db over the programme
    transient_ratio_db: float = 14.0  # an error peak standing out this much is another transient
    isolation_s: float = 0.5  # a click has no other transient within this, either side ...
    rival_db: float = 10.0  # ... that is less than this much quieter than the click
    texture_s: float = 1.0  # and stands in no texture of ticks: within this, either side, ...
    texture_db: float = 20.0  # ... fewer than texture_ticks steps less than this much below its own
    texture_ticks: int = 10
    context_s: float = 0.04  # the RMS contexts and the predictor's fit, on each side
    neighbourhood_s: float = 0.1  # the error-peak context, on each side
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
    step: float  # squared largest first difference
    error: float  # squared peak of the prediction error
    ratio: float  # error peak over the error's mean square on the louder side
    margin: float  # error peak over the largest other error peak of the neighbourhood
    body: float  # mean square after over mean square before
    towering: float  # sample peak over the louder side's mean square
    audible: float  # error peak over the programme's mean square on the louder side


def _db(power: float) -> float:
    return round(10.0 * float(np.log10(max(power, 1e-20))), 1)


def _predictor(sides: np.ndarray, order: int) -> np.ndarray:
    """Inverse filter [1, -a1 .. -ap] of the all-pole model of both sides (rows of `sides`;
    autocorrelation method, each side Hann-windowed; a little white noise keeps it stable
    on silence)."""
    n = sides.shape[1]
    spectrum = np.fft.rfft(sides * np.hanning(n), 2 * n)
    r = np.fft.irfft(np.einsum("ij,ij->j", spectrum, spectrum.conj()).real, 2 * n)[: order + 1]
    r[0] = r[0] * (1.0 + 1e-3) + 1e-12
    coefficients = solve_toeplitz(r[:order], r[1:])
    return np.concatenate(([1.0], -coefficients))


class ClickDetector(Detector):
    name = "click"
    Options = ClickOptions
    accepts = (AudioChunk,)

    def __init__(self, options: ClickOptions | None = None) -> None:
        super().__init__(options)
        opts = self.options
        self._windows = AudioWindows(opts.window_s)
        self._ratio = 10.0 ** (opts.ratio_db / 10.0)
        self._candidate = 10.0 ** (opts.candidate_db / 10.0)
        self._transient_ratio = 10.0 ** (opts.transient_ratio_db / 10.0)
        self._margin = 10.0 ** (opts.margin_db / 10.0)
        self._body = 10.0 ** (opts.body_db / 10.0)
        self._onset_audible = 10.0 ** (opts.onset_audible_db / 10.0)
        self._texture = 10.0 ** (-opts.texture_db / 10.0)
        self._cut = 10.0 ** (-opts.cut_db / 10.0)
        self._audible = 10.0 ** (opts.audible_db / 10.0)
        self._smeared = 10.0 ** (opts.smeared_audible_db / 10.0)
        self._slack = 10.0 ** (-opts.step_slack_db / 10.0)
        self._towering = 10.0 ** (opts.ratio_towering_db / 10.0)
        self._rival = 10.0 ** (-opts.rival_db / 10.0)
        self._min_peak = 10.0 ** (opts.min_peak_dbfs / 10.0)
        self._rate = 0
        self._channels = 0
        self._size = 0  # samples per window
        # Samples (channels, windows, size), their first differences and the differences'
        # window energies (channels, windows) from absolute window self._base on: what is
        # still to judge plus the context it needs.
        self._samples = np.zeros((0, 0, 0), np.float32)
        self._steps = np.zeros((0, 0, 0), np.float32)
        self._energy = np.zeros((0, 0), np.float64)
        self._last = np.zeros(0, np.float32)  # each channel's last sample (for the next difference)
        self._base = 0
        self._origin = 0.0  # time of absolute window 0
        self._judged = 0  # absolute index of the first window not judged yet
        self._transients: list[_Transient] = []  # found, waiting to know whether they are alone
        self._decided: list[_Transient] = []  # decided on, still near enough to be another's neighbour
        self._ticks: list[tuple[float, float]] = []  # every candidate step (time, squared step), recent
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
            channels, n, size = per_channel.shape
            flat = per_channel.reshape(channels, n * size)
            steps = np.diff(flat, axis=1, prepend=self._last[:, None]).reshape(channels, n, size)
            self._last = flat[:, -1].copy()
            energy = np.einsum("cij,cij->ci", steps, steps, dtype=np.float64)
            self._samples = np.concatenate((self._samples, per_channel), axis=1)
            self._steps = np.concatenate((self._steps, steps), axis=1)
            self._energy = np.concatenate((self._energy, energy), axis=1)
            self._find()
            frontier = self._origin + self._judged * self._step
            events += self._decide(frontier - max(self.options.isolation_s, self.options.texture_s))
            self._trim()
        return events

    @property
    def _step(self) -> float:
        return self._size / self._rate

    def _reset(self, rate: int, channels: int, size: int, start: float) -> None:
        self._rate, self._channels, self._size = rate, channels, size
        self._guard = max(1, int(round(self.options.guard_s / self._step)))
        self._context = max(2, int(round(self.options.context_s / self._step)))
        self._reach = max(self._guard + self._context, int(round(self.options.neighbourhood_s / self._step)))
        self._samples = np.zeros((channels, 0, size), np.float32)
        self._steps = np.zeros((channels, 0, size), np.float32)
        self._energy = np.zeros((channels, 0), np.float64)
        self._last = np.zeros(channels, np.float32)
        self._base = 0
        self._origin = start
        self._judged = self._guard + self._reach  # the input's first moments have no before-context
        self._transients = []
        self._decided = []
        self._ticks = []

    def _find(self) -> None:
        """Judge the windows whose after-context has arrived: collect their transients."""
        guard, context, reach = self._guard, self._context, self._reach
        end = self._base + self._energy.shape[1] - guard - reach  # absolute
        if end <= self._judged:
            return
        first, last = self._judged - self._base, end - self._base  # relative to the buffers
        self._judged = end
        # Candidates: a step (the error of the simplest prediction) standing out of the
        # steps on both sides. Cheap, loose, and the predictor judges what passes.
        sums = np.zeros((self._channels, self._energy.shape[1] + 1), np.float64)
        np.cumsum(self._energy, axis=1, out=sums[:, 1:])
        before = sums[:, first - guard : last - guard] - sums[:, first - guard - context : last - guard - context]
        after = (sums[:, first + guard + 1 + context : last + guard + 1 + context]
                 - sums[:, first + guard + 1 : last + guard + 1])
        mean_square = np.maximum(before, after) / (context * self._size)
        threshold = (self._candidate * mean_square).astype(np.float32)
        block = self._steps[:, first:last]
        above = np.square(block) > threshold[:, :, None]
        if not np.count_nonzero(above):
            return  # the common case: nothing stands out anywhere
        channels, windows = np.nonzero(above.any(axis=2))
        for channel, offset in zip(channels.tolist(), windows.tolist()):
            window = first + offset
            step = float(np.max(np.square(self._steps[channel, window])))
            if step < float(np.max(np.square(self._steps[channel, window - guard : window + guard + 1]))):
                continue  # the smear of a bigger step next to it
            self._ticks.append((self._origin + (self._base + window) * self._step, step))
            transient = self._judge(channel, window, step)
            if transient is not None:
                self._transients.append(transient)

    def _judge(self, channel: int, window: int, step: float) -> _Transient | None:
        """The prediction error around a candidate (its largest squared step `step`), from a
        predictor of both sides."""
        guard, context, reach, size = self._guard, self._context, self._reach, self._size
        order = self.options.order
        x = self._samples[channel]
        own_from, own_to = window - guard, window + guard + 1  # windows, relative
        peak = float(np.max(np.square(x[own_from:own_to])))
        if peak < self._min_peak:
            return None  # too quiet to be reported, and too quiet to be anyone's rival
        sides = np.stack((x[own_from - context : own_from].ravel(), x[own_to : own_to + context].ravel())).astype(np.float64)
        before, after = sides
        level_before = float(np.mean(np.square(before)))
        level_after = float(np.mean(np.square(after)))
        # a click's first step is about as large as its prediction error: one too small
        # to be heard over the programme is not worth a predictor
        if step < min(self._audible, self._smeared) * self._slack * max(level_before, level_after):
            return None
        # the error from reach before to reach after, with order samples of run-in
        span = x[window - reach : window + reach + 1].ravel().astype(np.float64)
        error = lfilter(_predictor(sides, order), [1.0], span)
        error = np.square(error)
        error[:order] = 0.0
        c0, c1 = (reach - guard) * size, (reach + guard + 1) * size  # the candidate's own span
        own = float(error[c0:c1].max())
        error_before = float(error[c0 - context * size : c0].mean())
        error_after = float(error[c1 : c1 + context * size].mean())
        ratio = own / max(error_before, error_after, 1e-20)
        if ratio < self._transient_ratio:
            return None
        others = max(float(error[:c0].max()), float(error[c1:].max()))
        return _Transient(
            time=self._origin + (self._base + window) * self._step,
            window=self._base + window,
            channel=channel,
            peak=peak,
            step=step,
            error=own,
            ratio=ratio,
            margin=own / max(others, 1e-20),
            body=(level_after + 1e-12) / (level_before + 1e-12),
            towering=float(np.max(np.square(x[window]))) / max(level_before, level_after, 1e-20),
            audible=own / max(level_before, level_after, 1e-20),
        )

    def _is_click(self, t: _Transient) -> bool:
        return (t.ratio >= self._ratio and t.margin >= self._margin and t.peak >= self._min_peak
                and (t.audible >= self._audible or (t.towering >= self._towering and t.audible >= self._smeared))
                and (t.body <= self._body or (t.towering >= self._towering and t.audible >= self._onset_audible))
                and t.body >= self._cut)

    def _decide(self, until: float) -> list[Event]:
        """Transients up to `until` have their whole isolation span: report the clicks."""
        ready = [t for t in self._transients if t.time <= until]
        if not ready:
            return []
        same = self._guard * self._step
        # a group is never split between two decisions
        until = max(t.time for t in ready)
        while late := [t for t in self._transients if until < t.time <= until + same]:
            ready += late
            until = max(t.time for t in late)
        self._transients = [t for t in self._transients if t.time > until]
        ready.sort(key=lambda t: t.time)
        # One transient in several channels, or spread over its own guard, is one group.
        groups: list[list[_Transient]] = []
        for transient in ready:
            if groups and transient.time - groups[-1][-1].time <= same:
                groups[-1].append(transient)
            else:
                groups.append([transient])
        isolation, texture = self.options.isolation_s, self.options.texture_s
        known = self._decided + ready + self._transients
        events: list[Event] = []
        for group in groups:
            clicks = [t for t in group if self._is_click(t)]
            if not clicks:
                continue
            start, end = group[0].time, group[-1].time
            rival = max(t.error for t in group) * self._rival
            if any(start - isolation <= t.time < start - same or end + same < t.time <= end + isolation
                   for t in known if t.error >= rival):
                continue
            tick = max(t.step for t in group) * self._texture
            ticks = {round(time / same) for time, step in self._ticks
                     if step >= tick and (start - texture <= time < start - same or end + same < time <= end + texture)}
            if len(ticks) < self.options.texture_ticks:
                events.append(self._event(clicks))
        self._decided = [t for t in self._decided + ready if t.time > until - isolation]
        self._ticks = [t for t in self._ticks if t[0] > until - texture]
        return events

    def _trim(self) -> None:
        """Forget the windows no later judgement or neighbourhood needs."""
        keep_from = self._judged - self._guard - self._reach - self._base
        if keep_from > 0:
            self._samples = self._samples[:, keep_from:]
            self._steps = self._steps[:, keep_from:]
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
                "margin_db": _db(loudest.margin),
                "body_db": _db(loudest.body),
                "audible_db": _db(loudest.audible),
                "towering_db": _db(loudest.towering),
            },
        )

    def finish(self, end: float) -> list[Event]:
        events = self._analyse(self._joined()) if self._queued else []
        # What is still waiting heard no transient after it up to the end of the input.
        return events + self._decide(float("inf"))
