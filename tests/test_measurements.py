"""Per-second measurements (for the analytics store) follow what is on screen and on air."""

from __future__ import annotations

import pytest

from media import frame, make_clip, sample
from streamqc.pipeline import DetectorChain
from streamqc.sources import open_media
from streamqc.synth.defects import Black, Freeze, Silence


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """One merged measurement row per second of a real clip, as the live runner takes them."""
    clip = make_clip(tmp_path_factory.mktemp("measure") / "clip.ts", seconds=12.0, defects=[
        Freeze(frame(2.0), frame(5.0)), Black(frame(7.0), frame(9.5)), Silence(sample(3.0), sample(6.5))])
    chain = DetectorChain.from_options()
    measuring = [d for d in chain.detectors if hasattr(d, "measure")]
    rows: dict[int, dict[str, float]] = {}
    with open_media(str(clip)) as reader:
        for buffer in reader:
            chain.feed(buffer)
            second = int(buffer.time)
            if second not in rows and buffer.time - second > 0.6:  # late in each second
                row: dict[str, float] = {}
                for detector in measuring:
                    row.update(detector.measure())
                rows[second] = row
    return rows


def test_motion_drops_to_zero_in_a_freeze_and_not_outside(rows):
    assert all(rows[s]["motion"] < 0.5 for s in (3, 4))
    assert all(rows[s]["motion"] > 1.0 for s in (1, 10))


def test_luma_mean_is_near_black_level_in_black_only(rows):
    assert all(rows[s]["luma_mean"] < 20 for s in (7, 8))
    assert all(rows[s]["luma_mean"] > 40 for s in (1, 10))


def test_audio_level_and_momentary_loudness_fall_in_silence(rows):
    for second in (4, 5):
        assert rows[second]["audio_level_dbfs"] < -60
        assert rows[second].get("momentary_lufs", -100.0) < -60  # absent in digital silence
    for second in (1, 9, 10):
        assert rows[second]["audio_level_dbfs"] > -40
        assert -40 < rows[second]["momentary_lufs"] < 0
