"""audio.click: isolated clicks found in encoded programme; percussive and dense transients left alone."""

from __future__ import annotations

import av
import numpy as np
import pytest

from streamqc.check import check_input
from streamqc.detectors.click import ClickDetector, ClickOptions
from streamqc.media import AudioChunk
from streamqc.sources import SourceOptions, open_media
from streamqc.synth.defects import Clicks

from media import make_clip, sample

CLICK_TIMES = (1.3, 2.6, 3.9, 5.2)


def click_events(path, **options) -> list:
    result = check_input(str(path), options={"click": options} if options else None)
    return [e for e in result.events if e.kind == "audio.click"]


@pytest.mark.parametrize(
    ("programme", "codec", "container"),
    [("music", "aac", "ts"), ("speech", "ac3", "mkv"), ("noise", "mp2", "ts")],
)
def test_each_injected_click_is_one_event_at_its_time(tmp_path, programme, codec, container):
    """Impulses and short steps (Clicks draws both), through three lossy codecs, in three programmes."""
    clicks = Clicks([sample(t) for t in CLICK_TIMES], amplitude=0.8, seed=11)
    clip = make_clip(tmp_path / f"clicks.{container}", seconds=6.5, defects=[clicks], audio=codec,
                     container=container, programme_kind=programme, video=None)
    events = click_events(clip)
    assert [round(e.start, 1) for e in events] == pytest.approx(list(CLICK_TIMES), abs=0.1)
    for event in events:
        assert event.details["channels"] == [0, 1]  # the injected click is in both channels
        assert event.details["peak_dbfs"] > -10
        assert event.end - event.start < 0.02
        assert event.severity.value in ("minor", "major")


def test_clean_programme_has_no_click(tmp_path):
    for programme in ("music", "speech", "noise"):
        clip = make_clip(tmp_path / f"{programme}.ts", seconds=6.0, programme_kind=programme, video=None)
        assert click_events(clip) == [], programme


def test_a_dense_crackle_is_texture_not_clicks(tmp_path):
    """Twenty impulses in 0.4 s (crackle, crunching): none of them is isolated."""
    crackle = Clicks([sample(2.0 + 0.02 * k) for k in range(20)], amplitude=0.8, seed=4)
    clip = make_clip(tmp_path / "crackle.ts", seconds=5.0, defects=[crackle], video=None)
    assert click_events(clip) == []


def test_quiet_ticks_below_the_floor_are_not_reported(tmp_path):
    clicks = Clicks([sample(t) for t in CLICK_TIMES], amplitude=0.8, seed=11)
    clip = make_clip(tmp_path / "clicks.ts", seconds=6.5, defects=[clicks], video=None)
    assert len(click_events(clip)) == 4
    assert click_events(clip, min_peak_dbfs=0.0) == []  # no decoded click reaches 0 dBFS


def test_events_do_not_depend_on_how_the_audio_is_chunked(tmp_path):
    clicks = Clicks([sample(t) for t in CLICK_TIMES], amplitude=0.8, seed=11)
    clip = make_clip(tmp_path / "clicks.ts", seconds=6.5, defects=[clicks], video=None)
    chunks = [b for b in open_media(str(clip), SourceOptions(video=False)) if isinstance(b, AudioChunk)]
    samples = np.concatenate([c.samples for c in chunks])
    first = chunks[0]
    found = []
    for size in (4800, 1024, 7777):
        detector = ClickDetector(ClickOptions())
        events = []
        for at in range(0, samples.shape[0], size):
            part = np.asfortranarray(samples[at : at + size])  # channel-major, like the reader's
            events += detector.feed(AudioChunk(first.time + at / first.sample_rate, part, first.sample_rate, first.format))
        events += detector.finish(first.time + samples.shape[0] / first.sample_rate)
        found.append([(round(e.start, 3), e.details["channels"]) for e in events])
    assert found[0] == found[1] == found[2]
    assert len(found[0]) == 4


def _with_clicks(source, out, times, seed):
    """The real recording `source`, resampled to 48 kHz stereo, with impulses and short
    steps (0.5-0.9 of full scale) added at `times`, encoded to AAC by PyAV."""
    chunks = [b for b in open_media(str(source), SourceOptions(video=False)) if isinstance(b, AudioChunk)]
    mono = np.concatenate([c.samples.mean(axis=1) for c in chunks]).astype(np.float64)
    rate = chunks[0].sample_rate
    x = np.interp(np.arange(int(len(mono) * 48000 / rate)) * rate / 48000, np.arange(len(mono)), mono)
    x *= 10 ** (-23 / 20) / np.sqrt(np.mean(np.square(x)))  # programme at about -23 dBFS RMS
    rng = np.random.default_rng(seed)
    for k, t in enumerate(times):
        at, amplitude = int(t * 48000), float(rng.uniform(0.5, 0.9)) * float(rng.choice([-1, 1]))
        if k % 2:
            x[at : at + int(rng.uniform(0.001, 0.003) * 48000)] += amplitude
        else:
            x[at] = amplitude
    stereo = np.clip(np.stack((x, x)), -1, 1).astype(np.float32)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="stereo")
        for at in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, at : at + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, at
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


@pytest.mark.parametrize("recording", ["whisper/jfk.flac", "librosa-data/5703-47212-0000.ogg"])
def test_clicks_inside_real_speech_are_found(shared_media, tmp_path, recording):
    """Inside speech a click is no louder than the words around it; the error of a
    short-term predictor of the speech finds it, and the speech itself raises nothing."""
    times = [1.5, 3.1, 4.7, 6.3, 7.9, 9.5]
    clip = _with_clicks(shared_media / recording, tmp_path / "speech-clicks.m4a", times, seed=5)
    events = click_events(clip)
    found = [t for t in times if any(abs(e.start - t) < 0.1 for e in events)]
    assert len(found) >= len(times) - 1, (found, events)
    assert all(any(abs(e.start - t) < 0.1 for t in times) for e in events), events


def test_percussion_with_a_body_is_not_a_click(tmp_path):
    """Knocks (an onset ringing on for 40 ms) a second apart over a quiet bed: each stands
    far out of the bed, but it is followed by its own sound; no click."""
    rate = 48000
    t = np.arange(int(0.15 * rate)) / rate
    rng = np.random.default_rng(2)
    knock = np.sin(2 * np.pi * 700 * t) * np.exp(-t / 0.04) + rng.standard_normal(t.size) * np.exp(-t / 0.004) * 0.3
    x = rng.standard_normal(6 * rate) * 0.003
    for start in np.arange(0.7, 5.5, 1.1):
        at = int(start * rate)
        x[at : at + knock.size] += 0.5 * knock
    stereo = np.stack((x, x)).astype(np.float32)
    out = tmp_path / "knocks.m4a"
    with av.open(str(out), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout="stereo")
        for at in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, at : at + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, at
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert click_events(out) == []
