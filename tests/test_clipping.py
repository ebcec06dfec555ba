"""audio.clipping: sustained full-scale runs, per channel, on encoded files and real clips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from streamqc.check import check_input
from streamqc.detectors.clipping import ClippingDetector, ClippingOptions
from streamqc.media import AudioChunk, AudioFormat

from test_loudness import programme_at, write_audio


def clipping_events(path, **options) -> list:
    result = check_input(str(path), options={"clipping": options} if options else None)
    return [e for e in result.events if e.kind == "audio.clipping"]


def driven_sine(seconds: float, drive: float = 2.0, freq: float = 1000.0, rate: int = 48000) -> np.ndarray:
    """A sine `drive` times full scale, hard-clipped at ±1: flat tops a third of each cycle."""
    t = np.arange(int(seconds * rate)) / rate
    return np.clip(drive * np.sin(2 * np.pi * freq * t), -1.0, 1.0).astype(np.float32)


def test_clipped_second_inside_programme_is_one_event(tmp_path):
    samples = programme_at(-20, 6)
    samples[96000:144000, 0] = driven_sine(1.0)  # channel 0 (left) clips from 2.0 to 3.0 s
    path = write_audio(tmp_path / "clipped.wav", samples, codec="pcm_s16le")
    (event,) = clipping_events(path)
    assert event.start == pytest.approx(2.0, abs=0.1) and event.end == pytest.approx(3.0, abs=0.1)
    assert event.details["channel"] == 0
    assert event.details["runs"] >= 1000  # both crests of 1000 cycles
    assert event.details["longest_run_samples"] >= 14  # a third of a 48-sample cycle
    assert event.severity.value == "major"


def test_clipping_survives_a_lossy_codec(tmp_path):
    """Through MP2 (as broadcast TS carries it) the flat tops ripple around full scale; the
    runs are still found. (FFmpeg's AAC encoder brings this signal's tops down to about
    0.93: clipping that a codec has lowered no longer reaches full scale, and is not
    this detector's to find.)"""
    samples = programme_at(-20, 6)
    samples[96000:144000] = driven_sine(1.0)[:, None]
    events = clipping_events(write_audio(tmp_path / "clipped.ts", samples, codec="mp2"))
    assert [e.details["channel"] for e in events] == [0, 1]  # one event per clipped channel
    for event in events:
        assert event.start == pytest.approx(2.0, abs=0.1) and event.end == pytest.approx(3.0, abs=0.1)


def test_each_channel_clipped_on_its_own_is_its_own_event(tmp_path):
    """Left clips 1.0-2.0 s, right 3.0-4.0 s: two events, each naming its channel and time."""
    samples = programme_at(-20, 6)
    samples[48000:96000, 0] = driven_sine(1.0)
    samples[144000:192000, 1] = driven_sine(1.0)
    events = clipping_events(write_audio(tmp_path / "sides.wav", samples, codec="pcm_s16le"))
    assert [(e.details["channel"], round(e.start), round(e.end)) for e in events] == [(0, 1, 2), (1, 3, 4)]


def test_loud_master_touching_full_scale_is_not_clipping(tmp_path):
    """Normalised to a 0 dBFS peak: single samples (and pairs) at full scale, no flat tops."""
    samples = programme_at(-14, 8)
    samples /= np.abs(samples).max()
    crests, _ = find_peaks(np.abs(samples[:, 1]), distance=2400)
    loudest = crests[np.argsort(np.abs(samples[crests, 1]))[-5:]]  # five more crests reach full scale, one sample each
    samples[loudest, 1] = np.sign(samples[loudest, 1])
    path = write_audio(tmp_path / "loud.wav", samples, codec="pcm_s16le")
    assert clipping_events(path) == []


def test_runs_across_chunk_boundaries_count_once():
    """A 40-sample run split over three chunks is one run of 40, whatever the chunking."""
    samples = np.zeros((4800, 2), np.float32)
    samples[1000:1040, 1] = 1.0
    samples[3000:3002, 0] = -1.0  # too short to count
    fmt = AudioFormat(48000, 2, "stereo")
    for sizes in ((4800,), (1010, 20, 3770), (1, 999, 7, 33, 3760)):
        detector = ClippingDetector(ClippingOptions())
        events, start = [], 0
        for size in sizes:
            events += detector.feed(AudioChunk(start / 48000, samples[start : start + size], 48000, fmt))
            start += size
        events += detector.finish(0.1)
        (event,) = events
        assert event.details == {
            "channel": 1,
            "runs": 1,
            "longest_run_samples": 40,
            "longest_run_ms": 0.83,
            "clipped_samples": 40,
            "clipped_fraction": round(40 / 48000, 5),
            "level_dbfs": -0.01,
        }
        assert event.start == pytest.approx(1000 / 48000) and event.end == pytest.approx(1040 / 48000)


def test_bursts_further_apart_than_the_merge_gap_are_separate():
    samples = np.zeros((144000, 1), np.float32)
    for at in (4800, 9600, 96000):  # 0.1 s and 0.2 s: one burst; 2.0 s: another
        samples[at : at + 5] = 1.0
    detector = ClippingDetector(ClippingOptions())
    fmt = AudioFormat(48000, 1, "mono")
    events = []
    for start in range(0, 144000, 5120):
        events += detector.feed(AudioChunk(start / 48000, samples[start : start + 5120], 48000, fmt))
    events += detector.finish(3.0)
    assert [(round(e.start, 2), e.details["runs"]) for e in events] == [(0.1, 2), (2.0, 1)]


def test_broken_mp2_frames_of_a_real_capture(shared_media):
    """tsduck-test/test-143.ts: a satellite capture with real transport errors. Its MP2
    audio decodes with bursts of full-scale noise where frames were damaged: 253 samples
    at ±1.0 in 0.5 s, nearly all single samples or pairs, and six runs of 4 samples (two
    channels). The decoded sound really does hit the rails for several samples in a row,
    so this is reported, as one minor event per channel (few runs, 83 µs at most); the cause (the
    damaged packets) is what the decode-error and TS events name; a few runs are no
    sustained clipping, so they are info notes. The audio precedes the first picture
    by 1.4 s, so the event sits at 0 on the media clock."""
    result = check_input(str(shared_media / "tsduck-test/test-143.ts"))
    events = sorted((e for e in result.events if e.kind == "audio.clipping"), key=lambda e: e.details["channel"])
    assert [(e.details["channel"], e.details["runs"], e.details["longest_run_samples"]) for e in events] == [
        (0, 2, 4), (1, 4, 4)]
    assert all(e.severity.value == "info" and e.start == 0.0 for e in events)


def severe(events: list) -> list:
    return [e for e in events if e.severity.value != "info"]


@pytest.mark.parametrize("clip", [
    "real-clean/mediaelement-files/echo-hereweare.webm",  # -7.8 LUFS, 9150 full-scale samples
    "real-clean/essentia-audio/cat_purrrr.wav",  # close-miked, 113 full-scale samples
    "real-clean/spleeter/audio_example.mp3",  # -9.3 LUFS pop, 12 full-scale samples
    "real-clean/essentia-audio/dubstep.flac",  # -10.1 LUFS, true peak +1.3 dBTP
])
def test_hot_real_masters_are_not_clipping(shared_media, clip):
    """Clean loud records that touch full scale in short runs (0.1-0.2 % of their samples
    at most): at most an info note saying so, never an event an operator is paged for."""
    assert severe(clipping_events(shared_media / clip)) == []


def test_real_distorted_recording_is_clipping(shared_media):
    """essentia's distorted.wav, the input of its own clipping QA: hard-clipped throughout
    (14 % of the samples in flat runs), one major event per channel over the music."""
    events = severe(clipping_events(shared_media / "real-defects/essentia-distorted.wav"))
    assert sorted(e.details["channel"] for e in events) == [0, 1]
    assert all(e.severity.value == "major" and e.end - e.start > 7 for e in events)
