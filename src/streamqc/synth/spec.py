"""Formats of the generated programme and the packed picture layout shared by every part.

Pictures are 8-bit limited-range YUV 4:2:0 packed in one array of shape (h * 3 // 2, w),
the layout `av.VideoFrame.from_ndarray(..., format="yuv420p")` takes without conversion:
rows [0, h) are Y, then U and V each stored as h // 4 rows of w bytes. Generating YUV
directly skips an RGB->YUV conversion per frame, the most expensive step otherwise.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

# Limited-range ("TV") levels: what broadcast encoders expect and detectors assume.
Y_BLACK = 16
Y_WHITE = 235
C_NEUTRAL = 128


@dataclasses.dataclass(frozen=True, slots=True)
class VideoSpec:
    width: int
    height: int
    fps: Fraction

    def __post_init__(self) -> None:
        # yuv420p packing into (h*3/2, w) needs U and V rows to fill whole rows of w.
        if self.width % 2 or self.height % 4:
            raise ValueError(f"{self.width}x{self.height}: width must be even and height a multiple of 4")

    def time_of(self, index: int) -> float:
        return index * self.fps.denominator / self.fps.numerator

    def index_at(self, time_s: float) -> int:
        """The first frame shown at or after `time_s` (frame i is shown from i / fps)."""
        return int(np.ceil(round(time_s * self.fps, 6)))

    def frames_in(self, duration_s: float) -> int:
        return self.index_at(duration_s)

    @property
    def fps_label(self) -> float:
        return round(float(self.fps), 3)


@dataclasses.dataclass(frozen=True, slots=True)
class AudioSpec:
    sample_rate: int = 48000
    channels: int = 2

    def time_of(self, sample: int) -> float:
        return sample / self.sample_rate

    def sample_at(self, time_s: float) -> int:
        return int(round(time_s * self.sample_rate))


def blank_picture(spec: VideoSpec, y: int = Y_BLACK) -> np.ndarray:
    pic = np.empty((spec.height * 3 // 2, spec.width), np.uint8)
    pic[: spec.height] = y
    pic[spec.height :] = C_NEUTRAL
    return pic


def planes(pic: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of Y (h, w), U and V (h/2, w/2) inside a packed picture; writes go through."""
    w = pic.shape[1]
    q = height // 4
    u = pic[height : height + q].reshape(height // 2, w // 2)
    v = pic[height + q : height + 2 * q].reshape(height // 2, w // 2)
    return pic[:height], u, v


def pack(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = y.shape
    pic = np.empty((h * 3 // 2, w), np.uint8)
    py, pu, pv = planes(pic, h)
    py[...] = y
    pu[...] = u
    pv[...] = v
    return pic
