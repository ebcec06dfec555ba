"""Decoded audio frames to float32 arrays of shape (samples, channels)."""

from __future__ import annotations

import numpy as np

_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}
_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0}


def to_float32(frame) -> np.ndarray:
    """PyAV AudioFrame -> float32 (n, channels) in [-1, 1].

    Reads the planes as numpy views (`to_ndarray()` stacks a copy first, which costs
    more than all the audio detectors together on AAC's 21 ms frames).
    """
    base = frame.format.name.rstrip("p")
    dtype = _DTYPES[base]
    n = frame.samples
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        planes = [np.frombuffer(plane, dtype, n) for plane in frame.planes[:channels]]
        data = np.stack(planes, axis=1) if channels > 1 else planes[0][:, None]
    else:
        data = np.frombuffer(frame.planes[0], dtype, n * channels).reshape(n, channels)
    if base == "flt":
        return data if data.flags.owndata else data.copy()  # never a view of a reused buffer
    if base == "dbl":
        return data.astype(np.float32)
    if base == "u8":
        return (data.astype(np.float32) - 128.0) / _SCALE["u8"]
    return data.astype(np.float32) / _SCALE[base]
