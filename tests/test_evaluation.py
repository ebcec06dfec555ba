"""The scorer: matching rules on hand-written events, FFmpeg's detectors on real encoded
media (clock alignment included), and a whole tiny corpus through evaluate_corpus."""

from __future__ import annotations

import importlib.util
import io
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from rich.console import Console

from streamqc.evaluation import (
    CaseLabels,
    IgnoreZone,
    Label,
    ReferenceOptions,
    evaluate_corpus,
    match_case,
    render_findings,
    render_table,
    run_reference,
)
from streamqc.evaluation.ffmpeg_reference import _IntervalTracker, block_events
from streamqc.evaluation.runner import (
    FFMPEG,
    STREAMQC,
    SystemRun,
    _CaseOutput,
    merge_options,
    score_runs,
    sweep_block_threshold,
)
from streamqc.evaluation.scoring import aggregate
from streamqc.events import Event, Severity

FREEZE, BLACK, SILENCE, DROPOUT = "video.freeze", "video.black", "audio.silence", "audio.dropout"


def ev(kind: str, start: float, end: float, severity: Severity = Severity.MAJOR) -> Event:
    return Event(kind=kind, start=start, end=end, severity=severity)


def lab(kind: str, start: float, end: float) -> Label:
    return Label(kind=kind, start=start, end=end)


# --- matching rules ------------------------------------------------------------------


def test_overlap_is_a_hit_with_onset_error():
    score = match_case([ev(FREEZE, 6.0, 9.0)], [lab(FREEZE, 5.0, 8.0)])
    assert len(score.matches) == 1 and not score.misses and not score.false_alarms
    assert score.matches[0].onset_error_s == pytest.approx(1.0)


def test_slack_of_a_tenth_of_a_second():
    near = match_case([ev(BLACK, 8.05, 9.0)], [lab(BLACK, 5.0, 8.0)])
    assert len(near.matches) == 1
    far = match_case([ev(BLACK, 8.2, 9.0)], [lab(BLACK, 5.0, 8.0)])
    assert not far.matches and len(far.misses) == 1 and len(far.false_alarms) == 1


def test_kinds_must_agree():
    score = match_case([ev(BLACK, 5.0, 8.0)], [lab(FREEZE, 5.0, 8.0)])
    assert not score.matches and len(score.misses) == 1 and len(score.false_alarms) == 1


def test_per_channel_kinds_match_on_their_channel():
    """Clipping on both channels is two labels; an event names one channel and takes its label."""
    labels = [Label("audio.clipping", 2.0, 4.0, {"channel": 0}), Label("audio.clipping", 2.0, 4.0, {"channel": 1})]
    right = Event("audio.clipping", 2.1, 3.9, details={"channel": 1})
    score = match_case([right], labels)
    assert [m.label.details["channel"] for m in score.matches] == [1]
    assert [m.details["channel"] for m in score.misses] == [0]
    wrong = match_case([Event("audio.clipping", 2.1, 3.9, details={"channel": 1})], labels[:1])
    assert not wrong.matches and len(wrong.false_alarms) == 1
    click = match_case([Event("audio.click", 2.05, 2.051)], [Label("audio.click", 2.0, 2.01)])  # 0.1 s tolerance
    assert len(click.matches) == 1


def test_one_to_one_greedy_by_overlap():
    # Both events overlap the label; the larger overlap wins, the other is a false alarm.
    small, big = ev(FREEZE, 0.0, 2.0), ev(FREEZE, 1.0, 9.0)
    score = match_case([small, big], [lab(FREEZE, 0.0, 10.0)])
    assert [m.event for m in score.matches] == [big]
    assert score.false_alarms == [small]

    # One long event over two labels: it matches one label only.
    score = match_case([ev(SILENCE, 0.0, 10.0)], [lab(SILENCE, 1.0, 3.0), lab(SILENCE, 5.0, 9.0)])
    assert len(score.matches) == 1 and score.matches[0].label.start == 5.0
    assert [m.start for m in score.misses] == [1.0]

    # Greedy by overlap, not by order: e1 would grab l2 if taken first by time order.
    e1, e2 = ev(BLACK, 4.0, 6.0), ev(BLACK, 5.0, 9.0)
    l1, l2 = lab(BLACK, 0.0, 4.5), lab(BLACK, 5.0, 9.0)
    score = match_case([e1, e2], [l1, l2])
    assert {(m.label, m.event.start) for m in score.matches} == {(l1, 4.0), (l2, 5.0)}


def test_ignore_zones():
    labels = [lab("video.corruption", 10.0, 11.0)]
    zones = [IgnoreZone("video.corruption", 3.0, 3.4)]
    events = [
        ev("video.corruption", 3.1, 3.3),  # in the zone: neither hit nor false alarm
        ev("video.corruption", 10.2, 10.6),  # a hit
        ev(FREEZE, 3.0, 3.4),  # another kind: the zone does not cover it
    ]
    score = match_case(events, labels, zones)
    assert len(score.matches) == 1
    assert [e.kind for e in score.ignored] == ["video.corruption"]
    assert [e.kind for e in score.false_alarms] == [FREEZE]
    assert aggregate([score])["video.corruption"].fp == 0

    # "*" covers every kind.
    score = match_case([ev(FREEZE, 3.0, 3.4)], [], [IgnoreZone("*", 2.0, 4.0)])
    assert not score.false_alarms and len(score.ignored) == 1


def test_point_labels_match_within_half_a_second():
    point = lab("stream.discontinuity", 10.0, 10.0)
    assert len(match_case([ev("stream.discontinuity", 10.4, 10.4)], [point]).matches) == 1
    assert len(match_case([ev("stream.discontinuity", 9.0, 9.6)], [point]).matches) == 1
    miss = match_case([ev("stream.discontinuity", 10.6, 10.6)], [point])
    assert not miss.matches and len(miss.misses) == 1 and len(miss.false_alarms) == 1
    # The closer of two candidate events is the hit.
    near, far = ev("stream.discontinuity", 10.1, 10.1), ev("stream.discontinuity", 9.7, 9.7)
    score = match_case([far, near], [point])
    assert score.matches[0].event is near and score.false_alarms == [far]


def test_info_events_and_kind_filter():
    events = [ev(FREEZE, 1.0, 3.0, Severity.INFO), ev(BLACK, 5.0, 6.0)]
    score = match_case(events, [lab(FREEZE, 1.0, 3.0)])
    assert len(score.misses) == 1 and [e.kind for e in score.false_alarms] == [BLACK]
    score = match_case(events, [lab(FREEZE, 1.0, 3.0)], kinds={FREEZE}, include_info=True)
    assert len(score.matches) == 1 and not score.false_alarms


def test_aggregate_rates_and_onsets():
    s1 = match_case([ev(FREEZE, 5.1, 8.0), ev(FREEZE, 20.0, 21.0)], [lab(FREEZE, 5.0, 8.0)], case_id="a")
    s2 = match_case([ev(FREEZE, 1.3, 3.0)], [lab(FREEZE, 1.0, 3.0), lab(FREEZE, 10.0, 13.0)], case_id="b")
    table = aggregate([s1, s2], kinds=[FREEZE, BLACK])
    fr = table[FREEZE]
    assert (fr.tp, fr.fp, fr.fn) == (2, 1, 1)
    assert fr.precision == pytest.approx(2 / 3) and fr.recall == pytest.approx(2 / 3)
    assert fr.f1 == pytest.approx(2 / 3)
    assert fr.onset_median_s == pytest.approx(0.2)
    assert fr.onset_p90_s == pytest.approx(0.1 + 0.9 * 0.2)
    bl = table[BLACK]
    assert bl.precision is None and bl.recall is None and bl.f1 is None and bl.onset_median_s is None
    # Only false alarms: F1 is 0, not undefined.
    assert aggregate([match_case([ev(BLACK, 0, 1)], [])])[BLACK].f1 == 0.0


def test_corruption_area_error_over_hits():
    corruption = "video.corruption"
    labels = [Label(corruption, 1.0, 2.0, {"area": 0.5}), Label(corruption, 5.0, 6.0, {"area": 0.9}),
              Label(corruption, 9.0, 9.5, {"area": 0.2})]
    events = [Event(corruption, 1.1, 1.5, details={"area": 0.45}), Event(corruption, 5.0, 5.2, details={"area": 0.6}),
              Event(corruption, 9.0, 9.1, details={"area": None})]
    row = aggregate([match_case(events, labels)])[corruption]
    assert row.tp == 3 and row.area_missing == 1
    assert row.area_median_error == pytest.approx((0.05 + 0.3) / 2)
    assert row.to_dict()["area_median_abs_error"] == pytest.approx(0.175)
    assert "area_median_abs_error" not in aggregate([match_case([ev(FREEZE, 1, 2)], [lab(FREEZE, 1, 2)])])[FREEZE].to_dict()


def test_case_labels_from_contract_example():
    data = {
        "id": "s7-c000", "file": "s7-c000.ts", "seed": 7, "duration": 20.0,
        "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 29.97},
        "audio": None, "content": "texture pan",
        "labels": [{"kind": "video.freeze", "start": 5.0, "end": 8.0, "details": {}}],
        "hard_negatives": [{"what": "short fade to black", "start": 11.0, "end": 12.2}],
        "ignore": [{"kind": "video.corruption", "start": 3.0, "end": 3.4}],
        "options": {"missing_track": {"expect": "video"}},
    }  # fmt: skip
    case = CaseLabels.from_dict(data)
    assert case.labels == [lab(FREEZE, 5.0, 8.0)]
    assert case.ignore == [IgnoreZone("video.corruption", 3.0, 3.4)]
    assert case.options == {"missing_track": {"expect": "video"}}
    assert case.audio is None and case.duration == 20.0
    assert merge_options({"freeze": {"min_duration_s": 1.0, "noise_db": -50}}, {"freeze": {"noise_db": -40}}) == {
        "freeze": {"min_duration_s": 1.0, "noise_db": -40}
    }


def test_interval_tracker_pairs_keys_in_one_frame():
    t = _IntervalTracker("s", "e")
    t.feed({"s": "1.0", "e": "1.02"})  # a short interval inside one frame
    t.feed({"s": "2.0"})
    t.feed({"e": "2.5", "s": "2.6"})  # the end of one and the start of the next
    t.close(3.0)
    assert t.closed == [(1.0, 1.02), (2.0, 2.5), (2.6, 3.0)]


def test_block_events_threshold_and_merge():
    scores = [(i * 0.04, 9.0 if 1.0 <= i * 0.04 < 1.4 or 1.52 <= i * 0.04 < 1.6 else 2.0) for i in range(100)]
    events = block_events(scores, 5.0, frame_duration_s=0.04, merge_gap_s=0.2)
    assert len(events) == 1 and events[0].start == pytest.approx(1.0) and events[0].end == pytest.approx(1.6)


# --- real media ----------------------------------------------------------------------

W, H, FPS, RATE = 320, 180, 25, 48000


def encode_case(
    path: Path,
    *,
    duration: float = 6.0,
    black: tuple[float, float] | None = None,
    freeze: tuple[float, float] | None = None,
    silence: tuple[float, float] | None = None,
    dropouts: tuple[tuple[float, float], ...] = (),
    video_start_s: float = 0.0,
    jump: tuple[float, float] | None = None,
    size: tuple[int, int] = (W, H),
    blocky: tuple[float, float] | None = None,
) -> None:
    """Moving noise + a tone with noise, H.264 + AAC; defects at the given seconds of the
    source (video frame i shows at video_start_s + i/FPS; audio sample k at k/RATE).
    `jump=(at, by)`: every timestamp from `at` on is `by` seconds later (a discontinuity);
    `blocky`: pictures made of flat 16x16 blocks (what macroblocking looks like)."""
    width, height = size
    rng = np.random.default_rng(7)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.options = {"preset": "ultrafast", "g": "25"}
    aus = out.add_stream("aac", rate=RATE)
    aus.layout = "stereo"
    first = round(video_start_s * FPS)
    picture = None
    for i in range(round((duration - video_start_s) * FPS)):
        t = i / FPS
        if black and black[0] <= t < black[1]:
            picture = np.zeros((height, width, 3), np.uint8)
        elif blocky and blocky[0] <= t < blocky[1]:
            blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
            picture = np.repeat(np.repeat(blocks, 16, 0), 16, 1)[:height, :width]
        elif not (freeze and freeze[0] <= t < freeze[1] and picture is not None):
            picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = first + i + (round(jump[1] * FPS) if jump and t >= jump[0] else 0)
        for packet in vs.encode(frame):
            out.mux(packet)
    for packet in vs.encode():
        out.mux(packet)
    n = int(duration * RATE)
    t = np.arange(n) / RATE
    audio = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    for start, end in ([silence] if silence else []) + [(s, s + d) for s, d in dropouts]:
        audio[int(start * RATE) : int(end * RATE)] = 0.0
    stereo = np.ascontiguousarray(np.stack([audio, audio]))
    for k in range(0, n, 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, k : k + 1024]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = RATE, k + (round(jump[1] * RATE) if jump and k >= jump[0] * RATE else 0)
        for packet in aus.encode(frame):
            out.mux(packet)
    for packet in aus.encode():
        out.mux(packet)
    out.close()


def only(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind]


@pytest.mark.parametrize("container", ["ts", "mp4"])
def test_reference_finds_black_and_silence_on_the_check_clock(tmp_path: Path, container: str):
    # MPEG-TS shifts every stream by the AAC priming delay (first video frame at
    # 0.0213 s); MP4 hides it in an edit list. Both must land on the same clock.
    path = tmp_path / f"case.{container}"
    encode_case(path, black=(2.0, 4.5), silence=(1.5, 4.0))
    ref = run_reference(path)
    (black,) = only(ref.events, BLACK)
    assert black.start == pytest.approx(2.0, abs=0.1)
    assert black.end == pytest.approx(4.52, abs=0.1)  # the last black frame ends at 4.52
    (silence,) = only(ref.events, SILENCE)
    assert silence.start == pytest.approx(1.5, abs=0.1)
    assert silence.end == pytest.approx(4.0, abs=0.1)
    assert not only(ref.events, DROPOUT)  # the 2.5 s silence is not a dropout, nor is the AAC tail
    assert ref.duration == pytest.approx(6.0, abs=0.1)


def test_reference_audio_is_placed_relative_to_the_first_video_frame(tmp_path: Path):
    # Video starts 0.6 s after the audio: a silence at 2.0-4.5 s of the file's audio
    # is at 1.4-3.9 s on the clock whose zero is the first video frame.
    path = tmp_path / "late_video.ts"
    encode_case(path, silence=(2.0, 4.5), video_start_s=0.6)
    ref = run_reference(path)
    (silence,) = only(ref.events, SILENCE)
    assert silence.start == pytest.approx(1.4, abs=0.03)  # AAC smears the edges by a few ms
    assert silence.end == pytest.approx(3.9, abs=0.03)


def test_reference_folds_timestamp_jumps(tmp_path: Path):
    # Both tracks jump 10 s forward at 3 s: labels (and streamqc) use the continuous clock.
    path = tmp_path / "jump.ts"
    encode_case(path, duration=8.0, black=(3.6, 6.0), silence=(4.0, 6.5), jump=(3.0, 10.0))
    ref = run_reference(path)
    (black,) = only(ref.events, BLACK)
    (silence,) = only(ref.events, SILENCE)
    assert (black.start, black.end) == (pytest.approx(3.6, abs=0.05), pytest.approx(6.0, abs=0.05))
    assert (silence.start, silence.end) == (pytest.approx(4.0, abs=0.05), pytest.approx(6.5, abs=0.05))
    assert ref.duration == pytest.approx(8.0, abs=0.1)


def test_reference_survives_a_resolution_change(tmp_path: Path):
    # Two MPEG-TS files back to back: the picture size changes and the timestamps
    # restart. The video graph is rebuilt, as the ffmpeg CLI rebuilds its filters;
    # blackdetect's open interval is closed there (the CLI logs it at teardown).
    first, second = tmp_path / "a.ts", tmp_path / "b.ts"
    encode_case(first, duration=3.0, black=(1.0, 3.0))
    encode_case(second, duration=4.0, size=(160, 96), silence=(0.5, 3.0))
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    ref = run_reference(joined)
    (black,) = only(ref.events, BLACK)
    assert (black.start, black.end) == (pytest.approx(1.0, abs=0.05), pytest.approx(3.0, abs=0.05))
    (silence,) = only(ref.events, SILENCE)
    assert silence.start == pytest.approx(3.5, abs=0.1)  # the second file's 0.5 s, after 3 s


def test_reference_dropouts(tmp_path: Path):
    path = tmp_path / "drops.ts"
    encode_case(path, duration=4.0, dropouts=((1.0, 0.05), (2.5, 0.3)))
    ref = run_reference(path, kinds={DROPOUT}, options=ReferenceOptions())
    drops = only(ref.events, DROPOUT)
    assert [round(e.start, 1) for e in drops] == [1.0, 2.5]
    assert drops[1].duration == pytest.approx(0.3, abs=0.05)
    assert ref.kinds == frozenset({DROPOUT})


# --- whole corpus --------------------------------------------------------------------


def write_case(root: Path, case_id: str, labels: list[dict], **media) -> None:
    encode_case(root / f"{case_id}.ts", **media)
    doc = {
        "id": case_id, "file": f"{case_id}.ts", "seed": 99, "duration": media.get("duration", 6.0),
        "video": {"codec": "h264", "width": W, "height": H, "fps": FPS},
        "audio": {"codec": "aac", "sample_rate": RATE, "channels": 2},
        "content": "noise + tone", "labels": labels, "hard_negatives": [], "ignore": [], "options": {},
    }  # fmt: skip
    (root / f"{case_id}.json").write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_case(
        root,
        "s99-c000",
        [{"kind": BLACK, "start": 2.0, "end": 4.52}, {"kind": SILENCE, "start": 1.5, "end": 4.0}],
        black=(2.0, 4.5),
        silence=(1.5, 4.0),
    )
    write_case(root, "s99-c001", [{"kind": FREEZE, "start": 1.0, "end": 4.0}], freeze=(1.0, 4.0))
    write_case(root, "s99-c002", [])
    (root / "manifest.json").write_text(
        json.dumps({"seed": 99, "generator": "test", "cases": ["s99-c000", "s99-c001", "s99-c002"]})
    )
    return root


def text_of(table) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_report_from_hand_runs_renders():
    # The report and its tables, without media or check_input.
    case = CaseLabels(
        "c0", "c0.ts", [lab(BLACK, 2.0, 4.5), lab("av.sync", 0.0, 6.0)],
        hard_negatives=[{"what": "short fade to black", "start": 5.0, "end": 5.4}],
    )  # fmt: skip
    outputs = [
        _CaseOutput(
            case,
            SystemRun(STREAMQC, [ev(BLACK, 2.02, 4.5), ev("av.sync", 0.0, 6.0)], None, 0.1, None),
            SystemRun(FFMPEG, [ev(BLACK, 2.0, 4.5), ev(BLACK, 5.0, 5.5)], None, 0.1, frozenset({BLACK, SILENCE})),
        )
    ]
    report = score_runs(outputs, "hand", {"seed": 1}, None, 0.2)
    assert report.kinds == ["av.sync", BLACK]
    assert report.scores[FFMPEG][BLACK].fp == 1 and report.scores[STREAMQC][BLACK].fp == 0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["kinds"]["av.sync"][FFMPEG] is None  # FFmpeg has no detector for it
    assert data["kinds"][BLACK][STREAMQC]["f1"] == 1.0
    assert [(f["what"], f["details"]["hard_negative"]) for f in data["findings"]] == [
        ("false_alarm", "short fade to black")
    ]
    text = text_of(render_table(report))
    assert "video.black" in text and "av.sync" in text and "—" in text
    assert "short fade to black" in text_of(render_findings(report))


@pytest.mark.skipif(
    importlib.util.find_spec("streamqc.check") is None,
    reason="streamqc.check.check_input is not written yet (another engineer's module)",
)
def test_evaluate_corpus(tiny_corpus: Path):
    seen: list[str] = []
    report = evaluate_corpus(tiny_corpus, jobs=2, progress=seen.append)
    assert sorted(seen) == ["s99-c000", "s99-c001", "s99-c002"]
    assert [r.case.id for r in report.cases] == ["s99-c000", "s99-c001", "s99-c002"]
    assert report.seed == 99 and not report.errors()
    ff = report.scores[FFMPEG]
    assert (ff[BLACK].tp, ff[BLACK].fn) == (1, 0) and (ff[SILENCE].tp, ff[SILENCE].fn) == (1, 0)
    assert ff[BLACK].onset_median_s is not None and ff[BLACK].onset_median_s <= 0.1
    sq = report.scores[STREAMQC]
    assert sq[BLACK].tp + sq[BLACK].fn == 1 and sq[FREEZE].cases == 1
    data = json.loads(json.dumps(report.to_dict()))
    assert data["cases"] == 3 and set(data["kinds"]) >= {BLACK, SILENCE, FREEZE}
    assert "video.black" in text_of(render_table(report))

    only_black = evaluate_corpus(tiny_corpus, jobs=1, kinds=[BLACK])
    assert only_black.kinds == [BLACK]
    assert only_black.judged[FFMPEG] == frozenset({BLACK})


def test_block_threshold_sweep(tmp_path: Path):
    # Noise is not blocky; flat 16x16 blocks are. The sweep finds a threshold that
    # separates them, to be used on another seed.
    write_case(tmp_path, "b0", [{"kind": "video.corruption", "start": 2.0, "end": 3.0}], duration=4.0, blocky=(2.0, 3.0))
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 5, "cases": ["b0"]}))
    sweep = sweep_block_threshold(tmp_path, jobs=1)
    best = sweep.score_at(sweep.best)
    assert best.f1 == 1.0 and best.onset_median_s is not None and best.onset_median_s < 0.1
    assert sweep.score_at(0.0).onset_median_s == pytest.approx(2.0, abs=0.05)  # everything is "blocky"
    options = ReferenceOptions(block_threshold=sweep.best)
    events = only(run_reference(tmp_path / "b0.ts", kinds={"video.corruption"}, options=options).events, "video.corruption")
    assert len(events) == 1 and events[0].start == pytest.approx(2.0, abs=0.1) and events[0].end == pytest.approx(3.0, abs=0.1)


def test_eval_clean_counts_false_alarms_per_hour(tmp_path):
    """`streamqc eval --clean DIR` on a terminal: every defect on content said to be clean is
    a false alarm, per kind and per hour; a track silent throughout is named, not counted."""
    from media import frame, make_clip, sample
    from streamqc.synth.defects import Black, Silence
    from terminal import run_in_terminal

    folder = tmp_path / "clean"
    folder.mkdir()
    make_clip(folder / "fine.ts", seconds=6.0)
    make_clip(folder / "dark.ts", seconds=6.0, defects=[Black(frame(1.0), frame(4.0))])
    make_clip(folder / "mute.mp4", seconds=6.0, container="mp4", defects=[Silence(sample(0.0), sample(6.0))])
    (folder / "notes.txt").write_text("not media")
    status, screen = run_in_terminal("eval", "--clean", str(folder), "--jobs", "1", "--json", str(tmp_path / "r.json"))
    assert status == 0, screen
    report = json.loads((tmp_path / "r.json").read_text())["clean"]
    assert report["clips"] == 3 and report["hours"] == pytest.approx(18.0 / 3600, rel=0.02)
    assert report["by_kind"] == {"video.black": {"count": 1, "per_hour": pytest.approx(200.0, rel=0.02)}}
    assert report["silent_tracks"] == ["clean/mute.mp4"]
    assert list(report["events"]) == ["clean/dark.ts"]
    assert re.search(r"false alarms 1, 19\d\.\d per hour", " ".join(screen.split())), screen
    status, screen = run_in_terminal("eval", "--clean", str(tmp_path / "nowhere"))
    assert status == 2 and "not a folder of clean clips" in screen
