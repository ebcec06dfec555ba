"""audio.loudness: the BS.1770-4 meter against FFmpeg's ebur128 on real clips, EBU test
signals, and the detector end to end on encoded files."""

from __future__ import annotations

import json
import math
import pathlib

import av
import numpy as np
import pyloudnorm
import pytest
from av.filter import Graph
from typer.testing import CliRunner

from streamqc.check import check_input
from streamqc.cli import app
from streamqc.detectors.loudness import LoudnessDetector, LoudnessMeter, LoudnessOptions
from streamqc.errors import ConfigError
from streamqc.media import AudioChunk, AudioFormat
from streamqc.sources import SourceOptions, open_media
from streamqc.synth.audio import programme
from streamqc.synth.spec import AudioSpec

from conftest import media_dir

MEDIA_SUFFIXES = {".ts", ".mp4", ".webm", ".avi", ".mpg", ".wav", ".ogg", ".mp3", ".flac"}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def sine(
    freq: float,
    dbfs: float,
    seconds: float,
    rate: int = 48000,
    channels: int = 2,
    phase: float = 0.0,
    fade_s: float = 0.0,
) -> np.ndarray:
    """A sine of peak level `dbfs`; `fade_s` of raised-cosine fade at both ends (no step to ring)."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    if fade_s:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(int(fade_s * rate)) / int(fade_s * rate))
        wave[: ramp.size] *= ramp
        wave[-ramp.size :] *= ramp[::-1]
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def measure(samples: np.ndarray, rate: int = 48000, layout: str | None = None, chunk: int = 4800) -> LoudnessMeter:
    meter = LoudnessMeter(rate, samples.shape[1], layout)
    for i in range(0, samples.shape[0], chunk):
        meter.push(samples[i : i + chunk])
    meter.flush()
    return meter


def write_audio(path: pathlib.Path, samples: np.ndarray, rate: int = 48000, codec: str = "pcm_f32le",
                bit_rate: int | None = None) -> pathlib.Path:
    """Encode (n, channels) float samples with PyAV: WAV for PCM codecs, else by suffix;
    a lossy codec at `bit_rate` (b/s), or at FFmpeg's default for it."""
    layout = {1: "mono", 2: "stereo", 6: "5.1(side)"}[samples.shape[1]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        ctx = stream.codec_context
        if bit_rate is not None:
            ctx.bit_rate = bit_rate
        fmt = ctx.codec.audio_formats[0].name if codec != "aac" else "fltp"
        ctx.format = fmt
        step = 1024
        for i in range(0, samples.shape[0], step):
            block = samples[i : i + step]
            if fmt.startswith("s16"):
                block = np.clip(np.round(block * 32767), -32768, 32767).astype(np.int16)
            else:
                block = block.astype(np.float32)
            array = np.ascontiguousarray(block.T) if av.AudioFormat(fmt).is_planar else block.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def programme_at(lufs: float, seconds: float, seed: int = 5, kind: str = "music") -> np.ndarray:
    """Synthetic programme scaled with pyloudnorm (an independent BS.1770 meter) to `lufs`."""
    spec = AudioSpec(48000, 2)
    samples = programme(spec, seed, kind).render(0, int(seconds * spec.sample_rate)).astype(np.float64)
    measured = pyloudnorm.Meter(spec.sample_rate).integrated_loudness(samples)
    return (samples * 10 ** ((lufs - measured) / 20)).astype(np.float32)


def loudness_events(path: pathlib.Path, others: dict | None = None, **options) -> list:
    """The loudness events of a check judged against EBU R 128 unless `options` choose otherwise."""
    options = {"preset": "ebu_r128", **options}
    result = check_input(str(path), options={"loudness": options, **(others or {})})
    return [e for e in result.events if e.kind == "audio.loudness"]


# --------------------------------------------------------------------------------------
# FFmpeg's ebur128 on the same samples
# --------------------------------------------------------------------------------------


def ebur128(planar: np.ndarray, rate: int, layout: str) -> dict:
    """FFmpeg's ebur128 (peak=true) over float32 (channels, n): its last frame's figures.

    Metadata is set per 100 ms block, so callers pass whole blocks. Also returns the
    largest short-term value seen. True peaks come back linear with 3 decimals.
    """
    graph = Graph()
    source = graph.add_abuffer(format="fltp", sample_rate=rate, layout=layout, time_base=f"1/{rate}")
    meter = graph.add("ebur128", "peak=true:metadata=1")
    sink = graph.add("abuffersink")
    source.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    last: dict = {}
    short_max = -math.inf

    def drain() -> None:
        nonlocal last, short_max
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            if frame.metadata:
                last = dict(frame.metadata)
                short_max = max(short_max, float(last["lavfi.r128.S"]))

    step = rate  # one second per frame
    for start in range(0, planar.shape[1], step):
        piece = np.ascontiguousarray(planar[:, start : start + step])
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return {
        "I": float(last["lavfi.r128.I"]),
        "LRA": float(last["lavfi.r128.LRA"]),
        "S": float(last["lavfi.r128.S"]),
        "S_max": short_max,
        "TP": float(last["lavfi.r128.true_peak"]),
    }


def _clips() -> list[pathlib.Path]:
    root = media_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in MEDIA_SUFFIXES)


def _decoded_audio(clip: pathlib.Path) -> tuple[np.ndarray, AudioFormat] | None:
    """The audio track streamqc decodes, as one float32 (channels, n) array; None without audio."""
    chunks: list[AudioChunk] = []
    try:
        with open_media(str(clip), SourceOptions(video=False)) as reader:
            for buffer in reader:
                if isinstance(buffer, AudioChunk):
                    if chunks and buffer.format != chunks[0].format:
                        break  # the first format only: both meters see the same samples
                    chunks.append(buffer)
    except Exception:
        return None
    if not chunks:
        return None
    return np.concatenate([c.samples.T for c in chunks], axis=1, dtype=np.float32), chunks[0].format


CAP_S = 30.0  # long clips: both meters get the same first 30 s


@pytest.mark.parametrize("clip", _clips(), ids=lambda p: str(p.relative_to(media_dir())))
def test_matches_ffmpeg_ebur128(clip, shared_media):
    decoded = _decoded_audio(clip)
    if decoded is None:
        pytest.skip("no decodable audio track")
    planar, fmt = decoded
    block = fmt.sample_rate // 10
    planar = planar[:, : min(planar.shape[1], int(CAP_S * fmt.sample_rate)) // block * block]
    if planar.shape[1] < 4 * block:
        pytest.skip(f"{planar.shape[1] / fmt.sample_rate:.2f} s of audio: shorter than one 400 ms gating block")
    ref = ebur128(planar, fmt.sample_rate, fmt.layout)
    meter = LoudnessMeter(fmt.sample_rate, fmt.channels, fmt.layout)
    for start in range(0, planar.shape[1], block):  # 100 ms pushes, as FFmpeg's frames
        meter.push_planar(np.ascontiguousarray(planar[:, start : start + block]))
    meter.flush()

    integrated = meter.integrated_lufs
    if integrated is None:  # everything below the -70 LUFS gate: FFmpeg keeps its -70 placeholder
        assert ref["I"] == -70.0
    else:
        assert integrated == pytest.approx(ref["I"], abs=0.1)
    short = meter.short_term_lufs
    if short is None:  # under 3 s: FFmpeg reports the empty window (-120.7)
        assert ref["S"] < -120 and ref["S_max"] < -120
    elif short == -math.inf or ref["S"] < -70:  # digital silence at the end
        assert short < -70 and ref["S"] < -70
    else:
        assert short == pytest.approx(ref["S"], abs=0.1)
        assert meter.short_term_max_lufs == pytest.approx(ref["S_max"], abs=0.1)
    if meter.loudness_range_lu is not None:
        assert meter.loudness_range_lu == pytest.approx(ref["LRA"], abs=0.1)
    # FFmpeg prints the linear peak with 3 decimals: compare with the interval it stands for
    peak = 10 ** (meter.true_peak_dbtp / 20)
    low, high = max(ref["TP"] - 0.0005, 0.0), ref["TP"] + 0.0005
    if peak < low:
        assert 20 * math.log10(low / peak) <= 0.2, (meter.true_peak_dbtp, ref["TP"])
    elif peak > high:
        assert 20 * math.log10(peak / high) <= 0.2, (meter.true_peak_dbtp, ref["TP"])


# --------------------------------------------------------------------------------------
# the meter on test signals (EBU Tech 3341 / 3342 style)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [48000, 44100, 32000, 16000])
def test_sine_reads_its_level_in_lufs(rate):
    """EBU Tech 3341 case 1: a 1 kHz sine at -23 dBFS in both channels reads -23.0 LUFS,
    at every sample rate (the K-weighting is derived per rate). A mono sine reads 3 dB
    lower: -20 dBFS mono is -23 LUFS too."""
    meter = measure(sine(1000, -23, 10, rate), rate, "stereo", chunk=rate // 7)
    assert meter.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert meter.momentary_lufs == pytest.approx(-23.0, abs=0.1)
    assert meter.short_term_lufs == pytest.approx(-23.0, abs=0.1)
    assert meter.loudness_range_lu == pytest.approx(0.0, abs=0.1)
    assert meter.true_peak_dbtp == pytest.approx(-23.0, abs=0.05)
    mono = measure(sine(1000, -20, 10, rate, channels=1), rate, "mono")
    assert mono.integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_gating_ignores_quiet_passages():
    """Tech 3341 case 3: 10 s at -36, 60 s at -23, 10 s at -36 dBFS reads -23.0 LUFS:
    the quiet sections fall under the relative gate."""
    samples = np.concatenate([sine(1000, -36, 10), sine(1000, -23, 60), sine(1000, -36, 10)])
    assert measure(samples).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_loudness_range_of_two_levels():
    """Tech 3342 case 1: 20 s at -20 dBFS then 20 s at -30 dBFS: LRA 10 LU."""
    samples = np.concatenate([sine(1000, -20, 20), sine(1000, -30, 20)])
    assert measure(samples).loudness_range_lu == pytest.approx(10.0, abs=1.0)


def test_surround_channels_weigh_more_and_lfe_not_at_all():
    tone = sine(1000, -23, 5, channels=1)[:, 0]
    fronts, surrounds, lfe = (np.zeros((tone.shape[0], 6), np.float32) for _ in range(3))
    fronts[:, 0] = fronts[:, 1] = tone  # FL FR
    surrounds[:, 4] = surrounds[:, 5] = tone  # SL SR of 5.1(side)
    lfe[:, 3] = tone
    front = measure(fronts, layout="5.1(side)").integrated_lufs
    assert front == pytest.approx(-23.0, abs=0.1)
    surround = measure(surrounds, layout="5.1(side)").integrated_lufs
    assert surround == pytest.approx(front + 10 * math.log10(1.41), abs=0.02)
    assert measure(lfe, layout="5.1(side)").integrated_lufs is None


def test_chunking_does_not_change_the_figures():
    samples = programme_at(-20, 8)
    whole = measure(samples, chunk=samples.shape[0])
    rng = np.random.default_rng(1)
    meter = LoudnessMeter(48000, 2, "stereo")
    start = 0
    while start < samples.shape[0]:
        size = int(rng.integers(1, 9000))
        meter.push(samples[start : start + size])
        start += size
    meter.flush()
    assert meter.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=1e-9)
    assert meter.short_term_max_lufs == pytest.approx(whole.short_term_max_lufs, abs=1e-9)
    assert meter.loudness_range_lu == pytest.approx(whole.loudness_range_lu, abs=1e-9)
    assert meter.true_peak_dbtp == pytest.approx(whole.true_peak_dbtp, abs=1e-4)


def test_agrees_with_pyloudnorm():
    samples = programme_at(-27.5, 12, kind="mix")
    assert measure(samples).integrated_lufs == pytest.approx(-27.5, abs=0.1)


def test_true_peak_finds_the_inter_sample_peak():
    """A sine at fs/4 with 45° phase: every sample is at 0.707 of the crest, the crest itself
    falls between samples. Sample peak -0.5 dBFS, true peak +2.5 dBTP."""
    amplitude_db = -0.5 + 20 * math.log10(math.sqrt(2))
    samples = sine(12000, amplitude_db, 2, phase=math.pi / 4, fade_s=0.05)
    assert 20 * math.log10(np.abs(samples).max()) == pytest.approx(-0.5, abs=0.01)
    assert measure(samples).true_peak_dbtp == pytest.approx(2.51, abs=0.1)
    sample_peak = LoudnessMeter(48000, 2, "stereo", true_peak=False)
    sample_peak.push(samples)
    assert sample_peak.true_peak_dbtp == pytest.approx(-0.5, abs=0.01)


def test_nan_from_a_decoder_does_not_poison_the_meter():
    samples = sine(1000, -23, 6)
    samples[48000:48010] = np.nan
    meter = measure(samples)
    assert meter.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert math.isfinite(meter.true_peak_dbtp)


# --------------------------------------------------------------------------------------
# the detector, end to end on encoded files
# --------------------------------------------------------------------------------------


def test_programme_too_quiet_is_one_event(tmp_path):
    path = write_audio(tmp_path / "quiet.wav", programme_at(-30, 14))
    events = loudness_events(path)
    assert len(events) == 1
    event = events[0]
    assert event.details["measure"] == "integrated"
    assert event.details["integrated_lufs"] == pytest.approx(-30.0, abs=0.2)
    assert event.details["deviation_lu"] == pytest.approx(-7.0, abs=0.2)
    assert event.details["target_lufs"] == -23.0 and event.details["preset"] == "ebu_r128"
    for key in ("lra_lu", "short_term_max_lufs", "true_peak_dbtp"):
        assert event.details[key] is not None
    assert event.start == 0.0 and event.end == pytest.approx(14.0, abs=0.05)


def test_programme_on_target_is_quiet(tmp_path):
    path = write_audio(tmp_path / "on_target.ts", programme_at(-23, 14), codec="aac")
    assert loudness_events(path) == []


def test_presets_and_overrides(tmp_path):
    path = write_audio(tmp_path / "loud.wav", programme_at(-15, 12))
    assert loudness_events(path, preset="streaming_14") == []  # -15 is within -14 ± 1
    (event,) = loudness_events(path)  # EBU R 128: 8 LU too loud
    assert event.details["deviation_lu"] == pytest.approx(8.0, abs=0.2)
    assert loudness_events(path, target_lufs=-16, tolerance_lu=2) == []
    (custom,) = loudness_events(path, preset="none", target_lufs=-20)  # a bare target is a target
    assert custom.details["deviation_lu"] == pytest.approx(5.0, abs=0.2) and custom.details["preset"] == "custom"
    with pytest.raises(ConfigError):
        check_input(str(path), options={"loudness": {"preset": "nonsense"}})


def test_without_a_target_loudness_is_measured_not_judged(tmp_path):
    """No preset chosen (check's default): a programme 8 LU over R 128 with a true-peak over
    is not broken for that. One info note carries the figures; the check passes (exit 0)."""
    amplitude_db = -0.5 + 20 * math.log10(math.sqrt(2))
    over = sine(12000, amplitude_db, 0.3, phase=math.pi / 4, fade_s=0.02)
    path = write_audio(tmp_path / "web.wav", np.concatenate([programme_at(-15, 6), over, programme_at(-15, 6)]))
    result = check_input(str(path))
    (note,) = [e for e in result.events if e.kind == "audio.loudness"]
    assert note.severity.value == "info" and not note.is_defect
    assert note.details["integrated_lufs"] > -21.0  # over R 128 by more than its 2 LU
    assert note.details["true_peak_dbtp"] > 0 and note.details["target_lufs"] is None
    assert note.start == 0.0 and note.end == pytest.approx(12.3, abs=0.05)
    cli = CliRunner().invoke(app, ["check", str(path), "--json", "--no-progress"])
    assert cli.exit_code == 0 and json.loads(cli.stdout)["failed"] is False
    judged = CliRunner().invoke(app, ["check", str(path), "--json", "--no-progress", "--set", "loudness.preset=ebu_r128"])
    assert judged.exit_code == 1
    measures = sorted(e["details"]["measure"] for e in json.loads(judged.stdout)["events"] if e["kind"] == "audio.loudness")
    assert measures == ["integrated", "true_peak"]


def test_silence_is_not_too_quiet(tmp_path):
    rng = np.random.default_rng(2)
    hiss = (rng.standard_normal((48000 * 12, 2)) * 10 ** (-90 / 20)).astype(np.float32)
    silence = np.zeros((48000 * 12, 2), np.float32)
    # (dropout is off: on noise hovering at its -90 dBFS threshold it takes seconds)
    quick = {"dropout": {"enabled": False}}
    assert loudness_events(write_audio(tmp_path / "hiss.wav", hiss), quick) == []
    assert loudness_events(write_audio(tmp_path / "silence.wav", silence), quick) == []


def test_short_clip_gets_no_programme_judgement(tmp_path):
    """Under min_programme_s (5 s): an ident or a sting is not judged as a programme."""
    assert loudness_events(write_audio(tmp_path / "short.wav", programme_at(-35, 4))) == []
    (event,) = loudness_events(write_audio(tmp_path / "longer.wav", programme_at(-35, 6)))
    assert event.details["measure"] == "integrated"


def test_true_peak_over_is_an_event_a_sample_meter_misses(tmp_path):
    """The fs/4 sine at -1.5 dBFS sample peak: +1.5 dBTP between the samples. EBU R 128's
    -1 dBTP limit is broken; a sample-peak meter sees -1.5 dBFS and nothing wrong."""
    amplitude_db = -1.5 + 20 * math.log10(math.sqrt(2))
    quiet = programme_at(-23, 2)  # 4.5 s in all: too short for a programme judgement
    over = sine(12000, amplitude_db, 0.5, phase=math.pi / 4, fade_s=0.02)
    path = write_audio(tmp_path / "over.wav", np.concatenate([quiet, over, quiet]))
    (event,) = loudness_events(path)
    assert event.details["measure"] == "true_peak"
    assert event.details["true_peak_dbtp"] == pytest.approx(1.5, abs=0.2)
    assert event.details["channels"] == [0, 1]
    assert event.start == pytest.approx(2.0, abs=0.03) and event.end == pytest.approx(2.5, abs=0.03)
    assert event.severity.value == "major"  # above 0 dBTP: it clips a DAC or a lossy encoder
    assert loudness_events(path, true_peak=False) == []


def test_live_window_out_of_target_for_a_while(tmp_path):
    """A stream whose loudness drops 10 LU for 20 s: one event from the sliding window
    (the whole input stays within tolerance, so there is no integrated event)."""
    on, off = programme_at(-23, 20), programme_at(-33, 20, seed=6)
    path = write_audio(tmp_path / "dip.wav", np.concatenate([on, off, on]))
    events = loudness_events(path, window_s=10, min_duration_s=5)
    assert [e.details["measure"] for e in events] == ["window"]
    event = events[0]
    assert 20.0 < event.start < 30.0 and 40.0 < event.end < 50.0
    assert event.details["window_lufs"] == pytest.approx(-33.0, abs=1.0)
    assert -26.0 < event.details["integrated_lufs"] < -24.0  # of the input so far


def test_detector_batches_do_not_depend_on_chunking():
    """The detector measures 0.5 s at a time: feeding 10 ms or 1 s chunks gives the same event."""
    amplitude_db = -0.5 + 20 * math.log10(math.sqrt(2))
    over = sine(12000, amplitude_db, 0.3, phase=math.pi / 4, fade_s=0.02)
    samples = np.concatenate([programme_at(-30, 6), over, programme_at(-30, 6)])
    fmt = AudioFormat(48000, 2, "stereo")
    results = []
    for size in (480, 48000):
        detector = LoudnessDetector(LoudnessOptions(preset="ebu_r128"))
        events = []
        for start in range(0, samples.shape[0], size):
            events += detector.feed(AudioChunk(start / 48000, samples[start : start + size], 48000, fmt))
        events += detector.finish(samples.shape[0] / 48000)
        results.append([(e.details["measure"], round(e.start, 3), round(e.end, 3)) for e in events])
    assert results[0] == results[1]
    assert [m for m, _, _ in results[0]] == ["true_peak", "integrated"]
