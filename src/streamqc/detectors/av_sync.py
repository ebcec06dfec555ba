"""av.sync: audio and picture out of step, measured from the content itself.

What a viewer sees happen and what they hear start mostly go together: a flash or a
cut with a bang or a beat, lips with a voice. Both tracks are reduced to signals on
one 100 Hz grid of media time and compared over windows of `window_s` (one every
`hop_s`), at every lag within +-`max_offset_ms`; the lag of the highest (Pearson)
correlation, refined between bins with a parabola, is the window's offset (positive:
audio late). Two pairs of signals are compared:

- picture onsets against sound onsets: the rise of each of a few bands over the
  loudest of its last 40 ms (a SuperFlux-like onset strength, the band that rose most
  speaking for the hop), and the same for the picture, its cells for bands: the
  frame-to-frame change of each cell of a coarse luma grid over the largest change of
  its last 100 ms, the cell that rose most speaking for the frame. What makes a sound
  is usually a small part of the picture (a flash in a corner, a ball, a door), and
  the rest of it moves on its own; averaged over the whole picture, its change drowns.
  And the sound goes with the first change only: a flash held two frames changes the
  picture as much going off, 40-80 ms later, as coming on, and a rule that let both
  count matched the beep to either (in-sync material measured two frames early).
  Pictures the decoder reported damaged are no evidence, nor those predicted from them
  up to the next key frame (the repair): their change is the damage's, on no one's
  clock, and lost packets lined up with a programme's sounds by chance had made one;
- when a frontal face is seen, its mouth region against the speech bands (300-4000
  Hz, on a loudness-like scale), like with like: how much the mouth moved since the
  last frame against how much the voice changed over the same frame period, and how
  open the mouth is (its darkest pixels) against how loud the voice is. The two
  correlations are averaged lag by lag.

A window speaks only when its peak is high and stands clear of every peak more than
`min_rival_gap_ms` away, and not at the edge of the search: unrelated sound and
picture (music over a landscape, a cut to another scene) give low or ambiguous peaks,
and the window abstains. A high peak from a few picture onsets claims that they
meet the sound's onsets, and counts only where most of them do: water, traffic or
kinetic text over speech or noise make a high peak from one chance pair whose
weight is a third of the whole, the other onsets meeting nothing. Well-matched onsets
win over the mouth; otherwise the mouth, being on the screen, wins over the weaker
onsets of head motion and the encoder's keyframes. Consecutive windows beyond the
ITU-R BT.1359 detectability limits (audio leading by more than `lead_ms`, lagging by
more than `lag_ms`) make one event; an abstention neither ends nor starts one.

The face detector (OpenCV's bundled Haar cascade) is costly next to everything else
here, so it runs at most once every `face_interval_s` on a ~100 px wide picture (again
at ~160 px when that finds none), the mouth box being held in between, and ever more
rarely while no face is found.
Pictures are reduced 32 frames at a time and sound a second at a time, so the
per-buffer cost is a slice and an append.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk, StreamNote, VideoFrame

GRID_HZ = 100  # onset signals live on 10 ms bins of media time
COARSE_WIDTH_PX = 80  # the picture's activity is measured on a grid about this wide
MOUTH_WIDTH_PX = 24  # ... and the mouth's on a crop about this wide
BOX_JITTER = 0.1  # a new face box within this share of the mouth box's width is the same one
AUDIO_BANDS_HZ = (80, 200, 400, 800, 1600, 3200, 6400, 12000)
SPEECH_BANDS_HZ = (300, 600, 1200, 2400, 4000)  # octaves over the formants that lips shape
LOUDNESS_EXPONENT = 1 / 3  # band energy to a loudness-like scale (Stevens' power law)
ONSET_MEMORY_HOPS = 4  # a sound onset rises above the band's loudest of the last 40 ms
PICTURE_MEMORY_S = 0.1  # a picture onset rises above the largest change of the last 100 ms
PICTURE_CELLS = 8  # the coarse grid is cut into this many cells each way, each judged alone
CHANGE_FLOOR = 2.0  # mean luma change (levels) below which a cell counts as still (noise, grain)
CAVITY_PERCENTILE = 10  # the mouth's opening is read from its darkest pixels
MOUTH_SMOOTH_BINS = 2.0  # gaussian sigma of the mouth motion and the speech change
NULL_ROLLS = 12  # rolled copies of a window's picture onsets that measure chance correlation
VIDEO_BATCH_FRAMES = 32  # frames reduced in one vectorised step
AUDIO_BATCH_S = 1.0  # audio reduced in one vectorised step


@dataclasses.dataclass(frozen=True, slots=True)
class AvSyncOptions:
    lead_ms: float = 45.0  # audio ahead of the picture by more than this is a defect (BT.1359)
    lag_ms: float = 125.0  # audio behind the picture by more than this is a defect (BT.1359)
    window_s: float = 8.0  # media analysed per estimate
    hop_s: float = 2.0  # one estimate every this much media
    min_window_s: float = 2.5  # an input shorter than window_s is analysed whole if at least this long
    # Sound quieter than this (each 10 ms's mean power) is no evidence for the picture's
    # onsets: a window whose sound is mostly dead or muted is judged on what is left of
    # it, like a short input, and not at all when that is under min_window_s.
    silence_dbfs: float = -60.0
    max_offset_ms: float = 500.0  # offsets searched: +- this
    # A window abstains when its confidence (the correlation peak, discounted when a
    # rival peak comes within 0.1 of it) is below this ...
    min_confidence: float = 0.18
    # ... or, for a mouth against a voice, below this: mouth motion follows the voice
    # loosely, and a weak match is more often wrong than a weak match of sharp onsets.
    min_mouth_confidence: float = 0.3
    min_rival_gap_ms: float = 100.0  # rivals are peaks at least this far from the best one
    strong_correlation: float = 0.5  # picture onsets matched this well are taken over a mouth
    min_cues: int = 3  # distinct picture onsets (flashes, cuts) a window needs
    # A high correlation peak from a few sharp picture onsets says that they meet the
    # sound's onsets; when most of them do not, one or two large pairs meeting by chance
    # made it (water, traffic or kinetic text over speech, noise, clicks). A peak of at
    # least claimed_correlation from fewer than many_cues onsets counts only when at
    # least min_cues of them, and at least half, meet a sound onset (a local maximum of
    # the sound's onset strength) within cue_match_ms at its lag. Weaker peaks (smooth
    # motion against sound) and many onsets (no one pair makes the peak) are judged by
    # the significance and the windows' agreement alone.
    claimed_correlation: float = 0.4
    many_cues: int = 7
    cue_match_ms: float = 20.0  # a picture onset this close to a sound onset meets it
    # Picture onsets against sound onsets must stand this many standard deviations above
    # chance: the best correlations of the same onsets rolled in time (NULL_ROLLS of
    # them) against the same sound. Cuts and motion line up with unrelated music now and
    # then as well as with their own sound, and only this tells the two apart.
    min_significance: float = 2.0
    face: bool = True  # look for a face and follow its mouth
    face_interval_s: float = 1.0  # run the face detector at most this often while a face is seen
    face_width_px: int = 96  # width of the picture the face detector looks at ...
    # ... and, when it finds none there, this width (0: no second look): the cascade
    # sees no face under 24 px (a quarter of 96), and misses some larger ones that coarse.
    face_retry_width_px: int = 160
    face_backoff_max_s: float = 16.0  # without faces, retry ever more rarely, up to this interval
    merge_gap_s: float = 4.0  # out-of-sync windows closer than this (abstentions between) are one event
    # An offset is a lasting condition: one window alone (8 s of chance correlation on
    # ordinary cuts and motion) is not evidence enough, so it takes this many windows ...
    min_windows: int = 2
    # ... except on an input too short for a second window, judged on its one window
    # only when it matched at least this well.
    single_window_confidence: float = 0.45
    major_after_ms: float = 200.0  # an offset beyond this (either way) is major, else minor

    def __post_init__(self) -> None:
        for name in ("window_s", "hop_s", "min_window_s", "face_width_px"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: {getattr(self, name)!r} (must be above 0)")


@dataclasses.dataclass(frozen=True, slots=True)
class WindowEstimate:
    """One window's verdict: an offset with a confidence, or an abstention (offset None)."""

    start: float
    end: float
    offset_ms: float | None
    confidence: float
    cue: str  # "picture" | "mouth" | "none"
    peak: float = 0.0  # the correlation at the chosen lag
    rival: float = 0.0  # the best correlation away from it


class _MouthTracker:
    """Finds a frontal face now and then and crops its mouth region from every frame."""

    def __init__(self, options: AvSyncOptions) -> None:
        self.options = options
        self.box: tuple[int, int, int, int, int] | None = None  # y0, y1, x0, x1, step (full-res luma)
        self._cascade: Any = None
        self._next_look = float("-inf")
        self._misses = 0

    def _classifier(self) -> Any:
        if self._cascade is None:
            cv2.setNumThreads(1)
            self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        return self._cascade

    def update(self, frame: VideoFrame) -> bool:
        """Look for a face when due; True when the mouth box moved (its history is void)."""
        if frame.time < self._next_look:
            return False
        luma = frame.luma
        width = luma.shape[1]
        face = self._find(frame, self.options.face_width_px)
        if face is None and width // max(1, self.options.face_retry_width_px) < width // self.options.face_width_px:
            face = self._find(frame, self.options.face_retry_width_px)  # a finer picture than the first look's
        old = self.box
        if face is not None:
            self._misses = 0
            x, y, w, h = face
            y0, y1 = y + int(0.64 * h), min(luma.shape[0], y + int(0.98 * h))
            x0, x1 = x + int(0.22 * w), min(luma.shape[1], x + int(0.78 * w))
            new = (y0, y1, x0, x1, max(1, (x1 - x0) // MOUTH_WIDTH_PX))
            # The cascade's box jitters from look to look on a still head: a box whose edges
            # all moved by less than BOX_JITTER of its width is the same box (a jump in the
            # crop would read as a jump in the mouth's opening); keep it and its history.
            if old is not None and all(abs(a - b) <= max(old[4], BOX_JITTER * (old[3] - old[2]))
                                       for a, b in zip(old[:4], new[:4])):
                new = old
            self.box = new
            self._next_look = frame.time + self.options.face_interval_s
        else:
            self._misses += 1
            if self._misses >= 2:
                self.box = None
            backoff = self.options.face_interval_s * 2 ** min(self._misses - 1, 8)
            self._next_look = frame.time + min(backoff, self.options.face_backoff_max_s)
        return self.box != old

    def _find(self, frame: VideoFrame, width_px: int) -> tuple[int, int, int, int] | None:
        """The largest frontal face (x, y, w, h in full-resolution pixels) on the picture
        scaled to about `width_px`, or None."""
        step = max(1, frame.luma.shape[1] // width_px)
        small = np.ascontiguousarray(frame.sample(step).astype(np.uint8))
        side = max(12, small.shape[1] // 6)  # a face narrower than 1/6 of the picture has unreadable lips
        faces = self._classifier().detectMultiScale(small, scaleFactor=1.25, minNeighbors=3, minSize=(side, side))
        if not len(faces):
            return None
        x, y, w, h = (int(v) * step for v in max(faces, key=lambda f: int(f[2]) * int(f[3])))
        return x, y, w, h

    def crop(self, frame: VideoFrame) -> np.ndarray | None:
        if self.box is None:
            return None
        y0, y1, x0, x1, step = self.box
        crop = np.array(frame.luma[y0:y1:step, x0:x1:step])
        return crop if crop.size else None  # a box from before a change of picture size


class _Grid:
    """A growing signal on the 100 Hz grid (`columns` signals sampled together), trimmed
    from the front as windows pass."""

    def __init__(self, columns: int = 0) -> None:
        self.first_bin = 0
        self.values = np.zeros((0, columns) if columns else 0, np.float64)  # bins first
        self.weights = np.zeros(0, np.float64)  # how much of a sample each bin holds (levels)
        self.filled_until = 0.0  # media time up to which the signal is known

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        """Impulses at `times` (s), each split between its two nearest bins (sub-bin timing)."""
        if times.size == 0:
            return
        pos = times * GRID_HZ - self.first_bin
        keep = np.isfinite(pos) & (pos >= 0)
        pos, values = pos[keep], values[keep]
        low = np.floor(pos).astype(np.int64)
        frac = pos - low
        need = int(low.max()) + 2 if low.size else 0
        if need > self.weights.size:
            more = need - self.weights.size + 4 * GRID_HZ
            self.values = np.concatenate([self.values, np.zeros((more, *self.values.shape[1:]))])
            self.weights = np.concatenate([self.weights, np.zeros(more)])
        if low.size == 0:
            return
        first = int(low[0]) if low.size == 1 else int(low.min())
        bins = np.concatenate([low, low + 1]) - first
        shares = np.concatenate([1 - frac, frac])
        size = int(bins.max()) + 1
        doubled = np.concatenate([values, values])
        if doubled.ndim == 1:
            self.values[first : first + size] += np.bincount(bins, doubled * shares, size)
        else:
            for column in range(doubled.shape[1]):
                self.values[first : first + size, column] += np.bincount(bins, doubled[:, column] * shares, size)
        self.weights[first : first + size] += np.bincount(bins, shares, size)

    def span(self, start_s: float, end_s: float, of: np.ndarray | None = None) -> np.ndarray:
        """Bins [start_s, end_s) of the values (or of `of`, an array kept alongside), 0 where unknown."""
        source = self.values if of is None else of
        a, b = int(round(start_s * GRID_HZ)) - self.first_bin, int(round(end_s * GRID_HZ)) - self.first_bin
        out = np.zeros((b - a, *source.shape[1:]))
        lo, hi = max(a, 0), min(b, source.shape[0])
        if hi > lo:
            out[lo - a : hi - a] = source[lo:hi]
        return out

    def level(self, start_s: float, end_s: float) -> np.ndarray | None:
        """The signal as a level (samples averaged into bins, gaps interpolated); None
        when the span holds fewer than 10 samples a second (a face seen only briefly)."""
        values, weights = self.span(start_s, end_s), self.span(start_s, end_s, of=self.weights)
        known = weights > 0.05
        if np.count_nonzero(known) < 0.1 * known.size:
            return None
        bins = np.arange(known.size)
        if values.ndim == 1:
            return np.interp(bins, bins[known], values[known] / weights[known])
        means = values[known] / weights[known, None]
        return np.stack([np.interp(bins, bins[known], column) for column in means.T], axis=1)

    def trim(self, before_s: float) -> None:
        cut = int(before_s * GRID_HZ) - self.first_bin
        if cut > 0:
            self.values = self.values[cut:]
            self.weights = self.weights[cut:]
            self.first_bin += cut


class AvSyncDetector(Detector):
    name = "av_sync"
    Options = AvSyncOptions
    accepts = (VideoFrame, AudioChunk, StreamNote)

    def __init__(self, options: AvSyncOptions | None = None) -> None:
        super().__init__(options)
        self._picture = _Grid(columns=2)  # picture onsets: of the whole, and of the place that rose most
        self._mouth = _Grid()  # how much the mouth region moved since the last frame
        self._cavity = _Grid()  # how dark the middle of the mouth region is: how open the mouth is
        self._sound = _Grid()
        # Loudness of each speech band: how fast it changes is what moving lips go with.
        self._speech = _Grid(columns=len(SPEECH_BANDS_HZ) - 1)
        self._live = _Grid()  # 1 where the sound is above silence_dbfs, 0 where not
        self._frame_period = 0.04  # s, the video's (the speech change is taken over the same span)
        self._tracker = _MouthTracker(self.options) if self.options.face else None
        # Video: frames waiting for the batch step, and the last reduced frame's state.
        self._frames: list[tuple[float, np.ndarray, np.ndarray | None, bool]] = []
        self._last_coarse: np.ndarray | None = None
        self._last_crop: np.ndarray | None = None
        self._recent_change: np.ndarray | None = None  # each cell's (log) change over the last PICTURE_MEMORY_S
        self._damage_since_last = False  # the decoder reported damage since the last picture
        self._last_damaged = False  # the last picture reduced was damaged
        self._tainted = False  # damage was reported since the last key frame
        self._step = 0
        # Audio: sample blocks waiting for the batch step.
        self._samples: list[np.ndarray] = []
        self._pending = 0
        self._audio_time: float | None = None  # media time of the first waiting sample
        self._rate = 0
        self._last_bands: np.ndarray | None = None
        self._band_index: np.ndarray | None = None
        self._speech_edges = np.zeros(len(SPEECH_BANDS_HZ), np.int64)
        # Windows
        self._next_window = 0.0
        self.windows: list[WindowEstimate] = []  # every estimate so far (for tools and tests)
        self._run: list[WindowEstimate] = []  # the out-of-sync stretch still open

    # --- picture ------------------------------------------------------------------

    def feed(self, buffer: VideoFrame | AudioChunk | StreamNote) -> list[Event]:
        if isinstance(buffer, StreamNote):
            if buffer.kind == "decode_error" and buffer.media == "video":
                self._damage_since_last = True
            return []
        if not np.isfinite(buffer.time):
            return []  # a buffer the clock could not place says nothing about timing
        if isinstance(buffer, VideoFrame):
            self._feed_video(buffer)
        else:
            self._feed_audio(buffer)
        return self._analyse(final=False)

    def _feed_video(self, frame: VideoFrame) -> None:
        if not self._step:
            self._step = max(1, frame.luma.shape[1] // COARSE_WIDTH_PX)
        coarse = frame.sample(self._step)
        crop = None
        if self._tracker is not None:
            if self._tracker.update(frame):
                self._flush_video()
                self._last_crop = None
            crop = self._tracker.crop(frame)
        # Damage lasts until the next key frame: the pictures between are predicted from
        # a damaged one, and the key frame's change is the repair.
        if frame.corrupt or self._damage_since_last:
            self._tainted = True
        elif frame.key:
            self._tainted = False
        self._frames.append((frame.time, coarse, crop, self._tainted))
        self._damage_since_last = False
        if len(self._frames) >= VIDEO_BATCH_FRAMES:
            self._flush_video()

    def _flush_video(self) -> None:
        if not self._frames:
            return
        shape = self._frames[0][1].shape
        if any(f[1].shape != shape for f in self._frames) or (
                self._last_coarse is not None and self._last_coarse.shape != shape):
            self._last_coarse = self._recent_change = None  # a format change: start over
            self._frames = [f for f in self._frames if f[1].shape == self._frames[-1][1].shape]
        times = np.array([f[0] for f in self._frames])
        stack = np.stack([f[1] for f in self._frames])
        previous = stack[:1] if self._last_coarse is None else self._last_coarse[None]
        change = np.abs(np.diff(np.concatenate([previous, stack]), axis=0))
        # Two views of the picture's change. As a whole (the mean change of the grid): a
        # flash or a cut over the whole screen stands far above the motion of a few
        # objects. Place by place (each cell's mean change, on a log scale, judged against
        # what that same place did just before): a flash in a corner, a ball in a lane or
        # a door is a small share of the picture and drowns in the motion elsewhere when
        # the whole is averaged; in its own cell it stands out.
        n, h, w = change.shape
        ch, cw = max(1, h // PICTURE_CELLS), max(1, w // PICTURE_CELLS)
        rows, cols = h // ch, w // cw
        cells = change[:, : rows * ch, : cols * cw].reshape(n, rows, ch, cols, cw).mean(axis=(2, 4)).reshape(n, -1)
        level = np.concatenate([cells.mean(axis=1, keepdims=True), np.log(cells + CHANGE_FLOOR)], axis=1)
        # A picture onset is a change larger than any of the last PICTURE_MEMORY_S (a
        # maximum filter, as for the sound): a flash held for two frames changes the
        # picture as much going off as coming on, a cut's next frame or a dissolve goes on
        # changing; the sound starts with the first change, not the ones that follow it.
        # Place by place, the cell that rose most speaks for the picture.
        period = float(np.median(np.diff(times))) if times.size > 1 else self._frame_period
        memory = max(1, int(round(PICTURE_MEMORY_S / max(period, 1e-3))))
        still = np.tile(np.r_[0.0, np.full(cells.shape[1], np.log(CHANGE_FLOOR))], (memory, 1))  # before the first picture
        history = still if self._recent_change is None else np.concatenate([still, self._recent_change])[-memory:]
        joined = np.concatenate([history, level])
        recent = np.lib.stride_tricks.sliding_window_view(joined[:-1], memory, axis=0).max(axis=2)
        risen = np.maximum(0.0, level - recent)
        rises = np.stack([risen[:, 0], risen[:, 1:].max(axis=1)], axis=1)  # whole, places
        # A damaged picture (the decoder's concealment, a smear, and every picture
        # predicted from it) and the next one (the repair) say when the damage was, not
        # when anything happened.
        damaged = np.array([f[3] for f in self._frames])
        after_damage = np.concatenate([[self._last_damaged], damaged[:-1]])
        rises[damaged | after_damage] = 0.0
        self._picture.add(times, rises)
        self._last_coarse, self._recent_change, self._last_damaged = stack[-1], joined[-memory:], bool(damaged[-1])
        crops = [f[2] for f in self._frames]
        if all(c is not None for c in crops) and len({c.shape for c in crops}) == 1:
            cstack = np.stack(crops).astype(np.int16)
            goes_on = self._last_crop is not None and self._last_crop.shape == cstack.shape[1:]
            first = self._last_crop[None] if goes_on else cstack[:1]
            mouth = np.abs(np.diff(np.concatenate([first, cstack]), axis=0)).mean(axis=(1, 2))
            moved = mouth > 0  # a repeated picture (frame-rate conversion) shows no motion, it hides it
            moved[0] &= goes_on  # a new box's first crop has nothing to differ from
            self._mouth.add(times[moved], mouth[moved])
            width = cstack.shape[2]
            middle = cstack[:, :, width // 4 : width - width // 4].reshape(len(cstack), -1)
            # The darkest tenth of the middle: the open mouth's cavity (not the lips or teeth).
            if middle.size:
                self._cavity.add(times, -np.percentile(middle, CAVITY_PERCENTILE, axis=1))
            self._last_crop = cstack[-1]
        else:
            self._last_crop = None
        if times.size > 1:
            self._frame_period = float(np.median(np.diff(times)))
        self._picture.filled_until = self._mouth.filled_until = self._cavity.filled_until = float(times[-1])
        self._frames = []

    # --- sound --------------------------------------------------------------------

    def _feed_audio(self, chunk: AudioChunk) -> None:
        if chunk.samples.shape[0] == 0:
            return
        expected = None if self._audio_time is None else self._audio_time + self._pending / max(self._rate, 1)
        if chunk.sample_rate != self._rate or expected is None or abs(chunk.time - expected) > 0.02:
            self._flush_audio()
            self._rate, self._audio_time, self._last_bands = chunk.sample_rate, chunk.time, None
            self._band_index = None
        samples = chunk.samples
        self._samples.append(samples)
        self._pending += samples.shape[0]
        if self._pending >= AUDIO_BATCH_S * self._rate:
            self._flush_audio()

    def _flush_audio(self) -> None:
        if not self._samples or self._audio_time is None:
            return
        hop = max(1, int(round(self._rate / GRID_HZ)))
        block = np.concatenate(self._samples)
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        n = mono.shape[0] // hop
        if n == 0:
            return
        used = n * hop
        spectrum = np.abs(np.fft.rfft(mono[:used].reshape(n, hop), axis=1)) ** 2
        if self._band_index is None:
            freqs = np.fft.rfftfreq(hop, 1.0 / self._rate)
            self._band_index = np.searchsorted(freqs, AUDIO_BANDS_HZ)
            self._speech_edges = np.searchsorted(freqs, SPEECH_BANDS_HZ)
        edges = self._band_index
        cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(spectrum, axis=1)], axis=1)
        bands = np.log10(cumulative[:, edges[1:]] - cumulative[:, edges[:-1]] + 1e-6)
        history = np.repeat(bands[:1], ONSET_MEMORY_HOPS, axis=0) if self._last_bands is None else self._last_bands
        joined = np.concatenate([history, bands])
        # A rise counts above the loudest of the last few hops in its band (a maximum
        # filter, as in SuperFlux): a modulated programme wobbles within its recent range,
        # a tone burst or a bang leaves it. The band that rose most speaks for the hop, so
        # a burst in one band is not drowned by small rises everywhere else.
        recent = np.lib.stride_tricks.sliding_window_view(joined[:-1], ONSET_MEMORY_HOPS, axis=0).max(axis=2)
        flux = np.maximum(0.0, bands - recent).max(axis=1)
        # The flux of hop i is the step from hop i-1 into hop i: an onset at hop i's start.
        times = self._audio_time + np.arange(n) * hop / self._rate
        self._sound.add(times, flux)
        power = np.mean(mono[:used].reshape(n, hop) ** 2, axis=1)
        live = 10 * np.log10(power + 1e-20) > self.options.silence_dbfs
        self._live.add(times + 0.5 * hop / self._rate, live.astype(np.float64))
        speech = cumulative[:, self._speech_edges[1:]] - cumulative[:, self._speech_edges[:-1]]
        loudness = np.maximum(speech, 0.0) ** LOUDNESS_EXPONENT
        filled = float(times[-1]) + hop / self._rate
        self._speech.add(times + 0.5 * hop / self._rate, loudness)
        self._sound.filled_until = self._speech.filled_until = self._live.filled_until = filled
        self._last_bands = joined[-ONSET_MEMORY_HOPS:]
        rest = block[used:]
        self._audio_time += used / self._rate
        self._samples = [rest] if rest.shape[0] else []
        self._pending = rest.shape[0]

    # --- windows ------------------------------------------------------------------

    def _analyse(self, final: bool, end: float = 0.0) -> list[Event]:
        o = self.options
        margin = o.max_offset_ms / 1000.0
        known = end if final else min(self._picture.filled_until, self._sound.filled_until) - margin
        latest = max(self._picture.filled_until, self._sound.filled_until)
        if not final and self._next_window + 2 * o.window_s < latest - margin:
            # One track has stopped or never started: nothing to compare until it is back,
            # and nothing of the other worth keeping.
            self._next_window = latest - margin - o.window_s
            for grid in (self._picture, self._mouth, self._cavity, self._sound, self._speech, self._live):
                grid.trim(self._next_window - margin - 0.1)
        events: list[Event] = []
        while self._next_window + o.window_s <= known:
            events += self._window(self._next_window, self._next_window + o.window_s)
            self._next_window += o.hop_s
            for grid in (self._picture, self._mouth, self._cavity, self._sound, self._speech, self._live):
                grid.trim(self._next_window - margin - 0.1)
        if final:
            # The tail: one window ending at the end, unless the last one nearly did; an
            # input shorter than a window is analysed whole.
            covered = self.windows[-1].end if self.windows else 0.0
            if (self.windows and end - covered >= 0.5 * o.hop_s) or (not self.windows and end >= o.min_window_s):
                events += self._window(max(0.0, end - o.window_s), end)
        return events

    def _window(self, start: float, stop: float) -> list[Event]:
        self.windows.append(self._estimate(start, stop))
        return self._track(self.windows[-1])

    def _estimate(self, start: float, stop: float) -> WindowEstimate:
        o = self.options
        lag = int(round(o.max_offset_ms / 1000 * GRID_HZ))
        reach = lag / GRID_HZ
        # Sharp events (cuts, flashes) against sound onsets, the picture seen as a whole
        # and place by place: the view that matches the sound better speaks.
        sharp = None
        views = self._picture.span(start, stop)
        sound = _smooth(self._sound.span(start - reach, stop + reach))
        # Chance correlations grow as a window shrinks (fewer independent bins): a
        # short input, or one whose sound is silent for much of it, has to match better.
        heard_s = min(stop - start, float(self._live.span(start, stop).sum()) / GRID_HZ)
        needed = o.min_confidence * float(np.sqrt(max(1.0, o.window_s / max(heard_s, 1e-3))))
        for view in views.T if heard_s >= o.min_window_s else ():
            picture = _smooth(view)
            if _distinct_onsets(picture) < o.min_cues:
                continue
            found = self._correlate(picture, sound, lag, needed)
            if found is None or _significance(picture, sound, found[2]) < o.min_significance:
                continue  # no better than the onsets' chance alignments with this sound
            if found[2] >= o.claimed_correlation and not self._carried(picture, sound, found[0], lag):
                continue  # one or two chance coincidences of a few onsets
            if sharp is None or found[1] > sharp[1]:
                sharp = found
        if sharp is not None and sharp[1] >= o.strong_correlation:
            return WindowEstimate(start, stop, *sharp[:2], "picture", *sharp[2:])
        # ... and a moving mouth against a changing voice. On a talking head the
        # picture's own onsets (nods, the encoder's keyframes) are a weaker guide.
        mouth = self._mouth.level(start, stop)
        cavity = self._cavity.level(start, stop) if mouth is not None else None
        speech = self._speech_bands(start - reach, stop + reach) if cavity is not None else None
        if mouth is not None and cavity is not None and speech is not None:
            loudness, change = speech
            # Two views of one articulation, each with its own way of being wrong: how
            # much the mouth moves against how much the voice changes (lip motion runs
            # ahead of or behind the sound it shapes, by 100 ms for some speakers), and how
            # open the mouth is against how loud the voice is (a level: a smoother match,
            # its own side lobes). Their correlations are averaged lag by lag.
            curve = 0.5 * (_correlation(gaussian_filter1d(mouth, MOUTH_SMOOTH_BINS), change)
                           + _correlation(gaussian_filter1d(cavity, MOUTH_SMOOTH_BINS), loudness))
            lips = self._pick(curve, lag, o.min_mouth_confidence, broad=True)
            if lips is not None:
                return WindowEstimate(start, stop, *lips[:2], "mouth", *lips[2:])
        if sharp is not None:
            return WindowEstimate(start, stop, *sharp[:2], "picture", *sharp[2:])
        return WindowEstimate(start, stop, None, 0.0, "none")

    def _carried(self, picture: np.ndarray, sound: np.ndarray, offset_ms: float, lag: int) -> bool:
        """Whether the picture's onsets carry the match at `offset_ms`: most of them meet a
        sound onset there, or there are enough of them that no one pair makes the peak."""
        o = self.options
        cues = _onset_bins(picture)
        if cues.size >= o.many_cues:
            return True
        k = int(round(offset_ms * GRID_HZ / 1000.0)) + lag
        heard = _onset_bins(sound[k : k + picture.size])
        if not heard.size:
            return False
        tolerance = int(round(o.cue_match_ms * GRID_HZ / 1000.0))
        matched = int(np.count_nonzero(np.abs(cues[:, None] - heard[None, :]).min(axis=1) <= tolerance))
        return matched >= o.min_cues and 2 * matched >= cues.size

    def _speech_bands(self, start: float, stop: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The speech bands' loudness on the grid, and how much it changed over the last
        frame period; None without enough sound.

        The mouth cue is motion (how much the lips moved from one frame to the next),
        which peaks as a mouth opens and as it closes. Matched against the voice's level,
        which peaks while the mouth is open, the best lag falls a quarter syllable to
        either side (100-180 ms on real faces); matched against the voice's change over
        the same frame period, it falls on the syllable's edges like the motion does.
        """
        period_bins = max(1, int(round(self._frame_period * GRID_HZ)))
        before = start - period_bins / GRID_HZ
        levels = self._speech.level(before, stop)
        if levels is None:
            return None
        bands = levels.T
        # Each band by its own loudest: the lips shape the upper formants as much as the
        # louder first one.
        bands = gaussian_filter1d(bands / (bands.max(axis=1, keepdims=True) + 1e-12), MOUTH_SMOOTH_BINS, axis=1)
        change = np.abs(bands[:, period_bins:] - bands[:, :-period_bins]).sum(axis=0)
        return bands[:, period_bins:].sum(axis=0), change

    def _correlate(self, picture: np.ndarray, sound: np.ndarray, lag: int, min_confidence: float) -> tuple[float, float, float, float] | None:
        """(offset_ms, confidence, peak, rival) of the clearest lag, or None when nothing stands out."""
        return self._pick(_correlation(picture, sound), lag, min_confidence)

    def _pick(self, corr: np.ndarray, lag: int, min_confidence: float,
              broad: bool = False) -> tuple[float, float, float, float] | None:
        """The clearest lag of a correlation curve (index k: sound shifted by k - lag bins).

        `broad`: the curve's peak is wide (levels matched, not onsets), so its own slopes
        100 ms out are still high; only another peak (or the search's edge) is a rival.
        """
        o = self.options
        if not np.any(corr):
            return None
        peak = int(np.argmax(corr))
        top = float(corr[peak])
        gap = int(round(o.min_rival_gap_ms / 1000 * GRID_HZ))
        far = np.abs(np.arange(corr.size) - peak) > gap
        if broad:
            padded = np.concatenate([[-np.inf], corr, [-np.inf]])
            far &= (corr >= padded[:-2]) & (corr >= padded[2:])
        rival = float(corr[far].max()) if far.any() else 0.0
        # The peak's height, discounted when a rival comes close to it.
        confidence = min(1.0, top) * min(1.0, 0.5 + 5.0 * (top - rival))
        if confidence < min_confidence or peak in (0, corr.size - 1):
            return None  # weak, ambiguous, or at the edge of the search (the truth may lie beyond)
        shift = 0.0
        if 0 < peak < corr.size - 1:
            a, b, c = corr[peak - 1], corr[peak], corr[peak + 1]
            denom = a - 2 * b + c
            if denom < 0:
                shift = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
        offset_ms = (peak + shift - lag) * 1000.0 / GRID_HZ
        return offset_ms, round(confidence, 3), top, rival

    # --- events -------------------------------------------------------------------

    def _out_of_sync(self, offset_ms: float) -> bool:
        return offset_ms > self.options.lag_ms or offset_ms < -self.options.lead_ms

    def _track(self, window: WindowEstimate) -> list[Event]:
        if window.offset_ms is None:
            return []  # abstentions neither open nor close a stretch
        if self._out_of_sync(window.offset_ms):
            if self._run and window.start - self._run[-1].end > self.options.merge_gap_s:
                closed = self._close()
                self._run = [window]
                return closed
            self._run.append(window)
            return []
        return self._close()

    def _close(self, final: bool = False) -> list[Event]:
        run, self._run = self._run, []
        if not run:
            return []
        if len(run) < self.options.min_windows:
            lone_window_input = final and len(self.windows) == 1
            if not (lone_window_input and run[0].confidence >= self.options.single_window_confidence):
                return []
        offset = statistics.median(w.offset_ms for w in run if w.offset_ms is not None)
        return [Event(
            kind="av.sync",
            start=run[0].start,
            end=run[-1].end,
            severity=Severity.MAJOR if abs(offset) >= self.options.major_after_ms else Severity.MINOR,
            confidence=round(statistics.mean(w.confidence for w in run), 3),
            details={"offset_ms": round(offset), "windows": len(run),
                     "cue": statistics.mode(w.cue for w in run)},
        )]

    def finish(self, end: float) -> list[Event]:
        self._flush_video()
        self._flush_audio()
        return self._analyse(final=True, end=end) + self._close(final=True)


def _correlation(picture: np.ndarray, sound: np.ndarray) -> np.ndarray:
    """Pearson correlation of `picture` with each span of `sound` as long as it, 0 for a flat picture."""
    n = picture.size
    v = picture - picture.mean()
    v_norm = float(np.sqrt(np.dot(v, v)))
    if v_norm <= 1e-9:
        return np.zeros(sound.size - n + 1)
    products = np.correlate(sound, v, mode="valid")
    # The sound's mean and energy over each shifted span.
    csum = np.concatenate([[0.0], np.cumsum(sound)])
    csq = np.concatenate([[0.0], np.cumsum(sound * sound)])
    sums = csum[n:] - csum[:-n]
    energy = csq[n:] - csq[:-n] - sums * sums / n
    return products / (v_norm * np.sqrt(np.maximum(energy, 1e-12)))


def _significance(picture: np.ndarray, sound: np.ndarray, peak: float) -> float:
    """How many standard deviations `peak` stands above the best correlations (over the
    same lags) of `picture` rolled round by evenly spaced amounts: onsets unrelated to
    this sound but with the same rhythm and density."""
    n = picture.size
    chance = np.array([_correlation(np.roll(picture, n * k // (NULL_ROLLS + 1)), sound).max()
                       for k in range(1, NULL_ROLLS + 1)])
    return float((peak - chance.mean()) / max(float(chance.std()), 1e-3))


def _smooth(signal: np.ndarray) -> np.ndarray:
    """A 3-bin binomial blur: peaks a bin or two apart overlap, and a parabola fits the top."""
    if signal.size < 3:
        return signal
    padded = np.concatenate([[signal[0]], signal, [signal[-1]]])
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def _distinct_onsets(signal: np.ndarray) -> int:
    """Local maxima well above the signal's typical level: flashes, cuts, mouths opening."""
    return int(_onset_bins(signal).size)


def _onset_bins(signal: np.ndarray) -> np.ndarray:
    """The bins of the local maxima well above the signal's typical level."""
    if signal.size < 3:
        return np.zeros(0, np.int64)
    floor = float(np.median(signal))
    spread = float(np.median(np.abs(signal - floor))) + 1e-9
    high = signal > max(floor + 8 * spread, 0.25 * float(signal.max()))
    peaks = high[1:-1] & (signal[1:-1] >= signal[:-2]) & (signal[1:-1] > signal[2:])
    return np.flatnonzero(peaks) + 1
