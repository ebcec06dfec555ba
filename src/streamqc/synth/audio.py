"""Programme audio: music-like tones, noise beds, speech-like noise, beeps, real recordings.

Sources render any block [start, start + n) of an endless programme as float32
(n, channels), a pure function of the sample index, so blocks can be requested in any
size (an encoder's frame, a live tick) and a delayed copy (A/V offset) is just another
read. Programme material is a loop made once and normalised to -23 LUFS (EBU R128),
the level a loudness detector expects, so only cases that inject a loudness defect
are off target.
"""

from __future__ import annotations

import math
from typing import Protocol
from collections.abc import Sequence

import numpy as np
import pyloudnorm
from scipy import fft as sp_fft
from scipy import signal

from streamqc.synth.spec import AudioSpec

TARGET_LUFS = -23.0
PEAK_LIMIT = 10 ** (-3.0 / 20)  # sample peak -3 dBFS keeps true peak under -1 dBTP


class AudioContent(Protocol):
    spec: AudioSpec
    description: str

    def render(self, start: int, n: int) -> np.ndarray:
        """float32 (n, channels) for samples [start, start + n); start may be negative."""
        ...


def dbfs(level_db: float) -> float:
    return 10 ** (level_db / 20)


def integrated_lufs(samples: np.ndarray, sample_rate: int) -> float:
    meter = pyloudnorm.Meter(sample_rate)
    return float(meter.integrated_loudness(samples.astype(np.float64)))


# The loudness detector allows 2 LU around the target; a programme the defects moved by
# more than half that may come out of tolerance once the codec has had its say.
LOUDNESS_MARGIN_LU = 1.0


def loudness_moved(samples: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS) -> bool:
    """Whether a levelled programme, after its defects (a silence, a dropout, a quiet
    passage take part of it away), is more than LOUDNESS_MARGIN_LU off target."""
    with np.errstate(divide="ignore"):  # an all-silent programme measures -inf: moved
        lufs = integrated_lufs(samples, sample_rate)
    return not abs(lufs - target_lufs) <= LOUDNESS_MARGIN_LU


def to_channels(buffer: np.ndarray, channels: int) -> np.ndarray:
    """Stereo (or any) buffer to `channels`: mono is the mean, more channels repeat."""
    if buffer.ndim == 1:
        buffer = buffer[:, None]
    if buffer.shape[1] == channels:
        return buffer
    if channels == 1:
        return buffer.mean(axis=1, keepdims=True)
    return np.repeat(buffer[:, :1], channels, axis=1)


class Loop:
    """An endless programme made by looping a buffer whose ends are cross-faded.

    The cross-fade makes the loop point inaudible: no click for a click detector to find.
    """

    def __init__(self, spec: AudioSpec, buffer: np.ndarray, description: str, fade_s: float = 0.05) -> None:
        fade = int(fade_s * spec.sample_rate)
        buffer = to_channels(buffer, spec.channels)
        body = buffer[: len(buffer) - fade].copy()
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
        body[:fade] = body[:fade] * ramp + buffer[len(buffer) - fade :] * (1 - ramp)
        self.spec = spec
        self.buffer = body.astype(np.float32)
        self.description = description

    def render(self, start: int, n: int) -> np.ndarray:
        idx = np.arange(start, start + n) % len(self.buffer)
        return self.buffer[idx]


def normalise(buffer: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS) -> np.ndarray:
    """Scale to `target_lufs`, then soft-limit peaks so no sample nears full scale."""
    lufs = integrated_lufs(buffer, sample_rate)
    if not math.isfinite(lufs):
        return buffer
    out = buffer * dbfs(target_lufs - lufs)
    peak = float(np.max(np.abs(out)))
    if peak > PEAK_LIMIT:
        # Soft knee above half the limit: keeps loudness nearly unchanged, no flat tops
        # that a clipping detector would rightly report.
        knee = PEAK_LIMIT * 0.5
        mag = np.abs(out)
        over = mag > knee
        span = PEAK_LIMIT - knee
        mag[over] = knee + span * np.tanh((mag[over] - knee) / span)
        out = np.sign(out) * mag
    return out.astype(np.float32)


def _envelope(n: int, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / sr
    env = np.minimum(1.0, t / attack_s) * np.exp(-t / release_s)
    tail = min(n, int(0.01 * sr))  # 10 ms fade-out: notes end without a step
    env[n - tail :] *= np.linspace(1, 0, tail, dtype=np.float32)
    return env


def music(spec: AudioSpec, seed: int, seconds: float = 12.0) -> np.ndarray:
    """Notes of a pentatonic melody over bass and pad chords, with smooth envelopes."""
    rng = np.random.default_rng([seed, 10])
    sr = spec.sample_rate
    n = int(seconds * sr)
    out = np.zeros((n, 2), np.float32)
    root = rng.uniform(110, 220)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    tempo = rng.uniform(0.18, 0.45)  # seconds per beat
    t = 0.0
    while t < seconds - 0.05:
        dur = tempo * rng.choice([1, 1, 2, 0.5])
        freq = root * 2 ** (rng.choice(scale) / 12 + rng.integers(1, 3))
        m = min(int(dur * 1.6 * sr), n - int(t * sr))
        tt = np.arange(m, dtype=np.float32) / sr
        tone = (np.sin(2 * np.pi * freq * tt) + 0.35 * np.sin(4 * np.pi * freq * tt)
                + 0.15 * np.sin(6 * np.pi * freq * tt))
        note = tone * _envelope(m, sr, rng.uniform(0.008, 0.03), dur * 0.8)
        pan = rng.uniform(0.2, 0.8)
        s = int(t * sr)
        out[s : s + m, 0] += note * (1 - pan)
        out[s : s + m, 1] += note * pan
        t += dur
    # Bass and pad: one chord per bar, long attacks.
    bar = tempo * 4
    t = 0.0
    while t < seconds:
        m = min(int(bar * sr), n - int(t * sr))
        tt = np.arange(m, dtype=np.float32) / sr
        f = root / 2 * 2 ** (rng.choice([0, 5, 7, 9]) / 12)
        chord = sum(np.sin(2 * np.pi * f * r * tt) for r in (1, 1.5, 2, 2.52))
        env = np.minimum(1, tt / 0.08) * np.minimum(1, (m / sr - tt) / 0.08)
        s = int(t * sr)
        out[s : s + m] += (0.3 * chord * env)[:, None]
        t += bar
    return out


def noise_bed(spec: AudioSpec, seed: int, seconds: float = 8.0, tilt: float = 1.0) -> np.ndarray:
    """Pink-ish stereo noise (room tone, applause, rain), slowly modulated."""
    rng = np.random.default_rng([seed, 11])
    sr = spec.sample_rate
    n = int(seconds * sr)
    m = sp_fft.next_fast_len(n, real=True)  # an awkward length makes the FFT 10x slower
    white = rng.standard_normal((m, 2)).astype(np.float32)
    spec_ = sp_fft.rfft(white, axis=0, workers=1)
    f = sp_fft.rfftfreq(m, 1 / sr)
    f[0] = 1
    shaped = sp_fft.irfft(spec_ * (f ** (-tilt / 2)).astype(np.float32)[:, None], n=m, axis=0, workers=1)[:n]
    shaped /= shaped.std() + 1e-9
    mod = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * np.arange(n) / sr)
    return (shaped * mod[:, None]).astype(np.float32)


def speech_like(spec: AudioSpec, seed: int, seconds: float = 10.0) -> np.ndarray:
    """Band-passed noise with a syllabic (3-6 Hz) envelope and pauses between phrases.

    Pauses go down to a room-tone floor, never to digital zero: a phrase pause is not a
    dropout and, being short, not silence either.
    """
    rng = np.random.default_rng([seed, 12])
    sr = spec.sample_rate
    n = int(seconds * sr)
    sos = signal.butter(4, [250, 3500], btype="bandpass", fs=sr, output="sos")
    voiced = signal.sosfilt(sos, rng.standard_normal(n)).astype(np.float32)
    # A formant-ish tone sweep makes it less like pure noise.
    f0 = rng.uniform(100, 220)
    tt = np.arange(n) / sr
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * tt))
    voiced += 0.5 * np.sin(2 * np.pi * np.cumsum(pitch) / sr).astype(np.float32)
    # Within a phrase the level swings with the syllables but never drops to the floor;
    # between phrases only the room tone remains (real speech pauses are 0.2-0.7 s).
    env = np.zeros(n, np.float32)
    t = 0.1
    while t < seconds - 0.3:
        phrase = rng.uniform(1.0, 3.0)
        end = min(t + phrase, seconds - 0.2)
        s, e = int(t * sr), int(end * sr)
        syl = rng.uniform(3, 6)
        seg = np.arange(e - s) / sr
        env[s:e] = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * syl * seg + rng.uniform(0, np.pi))) ** 2
        ramp = min(e - s, int(0.03 * sr))
        env[s : s + ramp] *= np.linspace(0, 1, ramp)
        env[e - ramp : e] *= np.linspace(1, 0, ramp)
        t = end + rng.uniform(0.2, 0.7)
    env = signal.sosfilt(signal.butter(2, 30, fs=sr, output="sos"), env).astype(np.float32)
    mono = voiced * np.clip(env, 0, None)
    room = noise_bed(spec, seed + 1, seconds) * dbfs(-36)
    return np.stack([mono, mono], axis=1) + room


def programme(spec: AudioSpec, seed: int, kind: str, seconds: float = 12.0) -> Loop:
    """A normalised, looped programme of one of: music, speech, noise, music+speech."""
    sr = spec.sample_rate
    if kind == "music":
        buf = music(spec, seed, seconds) + noise_bed(spec, seed, seconds) * dbfs(-40)
        desc = "music-like tones with envelopes"
    elif kind == "speech":
        buf = speech_like(spec, seed, seconds)
        desc = "speech-like modulated noise with phrase pauses"
    elif kind == "noise":
        buf = noise_bed(spec, seed, seconds, tilt=0.8)
        desc = "noise bed (rain/applause-like)"
    elif kind == "mix":
        buf = music(spec, seed, seconds) * 0.5 + speech_like(spec, seed, seconds)
        desc = "speech over a music bed"
    else:
        raise ValueError(f"unknown audio programme {kind!r}")
    # Normalise what will be played: a mono mix is 3 dB below its stereo source.
    return Loop(spec, normalise(to_channels(buf, spec.channels), sr), desc)


class Scaled:
    """A programme at a fixed gain (level corrections after mixing in beeps and the like)."""

    def __init__(self, base: AudioContent, gain: float) -> None:
        self.spec = base.spec
        self._base = base
        self.gain = gain
        self.description = base.description

    def render(self, start: int, n: int) -> np.ndarray:
        return self._base.render(start, n) * np.float32(self.gain)


def levelled(content: AudioContent, seconds: float, target_lufs: float = TARGET_LUFS) -> AudioContent:
    """`content` scaled so that its first `seconds` measure `target_lufs` (within 0.1 LU)."""
    n = int(seconds * content.spec.sample_rate)
    lufs = integrated_lufs(content.render(0, n), content.spec.sample_rate)
    if not math.isfinite(lufs) or abs(lufs - target_lufs) < 0.1:
        return content
    return Scaled(content, dbfs(target_lufs - lufs))


class Beeps:
    """Programme audio plus tone bursts at given sample positions (pairs with Flashes)."""

    def __init__(self, base: AudioContent, starts: Sequence[int], period: int = 0, beep_s: float = 0.06,
                 freq_hz: float = 1000.0, level_dbfs: float = -12.0) -> None:
        self.spec = base.spec
        self._base = base
        self._starts = np.asarray(sorted(starts), np.int64)
        self._period = period
        sr = base.spec.sample_rate
        m = int(beep_s * sr)
        tt = np.arange(m) / sr
        # 1 ms ramps: onset within a sample or two of the nominal instant, no click.
        ramp = np.minimum(1, np.minimum(tt, beep_s - tt) / 0.001)
        self._beep = (dbfs(level_dbfs) * np.sin(2 * np.pi * freq_hz * tt) * ramp).astype(np.float32)
        self.description = base.description + f" + {freq_hz:.0f} Hz beeps"

    def render(self, start: int, n: int) -> np.ndarray:
        out = self._base.render(start, n).copy()
        m = len(self._beep)
        if self._period:
            first, last = (start - m) // self._period, (start + n) // self._period
            candidates = [k * self._period + s for k in range(first, last + 1) for s in self._starts]
        else:
            candidates = list(self._starts)
        for s in candidates:
            lo, hi = max(s, start), min(s + m, start + n)
            if lo < hi:
                out[lo - start : hi - start] += self._beep[lo - s : hi - s, None]
        return out


class Silent:
    """No programme at all (digital zero): the content of a track that carries nothing."""

    def __init__(self, spec: AudioSpec) -> None:
        self.spec = spec
        self.description = "digital silence"

    def render(self, start: int, n: int) -> np.ndarray:
        return np.zeros((n, self.spec.channels), np.float32)
