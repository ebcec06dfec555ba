"""Scheduled defects: small transforms applied frame by frame and block by block.

Each defect works on absolute frame indices / sample indices, holds whatever state it
needs (a freeze keeps the held picture), and describes itself as labels in media seconds.
Nothing here knows about files: the same objects drive a file encode or a live channel.

Video frame i is shown from i / fps; audio sample n plays at n / sample_rate; both
clocks start at 0 on the first video frame. An interval [first, end) of frames or
samples is labelled [first / rate, end / rate].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from streamqc.synth.labels import Annotations, HardNegative, Ignore, Label
from streamqc.synth.spec import C_NEUTRAL, Y_BLACK, AudioSpec, VideoSpec
from streamqc.synth.content import to_luma, textured_plane


class Defect:
    """Base: a no-op on every frame and block."""

    def replaces(self, index: int) -> bool:
        """True when frame `index` does not need rendered content (the defect supplies it)."""
        return False

    def content_index(self, index: int, k: int) -> int:
        """Which content frame to show at output frame `index` (stutter, cadence)."""
        return k

    def video(self, index: int, pic: np.ndarray) -> np.ndarray:
        return pic

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        return block

    def audio_delay(self) -> int:
        """Samples by which the whole programme audio lags the picture (A/V offset)."""
        return 0

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        return Annotations()


def _overlap(start: int, n: int, first: int, end: int) -> tuple[int, int] | None:
    lo, hi = max(start, first), min(start + n, end)
    return (lo - start, hi - start) if lo < hi else None


# --- video -------------------------------------------------------------------------------


@dataclasses.dataclass
class Freeze(Defect):
    """Frames [first, end) all show frame `first`; optionally with fresh sensor noise each frame.

    The noisy kind is what a frozen camera or a stuck decoder behind an analogue stage
    looks like: never bit-identical, yet nothing moves.
    """

    first: int
    end: int
    noise_sigma: float = 0.0
    seed: int = 0
    _held: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def replaces(self, index: int) -> bool:
        return self.first < index < self.end and self._held is not None

    def video(self, index: int, pic: np.ndarray) -> np.ndarray:
        if index == self.first:
            self._held = pic.copy()
            return pic
        if not (self.first < index < self.end) or self._held is None:
            return pic
        out = self._held.copy()
        if self.noise_sigma > 0:
            h = out.shape[0] * 2 // 3
            rng = np.random.default_rng([self.seed, index])
            y = out[:h].astype(np.int16)
            y += rng.normal(0, self.noise_sigma, y.shape).astype(np.int16)
            out[:h] = np.clip(y, 16, 235)
        return out

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert video is not None
        details = {"noise_sigma": self.noise_sigma} if self.noise_sigma else {}
        return Annotations(labels=[Label("video.freeze", video.time_of(self.first), video.time_of(self.end), details)])


@dataclasses.dataclass
class Black(Defect):
    """Frames [first, end) black (optionally with a station logo), with optional fades.

    `ramp_frames` fade the picture to black before `first` and back after `end`; the
    label covers only the fully black frames. With `negative=True` the black is a short
    programme fade, recorded as a hard negative.
    """

    first: int
    end: int
    logo_area: float = 0.0
    ramp_frames: int = 0
    negative: bool = False
    seed: int = 0
    _logo: tuple[np.ndarray, int, int] | None = dataclasses.field(default=None, repr=False)

    def replaces(self, index: int) -> bool:
        return self.first <= index < self.end

    def _logo_for(self, h: int, w: int) -> tuple[np.ndarray, int, int]:
        if self._logo is None:
            rng = np.random.default_rng([self.seed, 20])
            side_h = int(np.sqrt(self.logo_area * h * w * 0.5))
            side_h -= side_h % 2
            side_w = side_h * 2
            logo = to_luma(textured_plane(rng, side_h, side_w), 120, 235)
            corner = int(rng.integers(4))
            my, mx = int(h * 0.05) & ~1, int(w * 0.04) & ~1
            y0 = my if corner < 2 else h - my - side_h
            x0 = mx if corner % 2 == 0 else w - mx - side_w
            self._logo = (logo, y0, x0)
        return self._logo

    def video(self, index: int, pic: np.ndarray) -> np.ndarray:
        h = pic.shape[0] * 2 // 3
        if self.first <= index < self.end:
            pic[:h] = Y_BLACK
            pic[h:] = C_NEUTRAL
            if self.logo_area > 0:
                logo, y0, x0 = self._logo_for(h, pic.shape[1])
                pic[y0 : y0 + logo.shape[0], x0 : x0 + logo.shape[1]] = logo
            return pic
        r = self.ramp_frames
        if r and (self.first - r <= index < self.first or self.end <= index < self.end + r):
            # Linear fade of luma toward black level and chroma toward neutral.
            dist = self.first - index if index < self.first else index - self.end + 1
            a = dist / (r + 1)
            y = pic[:h].astype(np.float32)
            pic[:h] = Y_BLACK + (y - Y_BLACK) * a
            c = pic[h:].astype(np.float32)
            pic[h:] = C_NEUTRAL + (c - C_NEUTRAL) * a
        return pic

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert video is not None
        s, e = video.time_of(self.first), video.time_of(self.end)
        r = video.time_of(self.ramp_frames)
        if self.negative:
            what = f"short fade to black ({e - s:.2f} s black)"
            return Annotations(hard_negatives=[HardNegative(what, s - r, e + r)])
        details = {"logo_area": round(self.logo_area, 3)} if self.logo_area else {}
        return Annotations(
            labels=[Label("video.black", s, e, details)],
            # A black picture is also a picture that does not change.
            ignore=[Ignore("video.freeze", s - r, e + r)],
        )


@dataclasses.dataclass
class Stutter(Defect):
    """Irregular cadence in [first, end): some frames shown twice, others skipped.

    Each repeat is paid back by a later skip so the programme stays in time, the way a
    capture card or a transcoder short of CPU behaves.
    """

    first: int
    end: int
    events: int = 6
    seed: int = 0
    _map: dict[int, int] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 30])
        span = self.end - self.first
        slots = np.sort(rng.choice(np.arange(1, span - 2), size=min(self.events * 2, span - 4), replace=False))
        lag = 0
        for n, j in enumerate(slots):
            # Alternate repeat (+1 lag) and skip (-1 lag) so lag returns to 0.
            lag += 1 if n % 2 == 0 else -1
            self._map[self.first + int(j)] = lag
        self._anomalies = [self.first + int(j) for j in slots]

    def content_index(self, index: int, k: int) -> int:
        if not (self.first <= index < self.end):
            return k
        keys = [j for j in self._map if j <= index]
        lag = self._map[max(keys)] if keys else 0
        return k - lag

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert video is not None
        a, b = self._anomalies[0], self._anomalies[-1] + 1
        return Annotations(labels=[Label("video.stutter", video.time_of(a), video.time_of(b),
                                         {"repeated": len(self._anomalies) // 2,
                                          "dropped": len(self._anomalies) // 2})])


# --- audio -------------------------------------------------------------------------------


def _floor_noise(seed: int, start: int, n: int, channels: int, level_dbfs: float) -> np.ndarray:
    """Deterministic white noise at an RMS level, as a function of absolute sample index."""
    period = 1 << 16
    bank = np.random.default_rng([seed, 40]).standard_normal((period, channels)).astype(np.float32)
    bank *= 10 ** (level_dbfs / 20)
    return bank[np.arange(start, start + n) % period]


@dataclasses.dataclass
class Silence(Defect):
    """Samples [first, end) replaced by digital zero or by a low noise floor.

    `negative=True` with a short span is a programme pause (hard negative): it fades in
    and out over `ramp` samples instead of cutting.
    """

    first: int
    end: int
    floor_dbfs: float | None = None
    ramp: int = 0
    negative: bool = False
    seed: int = 0

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        r = self.ramp
        hit = _overlap(start, len(block), self.first - r, self.end + r)
        if hit is None:
            return block
        lo, hi = hit
        idx = np.arange(start + lo, start + hi)
        # Gain 1 outside, 0 inside, linear over the ramps.
        gain = np.clip(np.minimum(self.first - idx, idx - self.end + 1) / max(r, 1), 0, 1).astype(np.float32)
        seg = block[lo:hi] * gain[:, None]
        if self.floor_dbfs is not None:
            seg += _floor_noise(self.seed, start + lo, hi - lo, block.shape[1], self.floor_dbfs) * (1 - gain[:, None])
        block[lo:hi] = seg
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        s, e = audio.time_of(self.first), audio.time_of(self.end)
        if self.negative:
            floor = "digital zero" if self.floor_dbfs is None else f"{self.floor_dbfs:.0f} dBFS floor"
            return Annotations(hard_negatives=[HardNegative(f"short pause ({e - s:.2f} s, {floor})", s, e, "audio")])
        details = {"floor_dbfs": self.floor_dbfs} if self.floor_dbfs is not None else {"digital_zero": True}
        ann = Annotations(labels=[Label("audio.silence", s, e, details, "audio")])
        if self.floor_dbfs is None:
            ann.ignore.append(Ignore("audio.dropout", s, e, "audio"))
        # An abrupt stop is a discontinuity a click detector may legitimately flag.
        ann.ignore += [Ignore("audio.click", t - 0.03, t + 0.03, "audio") for t in (s, e)]
        return ann


@dataclasses.dataclass
class Dropout(Defect):
    """A gap of digital silence [first, end) cut into the programme (lost audio packets)."""

    first: int
    end: int

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        hit = _overlap(start, len(block), self.first, self.end)
        if hit is not None:
            block[hit[0] : hit[1]] = 0.0
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        s, e = audio.time_of(self.first), audio.time_of(self.end)
        return Annotations(
            labels=[Label("audio.dropout", s, e, {"duration_ms": round(1000 * (e - s))}, "audio")],
            ignore=[Ignore("audio.click", s - 0.03, e + 0.03, "audio")],
        )


@dataclasses.dataclass
class Attenuate(Defect):
    """A quiet passage: the programme turned down by `gain_db` over [first, end), smoothly."""

    first: int
    end: int
    gain_db: float
    what: str = "quiet but present audio"
    ramp: int = 2400

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        r = self.ramp
        hit = _overlap(start, len(block), self.first - r, self.end + r)
        if hit is None:
            return block
        lo, hi = hit
        idx = np.arange(start + lo, start + hi)
        inside = np.clip(np.minimum(idx - self.first + r, self.end + r - 1 - idx) / r, 0, 1)
        g = 10 ** (self.gain_db * inside / 20)
        block[lo:hi] *= g[:, None].astype(np.float32)
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        s, e = audio.time_of(self.first), audio.time_of(self.end)
        return Annotations(hard_negatives=[HardNegative(self.what, s, e, "audio")])


@dataclasses.dataclass
class Clipping(Defect):
    """Programme driven into full scale over [first, end) on some channels (hot feed)."""

    first: int
    end: int
    channels: Sequence[int] = (0, 1)
    gain_db: float = 14.0

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        hit = _overlap(start, len(block), self.first, self.end)
        if hit is None:
            return block
        lo, hi = hit
        g = 10 ** (self.gain_db / 20)
        for c in self.channels:
            if c < block.shape[1]:
                block[lo:hi, c] = np.clip(block[lo:hi, c] * g, -1.0, 1.0)
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        s, e = audio.time_of(self.first), audio.time_of(self.end)
        chans = [c for c in self.channels if c < audio.channels]
        return Annotations(
            labels=[Label("audio.clipping", s, e, {"channel": c, "gain_db": self.gain_db}, "audio") for c in chans],
            # Flat tops are discontinuities of slope, and a hot passage lifts loudness
            # and true peak: both follow from the clipping and are not scored.
            ignore=[Ignore("audio.click", s, e, "audio"), Ignore("audio.loudness", 0.0, 1e9, "audio")],
        )


@dataclasses.dataclass
class Clicks(Defect):
    """Isolated impulses (2-8 samples) or short waveform steps at given sample positions."""

    positions: Sequence[int]
    amplitude: float = 0.7
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 50])
        n = len(self.positions)
        # Impulses 2-8 samples wide: narrower ones are mostly filtered away by the codec.
        self._shape = list(zip(rng.integers(0, 2, n), rng.integers(2, 9, n), rng.choice([-1.0, 1.0], n)))

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        for p, (kind, w, sgn) in zip(self.positions, self._shape):
            if kind == 0:  # impulse
                hit = _overlap(start, len(block), p, p + int(w))
                if hit:
                    block[hit[0] : hit[1]] = sgn * self.amplitude
            else:  # a short step (a splice error): offset for 2 ms, then back
                hit = _overlap(start, len(block), p, p + 96)
                if hit:
                    block[hit[0] : hit[1]] += sgn * self.amplitude * 0.6
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        # A click near full scale is also a true-peak over: a loudness meter may say so.
        return Annotations(labels=[
            Label("audio.click", audio.time_of(p), audio.time_of(p) + 0.01, {}, "audio") for p in self.positions
        ], ignore=[Ignore("audio.loudness", audio.time_of(p) - 0.05, audio.time_of(p) + 0.06, "audio")
                   for p in self.positions])


@dataclasses.dataclass
class Loudness(Defect):
    """The whole programme `gain_db` away from its -23 LUFS mix, soft-limited below full scale."""

    gain_db: float
    duration_s: float
    measured_lufs: float | None = None

    def audio(self, start: int, block: np.ndarray) -> np.ndarray:
        block *= 10 ** (self.gain_db / 20)
        if self.gain_db > 0:
            # Limit smoothly at -1.5 dBFS: loud, but no flat-topped clipping.
            lim = 10 ** (-1.5 / 20)
            np.tanh(block / lim, out=block)
            block *= lim
        return block

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        details: dict[str, float] = {"gain_db": self.gain_db}
        if self.measured_lufs is not None:
            details["lufs"] = round(self.measured_lufs, 1)
        return Annotations(labels=[Label("audio.loudness", 0.0, self.duration_s, details, "audio")])


@dataclasses.dataclass
class AvOffset(Defect):
    """Audio late (positive) or early (negative) against the picture by `offset_ms`.

    Below the ITU-R BT.1359 detectability bounds (lead 45 ms, lag 125 ms) it is a hard
    negative instead of a label.
    """

    offset_ms: float
    sample_rate: int
    duration_s: float

    def audio_delay(self) -> int:
        return int(round(self.offset_ms * self.sample_rate / 1000))

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        if -45 <= self.offset_ms <= 125:
            return Annotations(hard_negatives=[HardNegative(f"A/V offset {self.offset_ms:+.0f} ms, within tolerance",
                                                            0.0, self.duration_s)])
        return Annotations(labels=[Label("av.sync", 0.0, self.duration_s, {"offset_ms": round(self.offset_ms)})])


# --- stream level: carried out by the encoder sink, not on pixels or samples ------------


@dataclasses.dataclass
class Discontinuity(Defect):
    """Timestamps of video and audio jump by `jump_s` from frame `frame` on; picture continues."""

    frame: int
    jump_s: float

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert video is not None
        t = video.time_of(self.frame)
        ann = Annotations(labels=[Label("stream.discontinuity", t, t, {"jump_s": self.jump_s})])
        # Transport indicators that follow from an unannounced jump are not scored here.
        for kind in ("ts.pcr_discontinuity", "ts.pcr_accuracy", "ts.pts_error", "ts.pcr_repetition", "ts.cc_error"):
            ann.ignore.append(Ignore(kind, t - 0.5, t + 0.5))
        return ann


@dataclasses.dataclass
class FormatChange(Defect):
    """The video switches to width x height at frame `frame` (same PID, continuous timestamps)."""

    frame: int
    width: int
    height: int
    from_size: tuple[int, int] = (0, 0)

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert video is not None
        t = video.time_of(self.frame)
        return Annotations(labels=[Label("stream.format_change", t, t, {
            "from": f"{self.from_size[0]}x{self.from_size[1]}", "to": f"{self.width}x{self.height}"})])


@dataclasses.dataclass
class AudioLoss(Defect):
    """No audio packets from sample `from_sample` on while the video goes on."""

    from_sample: int
    duration_s: float

    def annotate(self, video: VideoSpec | None, audio: AudioSpec | None) -> Annotations:
        assert audio is not None
        s = audio.time_of(self.from_sample)
        return Annotations(
            labels=[Label("stream.missing_track", s, self.duration_s, {"track": "audio"}, "audio")],
            # Where the track stops, a silence/dropout detector may see its end as a gap.
            ignore=[Ignore(k, s - 0.1, self.duration_s, "audio")
                    for k in ("audio.silence", "audio.dropout", "audio.click")],
        )
