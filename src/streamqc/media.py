"""The buffers that flow from the decoder to the detectors.

Frames stay in memory as numpy views on the decoder's own planes: nothing is copied
until a detector asks for its (small, subsampled) working copy, and that copy is made
once per frame and shared by every detector.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

# Detectors work on every 4th pixel in each direction: a 1080p picture becomes 480x270,
# enough to see freezes, black and blocks of 16x16 pixels, at 1/16 of the cost.
ANALYSIS_STEP = 4


@dataclasses.dataclass(slots=True, frozen=True)
class VideoFormat:
    width: int
    height: int
    pix_fmt: str
    fps: float | None = None

    def describe(self) -> str:
        rate = f"@{self.fps:.3f}" if self.fps else ""
        return f"{self.width}x{self.height} {self.pix_fmt}{rate}"


@dataclasses.dataclass(slots=True, frozen=True)
class AudioFormat:
    sample_rate: int
    channels: int
    layout: str

    def describe(self) -> str:
        return f"{self.sample_rate}Hz {self.layout}"


@dataclasses.dataclass(eq=False)
class VideoFrame:
    """A decoded picture. `luma` is a view of the decoder's Y plane (no copy)."""

    time: float
    duration: float
    luma: np.ndarray
    bit_depth: int
    full_range: bool
    format: VideoFormat
    key: bool
    corrupt: bool
    track: int = 0
    av_frame: Any = None  # the PyAV frame, for detectors that need chroma

    @functools.cached_property
    def small(self) -> np.ndarray:
        """Subsampled luma as int16 on an 8-bit scale, the shared working copy."""
        return self.sample(ANALYSIS_STEP)

    def sample(self, step: int) -> np.ndarray:
        """Every `step`-th luma pixel in each direction, as int16 on an 8-bit scale."""
        sampled = self.luma[::step, ::step].astype(np.int16)
        if self.bit_depth > 8:
            sampled >>= self.bit_depth - 8
        return sampled

    @property
    def black_level(self) -> int:
        return 0 if self.full_range else 16


@dataclasses.dataclass(eq=False)
class AudioChunk:
    """Decoded audio: `samples` is float32 in [-1, 1], shape (n_samples, channels), channel-major."""

    time: float
    samples: np.ndarray
    sample_rate: int
    format: AudioFormat
    corrupt: bool = False
    track: int = 0

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate


@dataclasses.dataclass(eq=False)
class StreamNote:
    """Something the conversion layer saw that is not a picture or a sound.

    kinds: "decode_error" (a packet or frame the decoder rejected or marked corrupt),
    "discontinuity" (timestamps jumped; `details` has the jump), "track_lost",
    "track_absent", "end" (the input ended; `time` is the end of media).
    """

    kind: str
    time: float
    media: str  # "video" | "audio" | "container"
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    track: int = 0


Buffer = VideoFrame | AudioChunk | StreamNote
