"""Small real clips for tests, made with the corpus generator's parts and encoded by FFmpeg."""

from __future__ import annotations

import pathlib
from fractions import Fraction
from typing import Sequence

import av
import numpy as np
from streamqc.synth.audio import programme
from streamqc.synth.content import Cadence, MovingObjects, TexturePan
from streamqc.synth.defects import Defect
from streamqc.synth.encode import AudioCodec, VideoCodec, encode_scenario
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

VIDEO_SPEC = VideoSpec(320, 180, Fraction(25))
AUDIO_SPEC = AudioSpec(48000, 2)


def make_clip(
    path: pathlib.Path,
    seconds: float = 8.0,
    defects: Sequence[Defect] = (),
    container: str = "ts",
    video: str | None = "h264",
    audio: str | None = "aac",
    content: str = "objects",
    spec: VideoSpec = VIDEO_SPEC,
    seed: int = 3,
    programme_kind: str = "music",
) -> pathlib.Path:
    if content == "night":
        picture = TexturePan(spec, seed, night=True)
    elif content == "pan":
        picture = TexturePan(spec, seed)
    elif content == "cadence":  # a pan with a duplicate every 5th frame (24 -> 30 fps style)
        picture = Cadence(TexturePan(spec, seed), every=5)
    elif content == "film50":  # 24 fps film at 50 fps: every picture twice, one in 12 three times
        picture = Cadence(TexturePan(spec, seed), every=25, new=12)
    elif content == "pulldown":  # 3:2 pulldown, 24 fps film at 60 fps
        picture = Cadence(TexturePan(spec, seed), every=5, new=2)
    else:
        picture = MovingObjects(spec, seed, grain_sigma=1.5)
    scenario = Scenario(
        video=picture if video else None,
        audio=programme(AUDIO_SPEC, seed, programme_kind) if audio else None,
        duration_s=seconds,
        defects=list(defects),
    )
    encode_scenario(
        scenario,
        path,
        container,
        VideoCodec(video, bitrate_bps=800_000) if video else None,
        AudioCodec(audio) if audio else None,
    )
    return path


def frame(seconds: float, spec: VideoSpec = VIDEO_SPEC) -> int:
    return spec.index_at(seconds)


def sample(seconds: float) -> int:
    return AUDIO_SPEC.sample_at(seconds)


def garbled(packet: av.Packet, rng: np.random.Generator) -> av.Packet:
    """Random bytes of `packet`'s size and timing: a packet damaged in transit, which the
    decoder rejects."""
    return _timed_like(packet, rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())


def smeared(packet: av.Packet, rng: np.random.Generator) -> av.Packet:
    """`packet` with all but its first tenth overwritten by random bytes: the decoder keeps
    the slice's start and conceals the rest (a smear of wrong blocks), as after bit errors."""
    data = bytearray(bytes(packet))
    keep = max(16, len(data) // 10)
    data[keep:] = rng.integers(0, 256, len(data) - keep, dtype=np.uint8).tobytes()
    damaged = _timed_like(packet, bytes(data))
    damaged.is_keyframe = packet.is_keyframe
    return damaged


def _timed_like(packet: av.Packet, data: bytes) -> av.Packet:
    """A packet of `data` with `packet`'s timestamps."""
    copy = av.Packet(data)
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    return copy
