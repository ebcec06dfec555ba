"""audio.dropout: holes cut into the programme, not pauses the content has, on real recordings."""

from __future__ import annotations

import av
import numpy as np
import pytest

from streamqc.check import check_input

from test_loudness import write_audio


def dropout_events(path) -> list:
    return [e for e in check_input(str(path)).events if e.kind == "audio.dropout"]


def decoded(path) -> tuple[np.ndarray, int]:
    """Every sample of the first audio track as float (n, channels), and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(blocks, axis=1).T.astype(np.float32)  # flac/mp3/vorbis decode planar
    if np.issubdtype(blocks[0].dtype, np.integer):
        samples /= np.float32(2 ** (8 * blocks[0].dtype.itemsize - 1))
    return samples, rate


def gated(samples: np.ndarray, rate: int, open_dbfs: float = -32.0) -> np.ndarray:
    """A noise gate as speech recordings get one: it opens (5 ms) while the 20 ms level is
    above `open_dbfs` and closes with a 50 ms release; closed, only +-1 LSB of dither
    is left (a 16-bit code of -1, 0 or 1), which is digital silence to the detector."""
    width = int(0.02 * rate)
    level = np.sqrt(np.convolve(np.abs(samples).max(axis=1) ** 2, np.ones(width) / width, "same"))
    target = (level > 10 ** (open_dbfs / 20)).astype(np.float64)
    attack, release = 1 - np.exp(-1 / (0.005 * rate)), 1 - np.exp(-1 / (0.05 * rate))
    gain, value = np.empty_like(target), 0.0
    for i, want in enumerate(target):
        value += (want - value) * (attack if want > value else release)
        gain[i] = value
    gain[gain < 0.01] = 0.0  # closed: 40 dB of release, then nothing
    dither = np.random.default_rng(1).integers(-1, 2, samples.shape) / 32768
    return (samples * gain[:, None] + dither).astype(np.float32)


def test_gated_speech_pauses_at_one_lsb_are_not_dropouts(shared_media, tmp_path):
    """Real speech (whisper's jfk.flac) gated between words down to +-1 LSB: the pauses are
    digital silence for 0.1-1 s with speech on both sides, exactly where a dropout
    detector that only looks at the level fires (it reported 4 here, 3 of them major).
    The speech decays into each pause through the gate's release; no packet was lost."""
    samples, rate = decoded(shared_media / "whisper/jfk.flac")
    path = write_audio(tmp_path / "gated.wav", gated(samples, rate), rate=rate, codec="pcm_s16le")
    silent = np.abs(decoded(path)[0]).max(axis=1) <= 10 ** (-90 / 20)
    edges = np.diff(np.concatenate(([0], silent.view(np.int8), [0])))
    runs = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) / rate
    assert ((runs > 0.1) & (runs < 2.0)).sum() >= 3  # the pauses really are digital silence
    assert dropout_events(path) == []


def test_break_in_a_real_beat_is_not_a_dropout(shared_media):
    """essentia's hiphop.mp3 cuts to digital zero for 0.05-0.22 s a dozen times inside the
    beat (a produced break, the manifest's "musical break"): the kick has decayed
    20-25 dB below the beat's playing level before each one."""
    assert dropout_events(shared_media / "real-clean/essentia-audio/hiphop.mp3") == []


@pytest.mark.parametrize("codec, suffix", [("pcm_s16le", "wav"), ("aac", "m4a"), ("mp2", "ts")])
def test_holes_cut_into_real_music_are_found_through_codecs(shared_media, tmp_path, codec, suffix):
    """Lost packets cut into flamenco (real, percussive, 44.1 kHz) wherever the music is:
    each hole found at its time through AAC and MP2, which fade its edges, and nothing else."""
    samples, rate = decoded(shared_media / "real-clean/essentia-audio/flamenco.flac")
    samples = samples[: 10 * rate].copy()
    holes = [(1.7, 0.09), (3.1, 0.15), (4.8, 0.06), (6.2, 0.14), (8.3, 0.04)]
    for start, length in holes:
        samples[int(start * rate) : int((start + length) * rate)] = 0.0
    events = dropout_events(write_audio(tmp_path / f"holes.{suffix}", samples, rate=rate, codec=codec))
    assert len(events) == len(holes)
    for event, (start, length) in zip(events, holes):
        assert event.start == pytest.approx(start, abs=0.03)
        assert event.end == pytest.approx(start + length, abs=0.03)


def test_quiet_speech_touching_the_floor_is_not_a_dropout(shared_media, tmp_path):
    """Real speech (a LibriSpeech reading) played at -55 dBFS through AAC, as a quiet
    programme is: its syllable gaps fall to +-1 LSB for 5-15 ms again and again. Those are
    the programme's own troughs, not cuts (5 dropouts were reported here)."""
    samples, rate = decoded(shared_media / "librosa-data/3436-172162-0000.ogg")
    level = np.sqrt(np.mean(np.square(samples)))
    quiet = np.round(samples * (10 ** (-55 / 20) / level) * 32768) / 32768  # 16-bit, as delivered
    path = write_audio(tmp_path / "quiet.m4a", quiet.astype(np.float32), rate=rate, codec="aac")
    floor = np.abs(decoded(path)[0]).max(axis=1) <= 10 ** (-90 / 20)
    assert floor.mean() > 0.05  # it really touches digital silence, and often
    assert dropout_events(path) == []


def test_a_second_hole_soon_after_a_long_one_is_found(shared_media, tmp_path):
    """Dropouts come in bursts: a 1.2 s hole, then a 60 ms one 0.8 s later. The first one's
    silence is a cut, not the programme's own trough, so it does not hide the second."""
    samples, rate = decoded(shared_media / "real-clean/essentia-audio/flamenco.flac")
    samples = samples[: 8 * rate].copy()
    holes = [(2.0, 1.2), (4.0, 0.06)]
    for start, length in holes:
        samples[int(start * rate) : int((start + length) * rate)] = 0.0
    events = dropout_events(write_audio(tmp_path / "burst.m4a", samples, rate=rate, codec="aac"))
    assert [round(e.start, 1) for e in events] == [2.0, 4.0]
