"""audio.clipping: sustained full-scale runs, per channel, on encoded files and real clips."""

from __future__ import annotations

import av
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
    runs are still found."""
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
        detector = ClippingDetector(ClippingOptions(min_runs=1))
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
            "flat_crests": 0,
            "level_dbfs": -0.01,
        }
        assert event.start == pytest.approx(1000 / 48000) and event.end == pytest.approx(1040 / 48000)


def test_bursts_further_apart_than_the_merge_gap_are_separate():
    samples = np.zeros((144000, 1), np.float32)
    for at in (4800, 9600, 96000):  # 0.1 s and 0.2 s: one burst; 2.0 s: another
        samples[at : at + 5] = 1.0
    fmt = AudioFormat(48000, 1, "mono")

    def bursts(options: ClippingOptions) -> list:
        detector = ClippingDetector(options)
        events = []
        for start in range(0, 144000, 5120):
            events += detector.feed(AudioChunk(start / 48000, samples[start : start + 5120], 48000, fmt))
        events += detector.finish(3.0)
        return [(round(e.start, 2), e.details["runs"]) for e in events]

    assert bursts(ClippingOptions(min_runs=1)) == [(0.1, 2), (2.0, 1)]
    # by default a pop or two reaching full scale is no clipped passage (a click's)
    assert bursts(ClippingOptions()) == []


def test_broken_mp2_frames_of_a_real_capture(shared_media):
    """tsduck-test/test-143.ts: a satellite capture with real transport errors. Its MP2
    audio decodes with bursts of full-scale noise where frames were damaged: 253 samples
    at ±1.0 in 0.5 s, nearly all single samples or pairs, and six runs of 4 samples (two
    channels). The decoded sound really does hit the rails for several samples in a row,
    so it is noted; the cause (the damaged packets) is what the decode-error and TS
    events name, and a few runs are no sustained clipping: the channel with 4 runs gets
    an info note, the one with 2 (pops) nothing. The audio precedes the first picture
    by 1.4 s, so the note sits at 0 on the media clock."""
    result = check_input(str(shared_media / "tsduck-test/test-143.ts"))
    events = sorted((e for e in result.events if e.kind == "audio.clipping"), key=lambda e: e.details["channel"])
    assert [(e.details["channel"], e.details["runs"], e.details["longest_run_samples"]) for e in events] == [(1, 4, 4)]
    assert all(e.severity.value == "info" and e.start == 0.0 for e in events)


def severe(events: list) -> list:
    return [e for e in events if e.severity.value != "info"]


@pytest.mark.parametrize("clip", [
    "real-clean/mediaelement-files/echo-hereweare.webm",  # -7.8 LUFS, 9150 full-scale samples
    "real-clean/essentia-audio/cat_purrrr.wav",  # close-miked, 113 full-scale samples
    "real-clean/spleeter/audio_example.mp3",  # -9.3 LUFS pop, 12 full-scale samples
    "real-clean/essentia-audio/dubstep.flac",  # -10.1 LUFS, true peak +1.3 dBTP, flat-topped synth at 0.88
    "moviepy/rain.mp3",  # MP3 of rain: the most flat crests in a second of any clean clip (9)
])
def test_hot_real_masters_are_not_clipping(shared_media, clip):
    """Clean loud records that touch full scale in short runs (0.1-0.2 % of their samples
    at most), and whose flat crests are few (9 in a second at most): at most an info note
    saying so, never an event an operator is paged for."""
    assert severe(clipping_events(shared_media / clip)) == []


def test_real_distorted_recording_is_clipping(shared_media):
    """essentia's distorted.wav, the input of its own clipping QA: hard-clipped throughout
    (14 % of the samples in flat runs), one major event per channel over the music."""
    events = severe(clipping_events(shared_media / "real-defects/essentia-distorted.wav"))
    assert sorted(e.details["channel"] for e in events) == [0, 1]
    assert all(e.severity.value == "major" and e.end - e.start > 7 for e in events)


def decoded_48k(path) -> np.ndarray:
    """Every sample of the first audio track, as FFmpeg's resampler gives it: float (n, 2) at 48 kHz."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
    with av.open(str(path)) as container:
        blocks = [out.to_ndarray() for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    blocks += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(blocks, axis=1).T.astype(np.float32)


def clipped_real(shared_media, clip: str, gain_db: float, start_s: float, seconds: float) -> np.ndarray:
    """A real recording with `seconds` from `start_s` driven `gain_db` up and hard-clipped
    at full scale, the rest left as it was."""
    samples = decoded_48k(shared_media / clip)
    a, b = int(start_s * 48000), int((start_s + seconds) * 48000)
    samples[a:b] = np.clip(samples[a:b] * np.float32(10 ** (gain_db / 20)), -1.0, 1.0)
    return samples


@pytest.mark.parametrize("bit_rate", [128000, 192000])
def test_clipped_speech_through_aac_is_found(shared_media, tmp_path, bit_rate):
    """Real speech (JFK's address, as whisper ships it) clipped by 9 dB for 2 s (3.7 % of
    those samples on the rails), then coded with FFmpeg's AAC: the decoder gives the tops
    back below full scale with the codec's ripple, no run at full scale to speak of, yet
    the passage is a major clipping event in each channel, over the clipped seconds."""
    samples = clipped_real(shared_media, "whisper/jfk.flac", 9.0, 5.25, 2.0)
    events = severe(clipping_events(write_audio(tmp_path / "speech.m4a", samples, codec="aac", bit_rate=bit_rate)))
    assert sorted(e.details["channel"] for e in events) == [0, 1]
    for event in events:
        assert event.severity.value == "major" and event.details["flat_crests"] > 0
        assert event.start == pytest.approx(5.25, abs=0.5) and event.end == pytest.approx(7.25, abs=0.5)


def test_limited_hot_speech_through_aac_is_not_clipping(shared_media, tmp_path):
    """The same speech pushed 12 dB into a look-ahead limiter (gain riding 5 ms envelopes
    to a 0.98 ceiling), as a loud master is made, then AAC: its peaks crowd the ceiling
    but stay rounded, so nothing of severity minor or above."""
    rate = 48000
    hot = decoded_48k(shared_media / "whisper/jfk.flac") * np.float32(10 ** (12 / 20))
    width = int(0.005 * rate) * 2 + 1
    envelope = np.abs(hot).max(axis=1)
    envelope = np.lib.stride_tricks.sliding_window_view(np.pad(envelope, width // 2, mode="edge"), width).max(axis=1)
    gain = np.minimum(1.0, 0.98 / np.maximum(envelope, 1e-9))
    gain = np.lib.stride_tricks.sliding_window_view(np.pad(gain, width // 2, mode="edge"), width).min(axis=1)
    gain = np.convolve(gain, np.ones(width) / width, mode="same")  # a smooth gain: the crest keeps its shape
    hot = np.clip(hot * gain[:, None], -1.0, 1.0).astype(np.float32)
    for bit_rate in (128000, 192000):
        assert severe(clipping_events(write_audio(tmp_path / "hot.m4a", hot, codec="aac", bit_rate=bit_rate))) == []


def test_flat_crests_count_the_same_whatever_the_chunking():
    """Tops lowered to 0.93 with a ripple (as a codec gives them back): flat crests, no
    full-scale run. Half-cycles cut by chunk boundaries are carried, so the event and its
    count of flat crests do not depend on how the audio was cut into chunks."""
    rate = 48000
    t = np.arange(3 * rate) / rate
    tone = np.clip(3.0 * np.sin(2 * np.pi * 150 * t), -1.0, 1.0) * 0.93 + 0.01 * np.sin(2 * np.pi * 15000 * t)
    samples = np.zeros((4 * rate, 1), np.float32)
    samples[rate // 2 : rate // 2 + tone.size, 0] = tone
    fmt = AudioFormat(rate, 1, "mono")
    found = []
    for sizes in ((samples.shape[0],), (1000, 1023, 4096) * 200, (1, 4800) * 100):
        detector = ClippingDetector(ClippingOptions())
        events, start = [], 0
        for size in sizes:
            if start >= samples.shape[0]:
                break
            events += detector.feed(AudioChunk(start / rate, samples[start : start + size], rate, fmt))
            start += size
        events += detector.finish(4.0)
        (event,) = events
        assert event.severity.value == "major" and event.details["runs"] == 0
        assert event.start == pytest.approx(0.5, abs=0.01) and event.end == pytest.approx(3.5, abs=0.01)
        found.append(event.details["flat_crests"])
    assert found[0] == pytest.approx(900, abs=2) and len(set(found)) == 1
