"""video.black on real footage: black is one flat level across the picture (with at most a
small logo), whatever that level is; a dim scene with little contrast is not black."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from streamqc.check import check_input

from test_freeze import HEIGHT, WIDTH, encode, real_pictures


def blacks(path: pathlib.Path) -> list[tuple[float, float]]:
    result = check_input(str(path), options={name: {"enabled": False} for name in ("av_sync", "stutter", "freeze")})
    return [(e.start, e.end) for e in result.events if e.kind == "video.black"]


@pytest.fixture(scope="module")
def handheld(shared_media: pathlib.Path) -> list[np.ndarray]:
    """6 s of a handheld phone shot at 30 fps."""
    return real_pictures(shared_media / "real-clean/mdn-learning-area/elf.mp4", 180)


@pytest.fixture(scope="module")
def crowd(shared_media: pathlib.Path) -> list[np.ndarray]:
    """A street scene with people dancing (a fixed camera), 150 pictures."""
    return real_pictures(shared_media / "real-clean/openpose/video.avi", 150)


def dimmed(picture: np.ndarray, low: float, high: float) -> np.ndarray:
    """The picture's luma squeezed into [low, high] (a scene lit by very little), chroma greyed."""
    out = picture.copy()
    luma = out[:HEIGHT].astype(np.float32)
    out[:HEIGHT] = (low + (luma - 16.0) * (high - low) / 219.0).clip(0, 255).astype(np.uint8)
    out[HEIGHT:] = (128 + (out[HEIGHT:].astype(np.float32) - 128) * 0.3).astype(np.uint8)
    return out


def test_night_scene_with_little_contrast_is_not_black(tmp_path, handheld, crowd):
    # A street scene lit by very little: luma 19-36, every pixel dark by any threshold
    # (within 20 levels of black) and a pixel deviation under 3 levels, yet the people,
    # the street and the buildings still show: the middle 80 % of its pixels span 6-7
    # levels (a black picture's noise is a level or two).
    night = [dimmed(p, 19.0, 36.0) for p in crowd[:120]]
    assert blacks(encode(tmp_path / "night.mp4", handheld[:60] + night + handheld[60:120], 30)) == []


def test_black_slate_at_a_lifted_level_with_a_logo_is_black(tmp_path, handheld):
    # A "black" slate coded at luma 30 (not 16), with a white logo on 2 % of it, for 3 s.
    slate = np.full_like(handheld[0], 128)
    slate[:HEIGHT] = 30
    slate[20:54, 20:70] = 235
    (black,) = blacks(encode(tmp_path / "slate.mp4", handheld[:60] + [slate] * 90 + handheld[60:120], 30))
    assert black[0] == pytest.approx(2.0, abs=0.1) and black[1] == pytest.approx(5.0, abs=0.1)
