"""The media clock: one continuous time line across wraps and jumps, shared by the tracks."""

import pytest

from streamqc.sources.timeline import WRAP_33_BIT_S, Timeline


def place_run(timeline, key, raws, step):
    return [timeline.place(key, key, raw, step) for raw in raws]


def test_steady_timestamps_pass_through():
    timeline = Timeline()
    placed = place_run(timeline, "video", [10.0 + i * 0.04 for i in range(50)], 0.04)
    assert [t for t, _ in placed] == pytest.approx([10.0 + i * 0.04 for i in range(50)])
    assert all(jump is None for _, jump in placed)


def test_33_bit_wrap_inside_a_track_is_silent():
    timeline = Timeline()
    raws = [WRAP_33_BIT_S - 0.2 + i * 0.04 for i in range(10)]
    raws = [r - WRAP_33_BIT_S if r >= WRAP_33_BIT_S else r for r in raws]  # what the demuxer reports
    placed = place_run(timeline, "video", raws, 0.04)
    times = [t for t, _ in placed]
    assert all(b - a == pytest.approx(0.04) for a, b in zip(times, times[1:]))
    assert all(jump is None for _, jump in placed)


def test_track_starting_across_the_wrap_joins_the_other():
    timeline = Timeline()
    video, _ = timeline.place("video", "video", 1.4, 0.04)
    audio, _ = timeline.place("audio", "audio", WRAP_33_BIT_S - 0.0213 + 1.4, 0.021)
    assert audio == pytest.approx(video - 0.0213)


def test_jump_is_folded_out_and_reported_once_for_both_tracks():
    timeline = Timeline()
    for i in range(25):
        timeline.place("video", "video", i * 0.04, 0.04)
        timeline.place("audio", "audio", i * 0.04, 0.04)
    video_time, video_jump = timeline.place("video", "video", 100.0, 0.04)
    audio_time, audio_jump = timeline.place("audio", "audio", 100.0, 0.04)
    assert video_time == pytest.approx(1.0) and audio_time == pytest.approx(1.0)
    assert video_jump.raw_delta_s == pytest.approx(99.0) and video_jump.new_report
    assert audio_jump is not None and not audio_jump.new_report


def test_backward_jump_keeps_time_moving_forward():
    timeline = Timeline()
    place_run(timeline, "video", [50.0 + i * 0.04 for i in range(10)], 0.04)
    time, jump = timeline.place("video", "video", 3.0, 0.04)
    assert time == pytest.approx(50.4) and jump.raw_delta_s < 0
