"""video.corruption on real encodes: packet damage, damage baked into a valid bitstream,
and a clean low-bitrate encode that must stay quiet."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamqc.check import check_input
from streamqc.detectors.corruption import CorruptionDetector
from streamqc.media import VideoFrame
from streamqc.sources import open_media
from streamqc.synth import content as ct
from streamqc.synth import damage, verify
from streamqc.synth.encode import EncoderSink, VideoCodec, encode_scenario
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import VideoSpec

SPEC = VideoSpec(320, 176, Fraction(25))  # 20 x 11 macroblocks
SECONDS = 5.0


def corruption_events(path: Path) -> list:
    return [e for e in check_input(str(path), options={"freeze": {"enabled": False}}).events
            if e.kind == "video.corruption"]


def _pictures(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corruption") / "clean.ts"
    scenario = Scenario(ct.TexturePan(SPEC, 5, speed_px_s=90.0), None, SECONDS)
    encode_scenario(scenario, path, "ts", VideoCodec("h264", bitrate_bps=700_000, gop_frames=50), None)
    return path


def test_baked_block_damage_is_found_with_its_area(clean: Path, tmp_path: Path) -> None:
    """Macroblocks replaced by macroblocks from elsewhere (what a desynchronised decoder
    paints), re-encoded cleanly: no decoder complains, the pixels carry it."""
    pictures = _pictures(clean)
    rng = np.random.default_rng(4)
    first, last = 50, 60  # frames 2.0-2.4 s
    rows = range(3, 8)  # 5 of 11 macroblock rows, full width: 100 of 220 blocks
    baked = tmp_path / "baked.ts"
    sink = EncoderSink(baked, "ts", (SPEC, VideoCodec("h264", bitrate_bps=700_000, gop_frames=50)), None)
    height, width = SPEC.height, SPEC.width
    for i, pic in enumerate(pictures):
        pic = pic.copy()
        if first <= i < last:
            luma = pic[:height]
            source = pictures[i - 20][:height]
            for r in rows:
                for c in range(width // 16):
                    sr, sc = int(rng.integers(0, height // 16)), int(rng.integers(0, width // 16))
                    luma[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = source[sr * 16:(sr + 1) * 16, sc * 16:(sc + 1) * 16]
        sink.write_video(i, pic)
    sink.close()
    with open_media(str(baked)) as reader:
        assert not any(b.corrupt for b in reader if isinstance(b, VideoFrame))  # a valid bitstream
    events = corruption_events(baked)
    assert len(events) == 1, events
    event = events[0]
    # found within one analysis interval (6 pictures a second) of the first broken picture
    assert -0.01 <= event.start - first / 25 <= 1 / 6 + 1 / 25 and event.end <= last / 25 + 0.6
    assert event.details["evidence"] == "pixels"
    assert abs(event.details["area"] - 100 / 220) <= 0.1
    x0, y0, x1, y1 = event.details["box"]
    assert x0 <= 0.1 and x1 >= 0.9 and abs(y0 - 3 / 11) <= 0.1 and abs(y1 - 8 / 11) <= 0.1


def test_lost_packets_are_found_where_labelled(clean: Path, tmp_path: Path) -> None:
    origin = verify.probe(clean).origin_s
    hits = [damage.Hit(1.5, "drop", 20), damage.Hit(3.5, "flip", 6)]
    data, _report = damage.damage_ts(clean.read_bytes(), hits, origin, seed=2)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data)
    labels = damage.corruption_annotations(damage.compare(clean, damaged, 25.0, int(SECONDS * 25)), 25.0).labels
    assert labels
    events = corruption_events(damaged)
    for label in labels:
        assert any(e.start <= label.end_s + 0.1 and label.start_s <= e.end + 0.1 for e in events), (label, events)
    assert all(any(e.start <= lab.end_s + 0.1 and lab.start_s <= e.end + 0.1 for lab in labels) for e in events)


def test_clean_low_bitrate_encodes_are_not_corruption(tmp_path: Path) -> None:
    """Coding blockiness of a starved encoder (H.264 and MPEG-2, no deblocking there)."""
    for codec, rate in (("h264", 60_000), ("mpeg2video", 150_000)):
        path = tmp_path / f"low-{codec}.ts"
        scenario = Scenario(ct.TexturePan(SPEC, 9, speed_px_s=120.0), None, SECONDS)
        encode_scenario(scenario, path, "ts", VideoCodec(codec, bitrate_bps=rate, gop_frames=25), None)
        assert corruption_events(path) == [], codec


def test_tiny_and_odd_pictures_do_not_break_it() -> None:
    detector = CorruptionDetector()
    fmt = type("F", (), {})()
    for shape in ((8, 8), (17, 33), (31, 16)):
        luma = np.full(shape, 128, np.uint8)
        frame = VideoFrame(0.0, 0.04, luma, 8, False, None, True, False)  # type: ignore[arg-type]
        assert detector.feed(frame) == []
    assert detector.finish(1.0) == []
