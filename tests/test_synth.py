"""The corpus generator: labels land where the decoded media shows the defect.

Real encodes decoded by real PyAV, small pictures and short clips to stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamqc.synth import AudioCodec, AudioSpec, Scenario, VideoCodec, VideoSpec, build_corpus, encode_scenario
from streamqc.synth import audio as au
from streamqc.synth import content as ct
from streamqc.synth import defects as df
from streamqc.synth import verify
from streamqc.synth.corpus import SMALL

KNOWN_PREFIXES = ("video.", "audio.", "av.", "stream.", "ts.", "hls.", "dash.")


def media_dir() -> Path:
    env = os.environ.get("STREAMQC_MEDIA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "media"


def decode_all(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float | None, int | None]:
    """(video times, mean luma per frame, audio (n, ch), audio start, rate), on the check clock."""
    times, means, chunks = [], [], []
    a0 = None
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].sample_rate if c.streams.audio else None
        for f in c.decode(*c.streams.video, *c.streams.audio):
            if isinstance(f, av.VideoFrame):
                times.append(f.time)
                y = np.frombuffer(f.planes[0], np.uint8).reshape(f.height, f.planes[0].line_size)[:, : f.width]
                means.append(float(y.mean()))
            else:
                if a0 is None:
                    a0 = f.time
                chunks.append(verify._as_float(f))
    origin = min(times) if times else a0
    vt = np.asarray(times) - origin
    order = np.argsort(vt)
    audio = np.concatenate(chunks) if chunks else None
    return vt[order], np.asarray(means)[order], audio, (a0 - origin) if a0 is not None else None, rate


@pytest.mark.parametrize(
    "container,vcodec,acodec,fps,bframes",
    [
        ("ts", "h264", "aac", Fraction(30000, 1001), 2),
        ("mp4", "h264", "ac3", Fraction(25), 3),
        ("mkv", "mpeg2video", "mp2", Fraction(50), 2),
        ("ts", "hevc", "mp2", Fraction(30), 0),
    ],
)
def test_flash_and_beep_land_on_their_label(tmp_path: Path, container: str, vcodec: str, acodec: str,
                                            fps: Fraction, bframes: int) -> None:
    """A white flash and a beep placed at the same programme time decode together, on the label.

    Encoders delay audio (AAC priming, AC-3 padding) and reorder video (B-frames); TS
    adds a start offset. On the check clock (0 = first decoded video frame) the flash
    must be within one frame and the beep within 5 ms of the labelled instant.
    """
    v = VideoSpec(320, 240, fps)
    a = AudioSpec(48000, 2)
    flash_frames = [v.index_at(0.8), v.index_at(1.9)]
    base = ct.MovingObjects(v, seed=5, count=3)
    video = ct.Flashes(base, flash_frames)
    starts = [a.sample_at(v.time_of(i)) for i in flash_frames]
    # A quiet bed (-30 dB) under the beeps so the beep onset is unambiguous.
    bed = au.Loop(a, au.programme(a, 5, "noise", 4.0).buffer * 0.03, "quiet noise")
    prog = au.Beeps(bed, starts, level_dbfs=-6)
    sc = Scenario(video, prog, 2.6)
    path = tmp_path / f"sync.{container}"
    encode_scenario(sc, path, container, VideoCodec(vcodec, bitrate_bps=800_000, gop_frames=12, bframes=bframes),
                    AudioCodec(acodec))
    times, means, audio, a0, rate = decode_all(path)
    assert audio is not None and a0 is not None and rate == 48000
    flashes = times[means > 200]
    assert len(flashes) == 2
    env = np.abs(audio).max(axis=1)
    for label_s, flash_s in zip((v.time_of(i) for i in flash_frames), flashes):
        assert abs(flash_s - label_s) < 0.5 / float(fps)
        lo = int((label_s - 0.1 - a0) * rate)
        onset = lo + int(np.argmax(env[lo:] > 0.1))
        assert abs(a0 + onset / rate - label_s) < 0.005, (a0 + onset / rate, label_s)


def test_freeze_black_silence_dropout_visible_where_labelled(tmp_path: Path) -> None:
    v = VideoSpec(320, 240, Fraction(25))
    a = AudioSpec(48000, 2)
    defects = [
        df.Freeze(v.index_at(0.6), v.index_at(2.0)),
        df.Black(v.index_at(2.6), v.index_at(3.6), logo_area=0.03),
        df.Silence(a.sample_at(0.5), a.sample_at(1.5)),
        df.Dropout(a.sample_at(2.5), a.sample_at(2.55)),
    ]
    sc = Scenario(ct.TexturePan(v, 1, speed_px_s=200), au.programme(a, 1, "music", 4.0), 4.0, defects)
    path = tmp_path / "case.ts"
    encode_scenario(sc, path, "ts", VideoCodec("h264", bitrate_bps=600_000, gop_frames=25, bframes=2),
                    AudioCodec("aac"))
    times, means, audio, a0, rate = decode_all(path)
    labels = {lab.kind: lab for lab in sc.annotations().labels}
    with av.open(str(path)) as c:
        lumas = [f.to_ndarray()[:240].astype(np.int16) for f in c.decode(video=0)]
    fr = labels["video.freeze"]
    inside = [i for i, t in enumerate(times) if fr.start_s - 1e-6 <= t < fr.end_s - 1e-6]
    diffs = [np.abs(lumas[i] - lumas[i - 1]).mean() for i in inside[1:]]
    # Frozen: only coding noise, and a keyframe refreshing the picture (GOP 1 s).
    assert np.median(diffs) < 0.5 and max(diffs) < 3.0
    assert np.abs(lumas[inside[-1] + 1] - lumas[inside[-1]]).mean() > 5  # moves right after
    bl = labels["video.black"]
    black = [m for t, m in zip(times, means) if bl.start_s - 1e-6 <= t < bl.end_s - 1e-6]
    assert max(black) < 16 + 0.03 * 220 and min(black) >= 15
    for kind in ("audio.silence", "audio.dropout"):
        lab = labels[kind]
        i0, i1 = int((lab.start_s - a0) * rate), int((lab.end_s - a0) * rate)
        mid = audio[i0 + (i1 - i0) // 4 : i1 - (i1 - i0) // 4]
        assert np.abs(mid).max() < 1e-3, kind
        assert np.sqrt(np.mean(audio[i1 + 2400 : i1 + 9600] ** 2)) > 0.01  # programme is back


def test_audio_offset_measured_from_the_file(tmp_path: Path) -> None:
    """verify.audio_offset finds a deliberate 100 ms audio delay, to the sample."""
    v = VideoSpec(320, 240, Fraction(25))
    a = AudioSpec(48000, 2)
    sc = Scenario(ct.Gradient(v, 1), au.programme(a, 2, "music", 4.0), 3.0)
    path = tmp_path / "off.mkv"
    prog = encode_scenario(sc, path, "mkv", VideoCodec("h264", bitrate_bps=300_000), AudioCodec("aac"))
    assert prog is not None
    timing = verify.probe(path)
    offset = verify.audio_offset(timing, prog, 48000)
    assert offset is not None and abs(offset) < 1 / 48000
    # Claim the programme started 100 ms later than it did: the file shows it 100 ms early.
    late = np.concatenate([np.zeros((4800, 2), np.float32), prog])[: len(prog)]
    offset = verify.audio_offset(timing, late, 48000)
    assert offset is not None and abs(offset + 0.1) < 1 / 48000


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("corpus")
    seen: list[tuple[int, int]] = []
    paths = build_corpus(out, seed=7, cases=3, media_dir=out / "no-media", workers=1, profile=SMALL,
                         progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3, 3)
    return out, paths


def test_corpus_follows_the_format_contract(small_corpus: tuple[Path, list[Path]]) -> None:
    out, paths = small_corpus
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["generator"].startswith("streamqc ")
    assert manifest["cases"] == [p.stem for p in paths]
    kinds, ignored = set(), set()
    for p in paths:
        case = json.loads(p.read_text())
        assert case["id"] == p.stem and case["seed"] == 7 and (out / case["file"]).is_file()
        for key in ("seed", "duration", "video", "audio", "content", "labels", "hard_negatives", "ignore", "options"):
            assert key in case, key
        with av.open(str(out / case["file"])) as c:
            if case["video"]:
                vs = c.streams.video[0]
                size = (vs.codec_context.width, vs.codec_context.height)
                assert size == (case["video"]["width"], case["video"]["height"])
                assert vs.codec_context.name == case["video"]["codec"]
            if case["audio"]:
                assert c.streams.audio[0].sample_rate == case["audio"]["sample_rate"]
        for lab in case["labels"]:
            assert lab["kind"].startswith(KNOWN_PREFIXES)
            assert -0.05 <= lab["start"] <= lab["end"] <= case["duration"] + 1e-6
            assert isinstance(lab["details"], dict)
            kinds.add(lab["kind"])
        for item in case["hard_negatives"]:
            assert item["what"] and item["start"] <= item["end"]
        for item in case["ignore"]:
            assert item["kind"].startswith(KNOWN_PREFIXES)
            ignored.add(item["kind"])
    assert {"video.freeze", "video.black", "video.decode_error"} <= kinds
    # Packet damage is labelled where it shows and ignored where it does not.
    assert "video.corruption" in kinds | ignored


def test_corpus_is_deterministic(small_corpus: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, paths = small_corpus
    again = build_corpus(tmp_path, seed=7, cases=2, media_dir=tmp_path / "no-media", workers=1, profile=SMALL)
    for a, b in zip(paths, again):
        assert a.read_text() == b.read_text()
        case = json.loads(a.read_text())
        digest = [hashlib.sha256((d / case["file"]).read_bytes()).hexdigest() for d in (out, tmp_path)]
        assert digest[0] == digest[1], case["file"]


def test_real_clip_content() -> None:
    media = media_dir()
    if not media.is_dir():
        pytest.skip(f"no shared media at {media} (set STREAMQC_MEDIA)")
    from streamqc.synth import clips

    names = clips.present_clips(media)
    if not names:
        pytest.skip(f"none of the known clips under {media}")
    info = clips.usable_clip(media, "LivePortrait/d20.mp4") if "LivePortrait/d20.mp4" in names else None
    info = info or next(i for i in (clips.usable_clip(media, n) for n in names) if i is not None)
    v = VideoSpec(320, 240, Fraction(30))
    src = clips.ClipContent(v, info)
    pics = [src.render(i) for i in range(12)]
    assert all(p.shape == (360, 320) for p in pics)
    assert np.abs(pics[0][:240].astype(int) - pics[11][:240]).mean() > 0.5  # it moves
    assert np.array_equal(src.render(3), pics[3])  # and re-renders identically
    src.close()


def test_damaged_ts_gives_decoder_errors_and_corruption_labels(tmp_path: Path) -> None:
    from streamqc.synth import damage

    v = VideoSpec(320, 240, Fraction(25))
    sc = Scenario(ct.MovingObjects(v, 3, count=4), None, 4.0)
    clean = tmp_path / "clean.ts"
    encode_scenario(sc, clean, "ts", VideoCodec("h264", bitrate_bps=600_000, gop_frames=25), None)
    origin = verify.probe(clean).origin_s
    hits = [damage.Hit(1.2, "drop", 12), damage.Hit(2.6, "flip", 4)]
    data, report = damage.damage_ts(clean.read_bytes(), hits, origin, seed=1)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data)
    assert report.dropped_packets == 12 and len(report.damaged_pts) == 2
    errors: list[float] = []
    with av.logging.Capture():
        flagged = [f.pts_s for f in damage.decode_frames(damaged, errors) if f.corrupt]
    assert flagged or errors  # the decoder noticed
    cmp = damage.compare(clean, damaged, 25.0, sc.frame_count)
    ann = damage.corruption_annotations(cmp, 25.0)
    assert ann.labels and all(lab.kind == "video.corruption" for lab in ann.labels)
    first = min(lab.start_s for lab in ann.labels)
    assert 1.0 <= first <= 1.4  # where the first hit was
    assert all(lab.details["area"] >= damage.VISIBLE_AREA for lab in ann.labels)
    errs = damage.decode_error_annotations(report, cmp, origin, 25.0, ann)
    assert any(lab.kind == "video.decode_error" and abs(lab.start_s - 1.2) < 0.2 for lab in errs.labels)


def test_corruption_labels_count_only_what_a_viewer_can_see(tmp_path: Path) -> None:
    """Stale grain and a concealed pan differ from the clean decode but look right: no
    label. Flat blocks pasted into the texture are labelled, with their share as area."""
    from streamqc.synth import damage

    v = VideoSpec(640, 352, Fraction(25))
    sc = Scenario(ct.TexturePan(v, 7, speed_px_s=200.0, grain_sigma=3.0), None, 1.0)
    path = tmp_path / "pan.ts"
    encode_scenario(sc, path, "ts", VideoCodec("h264", bitrate_bps=3_000_000, gop_frames=25), None)
    pictures = [damage.luma(f.frame).copy() for f in damage.decode_frames(path)]
    clean = pictures[20]
    rng = np.random.default_rng(5)
    regrained = np.clip(clean + rng.normal(0, 3, clean.shape), 0, 255).astype(np.uint8)
    differs, visible = damage.damaged_blocks(clean, regrained)
    assert not visible.any()
    # A whole picture from four frames earlier: the pan moved about 32 px, nothing is broken.
    differs, visible = damage.damaged_blocks(clean, pictures[16])
    assert differs.mean() > 0.5 and visible.mean() < damage.VISIBLE_AREA
    broken = clean.copy()
    blocks = [(r, c) for r in range(3, 8) for c in range(10, 18)]  # 40 of 22 x 40 blocks
    for r, c in blocks:
        broken[16 * r : 16 * r + 16, 16 * c : 16 * c + 16] = 128
    differs, visible = damage.damaged_blocks(clean, broken)
    assert abs(visible.mean() - len(blocks) / (22 * 40)) <= 0.01


def test_timestamp_jumps_and_format_change(tmp_path: Path) -> None:
    """Discontinuities rewritten in the TS bytes; a size change through a second encoder."""
    from streamqc.synth import tspackets as tsp

    v = VideoSpec(320, 240, Fraction(25))
    a = AudioSpec(48000, 2)
    change = df.FormatChange(v.index_at(1.0), 640, 480, from_size=(320, 240))
    sc = Scenario(ct.TexturePan(v, 2), au.programme(a, 2, "music", 4.0), 3.0, [change])
    path = tmp_path / "fc.ts"
    encode_scenario(sc, path, "ts", VideoCodec("h264", bitrate_bps=400_000, gop_frames=25), AudioCodec("aac"),
                    ts_offset_s=20.0)
    with av.open(str(path)) as c:
        sizes = [(f.width, f.height) for f in c.decode(video=0)]
    assert sizes[24] == (320, 240) and sizes[25] == (640, 480) and len(sizes) == 75
    origin = verify.probe(path).origin_s
    pk = tsp.packets(path.read_bytes())
    # -3 s from 1.4 s, then +5 s from 2.0 s (original time line); offsets accumulate.
    at = lambda s: int((origin + s) * 90000) - 45  # noqa: E731
    tsp.jump_timestamps(pk, [(at(2.0), 5 * 90000), (at(1.4), -3 * 90000)])
    jumped = tmp_path / "jumped.ts"
    jumped.write_bytes(pk.tobytes())
    with av.open(str(jumped)) as c:
        times = [f.time - origin for f in c.decode(video=0)]
    expect = [i / 25 + (-3 if i >= 35 else 0) + (5 if i >= 50 else 0) for i in range(75)]
    assert np.allclose(times, expect, atol=1e-3)
    with av.open(str(jumped)) as c:
        audio_t = [f.time - origin for f in c.decode(audio=0)]
    assert any(t2 - t1 < -2.5 for t1, t2 in zip(audio_t, audio_t[1:]))  # audio jumped too
    assert any(t2 - t1 > 1.5 for t1, t2 in zip(audio_t, audio_t[1:]))


def test_live_channel_ticks_are_continuous() -> None:
    from streamqc.synth import Channel

    v = VideoSpec(160, 120, Fraction(30000, 1001))
    ch = Channel(1, v, AudioSpec(48000, 2), segment_s=10.0)
    ticks = ch.ticks()
    prev_end = 0
    for _ in range(330):  # crosses into the second segment
        t = next(ticks)
        assert t.picture.shape == (180, 160) and t.audio is not None
        assert t.audio_start == prev_end  # no gap, no overlap between blocks
        prev_end = t.audio_start + len(t.audio)
    assert ch.labels.labels  # every live segment injects something


def test_a_programme_whose_defects_moved_its_loudness_is_not_held_to_the_target():
    """The corpus levels every programme to -23 LUFS before its defects; a defect that
    takes a loud part away moves the integrated loudness, and then the delivered
    programme may be out of tolerance without a label saying so (an ignore zone)."""
    rate = 48000
    noise = np.random.default_rng(5).standard_normal((10 * rate, 2)) * 0.05
    envelope = np.where(np.arange(10 * rate) < 4 * rate, 2.0, 0.7)[:, None]  # a loud passage, then quieter
    levelled = noise * envelope
    levelled *= 10 ** ((au.TARGET_LUFS - au.integrated_lufs(levelled, rate)) / 20)
    assert not au.loudness_moved(levelled, rate)
    short_gap = levelled.copy()
    short_gap[5 * rate: int(5.3 * rate)] = 0.0  # 0.3 s of the quiet part gone: loudness barely moves
    assert not au.loudness_moved(short_gap, rate)
    loud_part_gone = levelled.copy()
    loud_part_gone[: 4 * rate] = 0.0  # a silence over the loud passage: the rest is quieter than the target
    assert au.loudness_moved(loud_part_gone, rate)
    assert au.loudness_moved(np.zeros_like(levelled), rate)
