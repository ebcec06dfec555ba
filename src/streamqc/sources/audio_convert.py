"""Decoded audio frames to float32 arrays of shape (samples, channels)."""

from __future__ import annotations

import numpy as np

_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "u8": 128.0}


def to_float32(frame) -> np.ndarray:
    """PyAV AudioFrame -> float32 (n, channels) in [-1, 1]; planar formats come back as views."""
    fmt = frame.format.name
    base = fmt.rstrip("p")
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        data = data.T  # (channels, n) -> (n, channels), a view
    else:
        data = data.reshape(-1, channels)
    if base == "flt":
        return data
    if base == "dbl":
        return data.astype(np.float32)
    if base == "u8":
        return (data.astype(np.float32) - 128.0) / _SCALE["u8"]
    return data.astype(np.float32) / _SCALE[base]
