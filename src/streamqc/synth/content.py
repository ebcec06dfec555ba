"""Procedural picture sources: each renders frame `index` of an endless programme.

Every source is a pure function of (its seed, index), so a frame can be rendered twice
(a freeze holds it, a stutter repeats it) or out of order and come out identical, and a
live channel can run forever. Expensive things (large textures, noise banks, sprites) are
made once in the constructor; `render` only crops, pastes and adds, at the target size.
"""

from __future__ import annotations

import math
from typing import Protocol
from collections.abc import Sequence

import numpy as np
from scipy import fft

from streamqc.synth.spec import C_NEUTRAL, Y_BLACK, Y_WHITE, VideoSpec, blank_picture, planes


class VideoContent(Protocol):
    spec: VideoSpec
    description: str

    def render(self, index: int) -> np.ndarray:
        """A new packed yuv420p picture (see spec.py) for frame `index`."""
        ...


# --- building blocks -----------------------------------------------------------------


def fractal_noise(rng: np.random.Generator, h: int, w: int, beta: float, cutoff: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-std 1/f^beta noise (float32, periodic in both axes).

    One FFT gives every octave at once; periodicity lets pans wrap without a seam.
    `cutoff` (cycles/pixel) removes fine detail for soft fields such as chroma.
    """
    white = rng.standard_normal((h, w), dtype=np.float32)
    spec = fft.rfft2(white, workers=1)
    fy = fft.fftfreq(h).astype(np.float32)[:, None]
    fx = fft.rfftfreq(w).astype(np.float32)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    gain = f ** (-beta)
    gain[0, 0] = 0.0
    if cutoff > 0:
        gain *= np.exp(-((f / cutoff) ** 2))
    out = fft.irfft2(spec * gain, s=(h, w), workers=1)
    out -= out.mean()
    out /= out.std() + 1e-9
    return out.astype(np.float32)


def to_luma(field: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map a unit-std field to uint8 luma spanning roughly [lo, hi] (2.5 sigma)."""
    x = np.clip(field * (1 / 5.0) + 0.5, 0.0, 1.0)
    return (lo + (hi - lo) * x).astype(np.uint8)


def to_chroma(field: np.ndarray, center: float, swing: float) -> np.ndarray:
    return np.clip(center + swing * field, 16, 240).astype(np.uint8)


def textured_plane(rng: np.random.Generator, h: int, w: int, detail: float = 1.0) -> np.ndarray:
    """Natural-looking luma detail: 1/f noise plus hard-edged regions (objects, shadows).

    Pure 1/f noise is too soft for block corruption to be visible and too easy for an
    encoder; the thresholded field adds the edges real pictures have.
    """
    base = fractal_noise(rng, h, w, beta=1.0 + 0.3 * (1 - detail))
    regions = np.tanh(3.0 * fractal_noise(rng, h, w, beta=1.6))
    return base + 0.8 * regions


class GrainBank:
    """Per-frame sensor/film noise without generating fresh random numbers per frame.

    A few noise planes slightly larger than the picture; frame k uses one of them at an
    offset drawn from (seed, k), so consecutive frames never share a noise pattern.
    """

    MARGIN = 32

    def __init__(self, seed: int, h: int, w: int, sigma: float, planes_n: int = 3) -> None:
        rng = np.random.default_rng([seed, 0x6A41])
        shape = (h + self.MARGIN, w + self.MARGIN)
        self._bank = [
            np.clip(rng.normal(0.0, sigma, shape), -127, 127).astype(np.int8) for _ in range(planes_n)
        ]
        self._seed = seed
        self._h, self._w = h, w
        self.sigma = sigma

    def noise(self, k: int) -> np.ndarray:
        r = np.random.default_rng([self._seed, k])
        plane = self._bank[int(r.integers(len(self._bank)))]
        dy, dx = (int(v) for v in r.integers(0, self.MARGIN, 2))
        return plane[dy : dy + self._h, dx : dx + self._w]

    def add(self, y: np.ndarray, k: int, lo: int = 0, hi: int = 255) -> None:
        """Add frame k's grain to a luma plane in place."""
        tmp = y.astype(np.int16)
        tmp += self.noise(k)
        np.clip(tmp, lo, hi, out=tmp)
        y[...] = tmp


def _bounce(start: float, speed: float, length: float, t: float) -> float:
    """Position moving at `speed` that reflects inside [0, length] (a triangle wave)."""
    if length <= 0:
        return 0.0
    p = (start + speed * t) % (2 * length)
    return p if p <= length else 2 * length - p


# --- sources ---------------------------------------------------------------------------


class TexturePan:
    """A camera panning over a large textured scene; `night` keeps luma in 16-45.

    Night scenes are the hard negative for black detection: dark, but with texture and
    motion, like a street at night.
    """

    def __init__(self, spec: VideoSpec, seed: int, speed_px_s: float = 120.0, night: bool = False,
                 grain_sigma: float = 0.0) -> None:
        rng = np.random.default_rng([seed, 1])
        self.spec = spec
        h, w = spec.height, spec.width
        self._th, self._tw = h + h // 2 + 2, w + w // 2 + 2
        self._th -= self._th % 2
        self._tw -= self._tw % 2
        field = textured_plane(rng, self._th, self._tw)
        if night:
            # Dark but detailed: most pixels 18-40 with occasional brighter lights.
            self._y = to_luma(field, 14, 48)
            lights = fractal_noise(rng, self._th, self._tw, beta=0.6) > 3.2
            self._y[lights] = 90
            swing = 4.0
        else:
            self._y = to_luma(field, 30, 225)
            swing = 28.0
        ch, cw = self._th // 2, self._tw // 2
        self._u = to_chroma(fractal_noise(rng, ch, cw, beta=1.8), C_NEUTRAL + rng.uniform(-15, 15), swing)
        self._v = to_chroma(fractal_noise(rng, ch, cw, beta=1.8), C_NEUTRAL + rng.uniform(-15, 15), swing)
        angle = rng.uniform(0, 2 * math.pi)
        # At least ~1.2 px per frame horizontally: with whole-pixel offsets a slower pan
        # would repeat frames, a stutter nobody labelled.
        fps = float(spec.fps)
        self._vx = math.copysign(max(abs(speed_px_s * math.cos(angle)), 1.2 * fps), math.cos(angle) or 1.0)
        self._vy = speed_px_s * math.sin(angle) * 0.5
        self._x0 = rng.uniform(0, self._tw - w)
        self._y0 = rng.uniform(0, self._th - h)
        if night:
            grain_sigma = max(grain_sigma, 1.0)  # low light: always some sensor noise
        self._grain = GrainBank(seed, h, w, grain_sigma) if grain_sigma > 0 else None
        self._night = night
        self.description = ("night scene pan (dark, detailed)" if night else "textured scene pan") + (
            " + grain" if grain_sigma else "")

    def offset(self, index: int) -> tuple[int, int]:
        t = index / float(self.spec.fps)
        w, h = self.spec.width, self.spec.height
        x = _bounce(self._x0, self._vx, self._tw - w, t)
        y = _bounce(self._y0, self._vy, self._th - h, t)
        # Chroma takes offset // 2: half a chroma pixel of misregistration at most.
        return int(x), int(y)

    def render(self, index: int) -> np.ndarray:
        h, w = self.spec.height, self.spec.width
        ox, oy = self.offset(index)
        pic = np.empty((h * 3 // 2, w), np.uint8)
        y, u, v = planes(pic, h)
        y[...] = self._y[oy : oy + h, ox : ox + w]
        u[...] = self._u[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        v[...] = self._v[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        if self._grain is not None:
            self._grain.add(y, index, Y_BLACK, Y_WHITE)
        return pic


class Gradient:
    """Slowly drifting smooth gradient: changes every frame, but only by a level or so.

    Hard negative for freeze detection (a detector that thresholds per-frame difference
    too loosely calls it frozen), and banding-prone for encoders.
    """

    def __init__(self, spec: VideoSpec, seed: int, period_s: float = 24.0, grain_sigma: float = 0.0) -> None:
        rng = np.random.default_rng([seed, 2])
        self.spec = spec
        h, w = spec.height, spec.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        scale = 1.0 / max(h, w)
        self._phase_field = ((xx * math.cos(a) + yy * math.sin(a)) * scale * rng.uniform(1.0, 2.0) * 2 * math.pi)
        self._chroma_field = self._phase_field[::2, ::2] * 0.7
        self._period = period_s
        self._uc = rng.uniform(-30, 30)
        self._vc = rng.uniform(-30, 30)
        self._grain = GrainBank(seed, h, w, grain_sigma) if grain_sigma > 0 else None
        self.description = "slow gradient drift" + (" + grain" if grain_sigma else "")

    def render(self, index: int) -> np.ndarray:
        h = self.spec.height
        phi = 2 * math.pi * index / float(self.spec.fps) / self._period
        pic = np.empty((h * 3 // 2, self.spec.width), np.uint8)
        y, u, v = planes(pic, h)
        y[...] = 125.0 + 85.0 * np.sin(self._phase_field + phi)
        u[...] = C_NEUTRAL + self._uc + 25.0 * np.cos(self._chroma_field + 0.5 * phi)
        v[...] = C_NEUTRAL + self._vc + 25.0 * np.sin(self._chroma_field - 0.7 * phi)
        if self._grain is not None:
            self._grain.add(y, index, Y_BLACK, Y_WHITE)
        return pic


class _Sprite:
    def __init__(self, rng: np.random.Generator, size: int, spec: VideoSpec) -> None:
        size -= size % 2
        self.size = size
        yy, xx = np.mgrid[0:size, 0:size]
        c = (size - 1) / 2
        if rng.random() < 0.5:
            self.mask = (yy - c) ** 2 + (xx - c) ** 2 <= c * c
        else:
            self.mask = np.ones((size, size), bool)
        lo, hi = sorted(rng.uniform(20, 235, 2))
        self.y = to_luma(textured_plane(rng, size, size), lo, max(hi, lo + 60))
        self.u = np.full((size // 2, size // 2), int(rng.uniform(60, 200)), np.uint8)
        self.v = np.full((size // 2, size // 2), int(rng.uniform(60, 200)), np.uint8)
        self.cmask = self.mask[::2, ::2]
        self.x0 = rng.uniform(0, spec.width - size)
        self.y0 = rng.uniform(0, spec.height - size)
        speed = rng.uniform(80, 400) * spec.width / 1280
        a = rng.uniform(0, 2 * math.pi)
        self.vx, self.vy = speed * math.cos(a), speed * math.sin(a)

    def paste(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, t: float) -> None:
        h, w = y.shape
        px = int(_bounce(self.x0, self.vx, w - self.size, t)) & ~1
        py = int(_bounce(self.y0, self.vy, h - self.size, t)) & ~1
        s = self.size
        np.copyto(y[py : py + s, px : px + s], self.y, where=self.mask)
        cy, cx, cs = py // 2, px // 2, s // 2
        np.copyto(u[cy : cy + cs, cx : cx + cs], self.u, where=self.cmask)
        np.copyto(v[cy : cy + cs, cx : cx + cs], self.v, where=self.cmask)


class MovingObjects:
    """Textured objects bouncing over a slowly panning background."""

    def __init__(self, spec: VideoSpec, seed: int, count: int = 5, grain_sigma: float = 0.0) -> None:
        rng = np.random.default_rng([seed, 3])
        self.spec = spec
        self._background = TexturePan(spec, seed + 17, speed_px_s=rng.uniform(10, 40))
        self._sprites = [_Sprite(rng, int(spec.height * rng.uniform(0.08, 0.25)), spec) for _ in range(count)]
        self._grain = GrainBank(seed, spec.height, spec.width, grain_sigma) if grain_sigma > 0 else None
        self.description = f"{count} moving objects over a slow pan" + (" + grain" if grain_sigma else "")

    def render(self, index: int) -> np.ndarray:
        pic = self._background.render(index)
        y, u, v = planes(pic, self.spec.height)
        t = index / float(self.spec.fps)
        for sprite in self._sprites:
            sprite.paste(y, u, v, t)
        if self._grain is not None:
            self._grain.add(y, index, Y_BLACK, Y_WHITE)
        return pic


class Slide:
    """A static presentation slide with one small moving element (a ticker dot).

    Hard negative for freeze: almost all of the picture is still for as long as the
    slide is up, but it is not a frozen feed.
    """

    def __init__(self, spec: VideoSpec, seed: int, element_area: float = 0.01) -> None:
        rng = np.random.default_rng([seed, 4])
        self.spec = spec
        h, w = spec.height, spec.width
        pic = blank_picture(spec, y=int(rng.uniform(190, 225)))
        y, u, v = planes(pic, h)
        u[...] = C_NEUTRAL + int(rng.uniform(-8, 8))
        v[...] = C_NEUTRAL + int(rng.uniform(-8, 8))
        # Title bar, then lines of "words": dark boxes of random widths.
        bar = int(h * 0.14)
        y[:bar] = int(rng.uniform(40, 90))
        u[: bar // 2] = int(rng.uniform(140, 180))
        line_h = max(4, int(h * 0.03))
        top = bar + line_h * 2
        text_right = int(w * 0.55)
        while top + line_h < int(h * 0.9):
            x = int(w * 0.06)
            while x < text_right:
                word = int(rng.uniform(0.02, 0.08) * w)
                y[top : top + line_h, x : min(x + word, text_right)] = int(rng.uniform(20, 60))
                x += word + max(4, int(w * 0.012))
            top += int(line_h * 2.2)
        # A picture on the right half, as slides have.
        ph, pw = int(h * 0.5), int(w * 0.32)
        py0, px0 = int(h * 0.25), int(w * 0.62)
        y[py0 : py0 + ph, px0 : px0 + pw] = to_luma(textured_plane(rng, ph, pw), 30, 220)
        self._slide = pic
        side = max(8, int(math.sqrt(element_area * h * w)))
        self._dot = side - side % 2
        self._path_y = int(h * 0.92) - self._dot // 2
        self._speed = rng.uniform(0.1, 0.3) * w
        self.description = f"static slide with a small moving element ({100 * element_area:.1f}% of the picture)"

    def render(self, index: int) -> np.ndarray:
        pic = self._slide.copy()
        y, u, v = planes(pic, self.spec.height)
        t = index / float(self.spec.fps)
        s = self._dot
        x = int(_bounce(0, self._speed, self.spec.width - s, t)) & ~1
        y[self._path_y : self._path_y + s, x : x + s] = 60
        u[self._path_y // 2 : (self._path_y + s) // 2, x // 2 : (x + s) // 2] = 90
        v[self._path_y // 2 : (self._path_y + s) // 2, x // 2 : (x + s) // 2] = 200
        return pic


class Flashes:
    """Base content with full-white flash frames at given frame indices.

    With beeps at the same instants (audio.Beeps) this is the A/V sync test pattern of
    broadcast practice, embedded in ordinary content.
    """

    def __init__(self, base: VideoContent, flash_frames: Sequence[int], period_frames: int = 0) -> None:
        self.spec = base.spec
        self._base = base
        self._flashes = frozenset(int(i) for i in flash_frames)
        self._period = period_frames
        self.description = base.description + " + white flashes"

    def is_flash(self, index: int) -> bool:
        k = index % self._period if self._period else index
        return k in self._flashes

    def render(self, index: int) -> np.ndarray:
        if self.is_flash(index):
            return blank_picture(self.spec, y=Y_WHITE)
        return self._base.render(index)


class SceneCuts:
    """Hard cuts between sources; each keeps its own clock so motion resumes naturally."""

    def __init__(self, spec: VideoSpec, scenes: Sequence[tuple[int, VideoContent]], loop_frames: int = 0) -> None:
        if not scenes or scenes[0][0] != 0:
            raise ValueError("the first scene must start at frame 0")
        self.spec = spec
        self._starts = [s for s, _ in scenes]
        self._sources = [c for _, c in scenes]
        self._loop = loop_frames
        self.description = "scene cuts: " + "; ".join(c.description for c in self._sources)

    def cut_frames(self) -> list[int]:
        return self._starts[1:]

    def render(self, index: int) -> np.ndarray:
        k = index % self._loop if self._loop else index
        scene = int(np.searchsorted(self._starts, k, side="right")) - 1
        return self._sources[scene].render(index)


class Cadence:
    """A frame-rate conversion: `new` source pictures spread over every `every` frames.

    Each frame shows the source picture on screen at its time (nearest before), so the
    duplicates fall on a fixed schedule: new=4, every=5 is one duplicate in five (24 or
    25 fps on a 30 fps clock); 12 in 25 is 24 fps film at 50 fps (every picture twice,
    one in twelve three times); 2 in 5 is 3:2 pulldown (24 fps at 60); 1 in 2 is 25 fps
    material at 50. Regular duplicates of moving pictures: a hard negative for freeze
    and stutter alike.
    """

    def __init__(self, base: VideoContent, every: int = 5, new: int | None = None) -> None:
        self.spec = base.spec
        self._base = base
        self._every = every
        self._new = every - 1 if new is None else new
        self.description = base.description + f" shown as {self._new} new pictures in every {every} frames (pulldown cadence)"

    def source_index(self, index: int) -> int:
        return (index * self._new) // self._every

    def render(self, index: int) -> np.ndarray:
        return self._base.render(self.source_index(index))
