"""audio.dropout: a short gap of digital silence inside programme audio.

Lost packets and broken splices leave runs of (near-)zero samples in every channel
at once, 10 ms to a second long, with programme on both sides: the programme is cut
off while it is going on. That is what tells a dropout from a pause that is part of
the content, which real recordings have plenty of. Pauses can be digitally silent
too: a beat with a break cut to zero, a speech recording gated or dithered to +-1 LSB
between words (and +-1 LSB must count as silent, since MP2 decodes a lost frame's
hole to it). But there the sound has already decayed into the pause: at the cut
(the `cut_s` just before the gap) it is far below the level the programme has been
playing at (its RMS over the last `programme_s`), by 40-60 dB. A lost packet falls on
the programme wherever it is, near its playing level. Lossy codecs fade a hole's
edges over a few milliseconds, so the last `fade_s` before it is left out; a cut
that meets the sound late in a decay is missed. Nor is a gap evidence of a cut where
the programme itself keeps falling to the digital floor: quiet speech at -50 dBFS has
runs of +-1 LSB between its syllables, and when `floor_share` of the 5 ms windows of
the last `programme_s` sit below `floor_db` (in runs up to `max_gap_s`: a longer one
is a silence, audio.silence's), a short zero run there is the programme's own trough
(the dropouts found there are cuts, not troughs, and do not count). Programme on each
side means anything above near-digital silence (`programme_db`); the start of a
recording has no programme before it. The gap is found per sample, which means a gap
is reported `context_s` after it ends.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from streamqc.detectors.base import Detector, dbfs
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk


@dataclasses.dataclass(frozen=True, slots=True)
class DropoutOptions:
    # samples below this (absolute, dBFS) in every channel are digital silence; it takes
    # in +-1 LSB of 16 bits (-90.3 dBFS), which is what MP2 decodes a lost frame's hole to
    zero_db: float = -90.0
    # codecs smear a gap's edges (AAC over ~20 ms, AC-3 over ~5 ms): a 20 ms hole can
    # decode as 8 ms of zeros, and no real recording holds 5 ms of digital zero
    min_gap_s: float = 0.005
    max_gap_s: float = 2.0  # longer gaps are audio.silence's
    context_s: float = 0.1  # programme must be present this long on both sides of a gap
    # RMS of the context above this is programme: room tone in a speech pause (-60 to
    # -70 dBFS) is programme too; only near-digital silence around a gap is not
    programme_db: float = -75.0
    programme_s: float = 3.0  # the programme's playing level is its RMS over this long before a gap
    cut_s: float = 0.02  # the level at the cut is the RMS of this long just before the gap...
    fade_s: float = 0.005  # ...less this much right before it, which a lossy codec fades out
    # a gap whose level at the cut is this far (dB) below the playing level came after
    # the sound had decayed: a pause or a break in the content, not a cut. Measured on
    # holes cut into real and synthetic speech and music through AAC/MP2/AC-3: -8 to
    # +22 dB, 33 for one cut late into a decaying sound; the digital-zero breaks in a
    # real hip-hop beat 41-56 dB, gated speech pauses at +-1 LSB 48-63 dB
    decayed_db: float = 36.0
    # the programme's own troughs: 5 ms windows with an RMS below this (dBFS) touch the
    # digital floor (room tone sits at -60 to -75; quiet speech at -50 dBFS falls to -95)
    floor_db: float = -80.0
    floor_share: float = 0.05  # when this share of the last programme_s dips to it, gaps are not judged


_TROUGH_WINDOW_S = 0.005  # the programme's troughs are judged in windows of this length


@dataclasses.dataclass(slots=True)
class _Gap:
    start: float
    end: float
    before_db: float
    after_sq: float = 0.0  # sum of squares of the programme heard after the gap so far
    after_n: int = 0


class DropoutDetector(Detector):
    name = "dropout"
    Options = DropoutOptions
    accepts = (AudioChunk,)

    def __init__(self, options: DropoutOptions | None = None) -> None:
        super().__init__(options)
        self._zero = 10 ** (self.options.zero_db / 20)
        self._history = np.zeros((0,), np.float32)  # loudest-channel samples of the last context_s
        self._rate = 0
        self._gap_start: float | None = None  # a zero run still going at the end of the last chunk
        self._gap_before_db = -200.0
        self._pending: list[_Gap] = []  # gaps still waiting for the programme after them
        # Each chunk of the last programme_s + max_gap_s: (end time, sum of squares, samples,
        # which of its trough windows are at the floor). The last programme_s give the playing
        # level and the troughs; the span before it, how long a run at the floor lasted.
        self._recent: collections.deque[tuple[float, float, int, np.ndarray]] = collections.deque()
        self._floor = 10 ** (self.options.floor_db / 20)
        self._found: collections.deque[_Gap] = collections.deque()  # dropouts of the last programme_s
        self._gap_playing_db = -200.0
        self._gap_cut_db = -200.0
        self._gap_troughs = 0.0

    def feed(self, chunk: AudioChunk) -> list[Event]:
        if chunk.sample_rate != self._rate:
            self._rate = chunk.sample_rate
            self._history = self._history[:0]
            self._recent.clear()
        rate = self._rate
        mono = np.abs(chunk.samples).max(axis=1)
        quiet = mono <= self._zero
        continuing = self._gap_start is not None
        steps = np.diff(np.concatenate(([continuing], quiet, [False])).astype(np.int8))
        rises = np.flatnonzero(steps == 1)
        falls = np.flatnonzero(steps == -1)
        if continuing:
            rises = np.concatenate(([0], rises))
        # Noise dithering around the threshold makes thousands of one-sample runs: only
        # runs long enough to matter, or touching a chunk edge, are looked at one by one.
        keep = (falls - rises >= int(self.options.min_gap_s * rate)) | (falls == len(quiet))
        if continuing:
            keep[0] = True
        rises, falls = rises[keep], falls[keep]
        for first, (s, e) in enumerate(zip(rises, falls)):
            carried = continuing and first == 0
            start = self._gap_start if carried else chunk.time + s / rate
            before = self._gap_before_db if carried else self._context_db(mono[:s], self.options.context_s)
            cut = self._gap_cut_db if carried else self._context_db(mono[:s], self.options.cut_s, self.options.fade_s)
            playing = self._gap_playing_db if carried else self._playing_db(mono[:s])
            troughs = self._gap_troughs if carried else self._trough_share()
            if e == len(quiet):  # still quiet when this chunk ends
                self._gap_start, self._gap_before_db = start, before
                self._gap_cut_db, self._gap_playing_db, self._gap_troughs = cut, playing, troughs
                break
            self._gap_start = None
            end = chunk.time + e / rate
            if (
                self.options.min_gap_s <= end - start <= self.options.max_gap_s
                and before > self.options.programme_db
                and cut > playing - self.options.decayed_db
                and troughs < self.options.floor_share
            ):
                gap = _Gap(start, end, before)
                self._pending.append(gap)
                self._found.append(gap)
        events = self._listen_after(chunk.time, mono)
        self._history = np.concatenate([self._history, mono])[-int(self.options.context_s * rate) :]
        end_time = chunk.time + mono.shape[0] / rate
        window = max(1, int(_TROUGH_WINDOW_S * rate))
        count = mono.shape[0] // window
        window_ms = np.square(mono[: count * window]).reshape(count, window).mean(axis=1)
        self._recent.append((end_time, float(np.dot(mono, mono)), mono.shape[0], window_ms < self._floor * self._floor))
        while self._recent and self._recent[0][0] < end_time - self.options.programme_s - self.options.max_gap_s:
            self._recent.popleft()
        while self._found and self._found[0].end < end_time - self.options.programme_s:
            self._found.popleft()
        return events

    def _playing_db(self, recent: np.ndarray) -> float:
        """RMS (dBFS) of the loudest channel over the last `programme_s` before a gap."""
        playing = self._playing_chunks()
        squares = float(np.dot(recent, recent)) + sum(sq for _, sq, _, _ in playing)
        count = recent.shape[0] + sum(n for _, _, n, _ in playing)
        return float(dbfs(np.sqrt(squares / count))) if count else -200.0

    def _playing_chunks(self) -> list[tuple[float, float, int, np.ndarray]]:
        """The chunks of the last `programme_s` (the older ones are kept for run lengths)."""
        if not self._recent:
            return []
        since = self._recent[-1][0] - self.options.programme_s
        return [chunk for chunk in self._recent if chunk[0] >= since]

    def _trough_share(self) -> float:
        """Share of the last `programme_s`'s 5 ms windows at the digital floor, in runs up to
        `max_gap_s` (longer is a silence), the dropouts found there left out. Only gaps pay for it."""
        if not self._recent:
            return 0.0
        flags = np.concatenate([flags for _, _, _, flags in self._recent])
        edges = np.diff(np.concatenate(([0], flags.view(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for start, end in zip(starts, ends):
            if end - start > self.options.max_gap_s / _TROUGH_WINDOW_S:
                flags[start:end] = False  # a silence, not a trough
        recent = flags[-int(self.options.programme_s / _TROUGH_WINDOW_S):]
        cut = sum(int((gap.end - gap.start) / _TROUGH_WINDOW_S) for gap in self._found)
        return max(int(np.count_nonzero(recent)) - cut, 0) / recent.size

    def _context_db(self, recent: np.ndarray, seconds: float, skip_s: float = 0.0) -> float:
        """RMS (dBFS) of `seconds` of loudest-channel samples that end `skip_s` before a gap."""
        skip = int(skip_s * self._rate)
        need = int(seconds * self._rate) + skip
        tail = recent[-need:]
        if tail.shape[0] < need and self._history.shape[0]:
            tail = np.concatenate([self._history[-(need - tail.shape[0]) :], tail])
        if tail.shape[0] < need:
            return -200.0  # not enough heard yet: the start of the input, not a gap inside it
        tail = tail[: tail.shape[0] - skip]
        return float(dbfs(np.sqrt(np.mean(np.square(tail)))))

    def _listen_after(self, time: float, mono: np.ndarray) -> list[Event]:
        events: list[Event] = []
        need = int(self.options.context_s * self._rate)
        waiting: list[_Gap] = []
        for gap in self._pending:
            offset = max(0, int(round((gap.end - time) * self._rate)))
            heard = mono[offset : offset + need - gap.after_n]
            gap.after_sq += float(np.dot(heard, heard))
            gap.after_n += heard.shape[0]
            if gap.after_n < need:
                waiting.append(gap)
                continue
            after_db = float(dbfs(np.sqrt(gap.after_sq / gap.after_n)))
            if after_db > self.options.programme_db:
                events.append(self._event(gap, after_db))
        self._pending = waiting
        return events

    def finish(self, end: float) -> list[Event]:
        return []  # a gap that runs into the end of the input is the end, not a dropout

    def _event(self, gap: _Gap, after_db: float) -> Event:
        return Event(
            kind="audio.dropout",
            start=float(gap.start),
            end=float(gap.end),
            severity=Severity.MAJOR if gap.end - gap.start >= 0.1 else Severity.MINOR,
            confidence=0.9,
            details={
                "gap_ms": round(float(gap.end - gap.start) * 1000, 1),
                "level_before_db": round(gap.before_db, 1),
                "level_after_db": round(after_db, 1),
            },
        )
