"""video.freeze on real footage re-timed the way real feeds are: a freeze is video that
moved and stopped, judged against the stream's own cadence; slow change is motion."""

from __future__ import annotations

import pathlib
from fractions import Fraction

import av
import numpy as np
import pytest

from streamqc.check import check_input

WIDTH, HEIGHT = 360, 240


def real_pictures(clip: pathlib.Path, count: int) -> list[np.ndarray]:
    """The first `count` pictures of a real clip as yuv420p arrays, scaled down."""
    pictures = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            pictures.append(frame.reformat(WIDTH, HEIGHT, "yuv420p").to_ndarray())
            if len(pictures) == count:
                break
    assert len(pictures) == count, f"{clip} has fewer than {count} pictures"
    return pictures


def encode(path: pathlib.Path, pictures: list[np.ndarray], fps: int) -> pathlib.Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        ctx = stream.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.options = {"preset": "ultrafast", "crf": "20"}
        for n, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def noisy(picture: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """The same picture with fresh noise on its luma (a held picture on a noisy link)."""
    out = picture.copy()
    luma = out[:HEIGHT]
    luma[:] = np.clip(luma + rng.normal(0.0, sigma, luma.shape), 0, 255).astype(np.uint8)
    return out


def brighter(picture: np.ndarray, levels: float) -> np.ndarray:
    out = picture.copy()
    out[:HEIGHT] = np.clip(out[:HEIGHT].astype(np.float32) + levels, 0, 255).astype(np.uint8)
    return out


def freezes(path: pathlib.Path) -> list[tuple[float, float]]:
    result = check_input(str(path), options={name: {"enabled": False} for name in ("av_sync", "stutter")})
    return [(e.start, e.end) for e in result.events if e.kind == "video.freeze"]


@pytest.fixture(scope="module")
def handheld(shared_media: pathlib.Path) -> list[np.ndarray]:
    """8 s of a handheld phone shot at 30 fps (every picture moves)."""
    return real_pictures(shared_media / "real-clean/mdn-learning-area/elf.mp4", 240)


def test_low_frame_rate_camera_is_not_frozen_but_its_stop_is(tmp_path, handheld):
    # A 15 fps file from a camera that delivers a new picture every 0.4 s: each one is
    # held for 6 frames. Its held frames are its cadence, not a freeze.
    camera = [handheld[int(n / 15 / 0.4) * 12] for n in range(15 * 8)]
    assert freezes(encode(tmp_path / "camera.mp4", camera, 15)) == []
    # The same camera stops delivering for 3 s after 4 s: that is a freeze.
    stopped = camera[:60] + [camera[59]] * 45 + camera[60:]
    (freeze,) = freezes(encode(tmp_path / "stopped.mp4", stopped, 15))
    # The last new picture came at 3.6 s (the stop shows from there on).
    assert freeze[0] == pytest.approx(3.6, abs=0.15) and freeze[1] == pytest.approx(7.0, abs=0.15)


def test_held_picture_with_fresh_noise_is_a_freeze(tmp_path, handheld):
    rng = np.random.default_rng(5)
    held = [noisy(handheld[89], rng, 1.5) for _ in range(90)]
    (freeze,) = freezes(encode(tmp_path / "noisy.mp4", handheld[:90] + held + handheld[90:150], 30))
    assert freeze[0] == pytest.approx(3.0, abs=0.1) and freeze[1] == pytest.approx(6.0, abs=0.1)


def test_slow_change_of_light_is_motion(tmp_path, handheld):
    # The same picture held 3 s while the light on it rises by 1.5 levels a second (0.05
    # a frame: nothing visible from one frame to the next; an exposure settling).
    rising = [brighter(handheld[89], 1.5 * n / 30) for n in range(90)]
    assert freezes(encode(tmp_path / "rising.mp4", handheld[:90] + rising + handheld[90:150], 30)) == []


def test_a_stream_that_stands_still_as_its_way_is_judged_by_its_own_stills(tmp_path, handheld):
    # A still shot opens the stream (4 s): nothing has moved yet, so it is the stream's
    # way, not a freeze. After 2 s of motion, a 5 s still is only as long as stills this
    # stream shows; a 9 s one is more than twice as long, and is reported.
    opening = [handheld[0]] * 120
    moving = handheld[:60]
    short = opening + moving + [handheld[59]] * 150 + handheld[60:120]
    assert freezes(encode(tmp_path / "short.mp4", short, 30)) == []
    long = opening + moving + [handheld[59]] * 270 + handheld[60:120]
    (freeze,) = freezes(encode(tmp_path / "long.mp4", long, 30))
    assert freeze[0] == pytest.approx(6.0, abs=0.1) and freeze[1] == pytest.approx(15.0, abs=0.1)


@pytest.fixture(scope="module")
def car_park(shared_media: pathlib.Path) -> list[np.ndarray]:
    """10 s of a fixed camera on an empty car park at 12.5 fps: still, but live (sensor noise)."""
    return real_pictures(shared_media / "real-clean/intel-sample-videos/car-detection.mp4", 120)


def freezes_with(path: pathlib.Path, **freeze_options: float) -> list[tuple[float, float]]:
    options = {name: {"enabled": False} for name in ("av_sync", "stutter")}
    options["freeze"] = dict(freeze_options)
    result = check_input(str(path), options=options)
    return [(e.start, e.end) for e in result.events if e.kind == "video.freeze"]


def test_a_live_still_scene_that_stops_being_live_is_a_freeze(tmp_path, car_park):
    # The car park as the camera saw it, 12 pictures a second: nothing moves, only its
    # sensor noise. That is its way, not a freeze.
    assert freezes(encode(tmp_path / "live.mp4", car_park, 12)) == []
    # The same feed where one picture is held exactly for 4 s after 3 s of it: the noise
    # stops, although nothing had moved before. A freeze, where the cadence alone waits.
    held = car_park[:36] + [car_park[35]] * 48 + car_park[36:84]
    path = encode(tmp_path / "held.mp4", held, 12)
    (freeze,) = freezes(path)
    assert freeze[0] == pytest.approx(3.0, abs=0.35) and freeze[1] == pytest.approx(7.0, abs=0.2)
    # Without following the noise, the cadence would not report it yet (the stream has
    # not moved: 30 s).
    assert freezes_with(path, frozen_noise_ratio=0.0) == []
