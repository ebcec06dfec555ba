"""The built-in example: a short programme with known defects, made by the corpus generator."""

from __future__ import annotations

import pathlib
from fractions import Fraction
from typing import Any

from streamqc.synth.audio import programme
from streamqc.synth.content import MovingObjects
from streamqc.synth.defects import Black, Dropout, Freeze, Silence
from streamqc.synth.encode import AudioCodec, VideoCodec, encode_scenario
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

DEMO_SECONDS = 18.0


def write_demo_clip(folder: pathlib.Path) -> tuple[pathlib.Path, list[dict[str, Any]]]:
    """Encode the example (H.264 + AAC in MPEG-TS, 640x360 at 25 fps); return it and its labels."""
    video = VideoSpec(640, 360, Fraction(25))
    audio = AudioSpec(48000, 2)
    defects = [
        Freeze(video.index_at(3.0), video.index_at(6.0), noise_sigma=2.0, seed=7),
        Black(video.index_at(8.0), video.index_at(10.5), logo_area=0.03, seed=7),
        Silence(audio.sample_at(12.0), audio.sample_at(14.5)),
        Dropout(audio.sample_at(16.0), audio.sample_at(16.3)),
    ]
    scenario = Scenario(MovingObjects(video, seed=7, grain_sigma=1.5), programme(audio, 7, "music"), DEMO_SECONDS, defects)
    path = folder / "streamqc-demo.ts"
    encode_scenario(scenario, path, "ts", VideoCodec("h264", bitrate_bps=1_500_000), AudioCodec("aac"))
    labels = [label.to_json() for label in scenario.annotations().labels]
    return path, labels
