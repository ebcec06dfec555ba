"""`streamqc check` end to end on clips encoded and decoded by real FFmpeg."""

import json

import pytest
from typer.testing import CliRunner

from streamqc.check import check_input
from streamqc.cli import app
from streamqc.synth.defects import AudioLoss, Black, Dropout, Freeze, Silence

from media import frame, make_clip, sample


def kinds(result, kind):
    return [e for e in result.events if e.kind == kind]


@pytest.fixture(scope="module")
def defective_clip(tmp_path_factory):
    """One clip with a noisy freeze, black with a logo, silence and a dropout, at known times."""
    path = tmp_path_factory.mktemp("clips") / "defects.ts"
    return make_clip(
        path,
        seconds=16.0,
        defects=[
            Freeze(frame(2.0), frame(5.0), noise_sigma=3.0, seed=1),
            Black(frame(7.0), frame(9.6), logo_area=0.03, seed=2),
            Silence(sample(10.5), sample(13.0)),
            Dropout(sample(14.0), sample(14.25)),
        ],
    )


def test_finds_each_injected_defect_at_its_time(defective_clip):
    result = check_input(str(defective_clip))
    (freeze,) = kinds(result, "video.freeze")
    (black,) = kinds(result, "video.black")
    (silence,) = kinds(result, "audio.silence")
    (dropout,) = kinds(result, "audio.dropout")
    assert freeze.start == pytest.approx(2.0, abs=0.1) and freeze.end == pytest.approx(5.0, abs=0.1)
    assert black.start == pytest.approx(7.0, abs=0.1) and black.end == pytest.approx(9.6, abs=0.1)
    assert silence.start == pytest.approx(10.5, abs=0.05) and silence.end == pytest.approx(13.0, abs=0.05)
    assert dropout.start == pytest.approx(14.0, abs=0.03) and dropout.end == pytest.approx(14.25, abs=0.03)
    assert result.duration == pytest.approx(16.0, abs=0.1)


def test_clean_clip_has_no_events(tmp_path):
    result = check_input(str(make_clip(tmp_path / "clean.mp4", seconds=6.0, container="mp4")))
    assert result.defects == []
    # only the programme's loudness figures, as a note: no target was chosen
    assert [(e.kind, e.severity.value) for e in result.events] == [("audio.loudness", "info")]


def test_dark_scene_with_detail_is_not_black(tmp_path):
    result = check_input(str(make_clip(tmp_path / "night.mkv", seconds=6.0, container="mkv", content="night")))
    assert kinds(result, "video.black") == []
    assert kinds(result, "video.freeze") == []


def test_short_black_and_short_freeze_are_not_reported(tmp_path):
    clip = make_clip(
        tmp_path / "short.ts",
        seconds=8.0,
        defects=[Black(frame(2.0), frame(3.2)), Freeze(frame(5.0), frame(6.5))],
    )
    assert check_input(str(clip)).defects == []
    shorter = check_input(str(clip), options={"black": {"min_duration_s": 1.0}, "freeze": {"min_duration_s": 1.0}})
    assert [e.kind for e in shorter.defects] == ["video.black", "video.freeze"]


def test_audio_track_that_stops_is_missing(tmp_path):
    clip = make_clip(tmp_path / "loss.ts", seconds=10.0, defects=[AudioLoss(sample(4.0), 10.0)])
    (missing,) = kinds(check_input(str(clip)), "stream.missing_track")
    assert missing.details["track"] == "audio" and missing.start == pytest.approx(4.0, abs=0.1)


def test_cli_json_contract_and_exit_codes(defective_clip, tmp_path):
    runner = CliRunner()
    found = runner.invoke(app, ["check", str(defective_clip), "--json"])
    assert found.exit_code == 1
    report = json.loads(found.stdout)
    assert set(report) >= {"input", "duration", "media", "events"}
    assert report["media"]["video"] == {"codec": "h264", "width": 320, "height": 180, "fps": 25.0}
    assert report["media"]["audio"] == {"codec": "aac", "sample_rate": 48000, "channels": 2}
    for event in report["events"]:
        assert set(event) >= {"kind", "start", "end", "severity", "confidence", "details"}
        assert event["severity"] in ("info", "minor", "major", "critical")
    clean = runner.invoke(app, ["check", str(make_clip(tmp_path / "clean.ts", seconds=4.0)), "--json"])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["events"] == []


def test_options_from_command_line_and_config_file(defective_clip, tmp_path):
    runner = CliRunner()
    off = runner.invoke(app, ["check", str(defective_clip), "--json", "--set", "freeze.enabled=false"])
    assert "video.freeze" not in [e["kind"] for e in json.loads(off.stdout)["events"]]
    config = tmp_path / "options.yaml"
    config.write_text("detectors:\n  silence:\n    min_duration_s: 5\n")
    longer = runner.invoke(app, ["check", str(defective_clip), "--json", "--config", str(config)])
    assert "audio.silence" not in [e["kind"] for e in json.loads(longer.stdout)["events"]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "freeze.min_duration_s=soon"], "bad value for freeze.min_duration_s"),
        (["--set", "freeze.nonsense=1"], "unknown option freeze.nonsense"),
        (["--set", "freeze.min_duration_s=-2"], "bad value for freeze.min_duration_s: -2 (cannot be negative)"),
        (["--set", "silence.noise_db=60"], "bad value for silence.noise_db: 60 (cannot be positive)"),
        (["--set", "av_sync.hop_s=0"], "bad value for av_sync.hop_s: 0.0 (must be above 0)"),
        (["--set", "frieze.min_duration_s=1"], "unknown detector 'frieze'"),
        (["--set", "min_duration_s"], "--set expects detector.option=value"),
        (["--config", "/nonexistent/options.yaml"], "config file not found"),
    ],
)
def test_wrong_options_exit_2_with_the_key_named(defective_clip, args, message):
    result = CliRunner().invoke(app, ["check", str(defective_clip), *args])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_demo_finds_every_injected_defect(tmp_path):
    """The README's first command: the built-in example must show streamqc working."""
    result = CliRunner().invoke(app, ["demo", "--keep", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    kinds_found = {e["kind"] for e in json.loads(result.stdout)["events"] if e["severity"] != "info"}
    assert kinds_found == {"video.freeze", "video.black", "audio.silence", "audio.dropout"}
    assert (tmp_path / "streamqc-demo.ts").is_file()


def test_fail_on_chooses_what_fails_the_check(tmp_path):
    """On a terminal, as an operator runs it: a 2.5 s black (minor) fails the default check;
    --fail-on decides by severity and kind, and says what was left out; a bad rule is one line."""
    from terminal import run_in_terminal

    clip = make_clip(tmp_path / "black.ts", seconds=8.0, defects=[Black(frame(3.0), frame(5.5))])
    status, screen = run_in_terminal("check", str(clip))
    assert status == 1 and "video.black" in screen and "1 defect found" in screen
    status, screen = run_in_terminal("check", str(clip), "--fail-on", "major")
    assert status == 0 and "0 of them fail the check (--fail-on major)" in screen
    assert run_in_terminal("check", str(clip), "--fail-on", "audio.*,video.freeze")[0] == 0
    assert run_in_terminal("check", str(clip), "--fail-on", "none")[0] == 0
    assert run_in_terminal("check", str(clip), "--fail-on", "video.black:minor")[0] == 1
    status, screen = run_in_terminal("check", str(clip), "--fail-on", "video.black:loud")
    assert status == 2 and screen.strip().splitlines() == [
        "streamqc: --fail-on: unknown severity 'loud' in 'video.black:loud' (known: minor, major, critical)"]
    report = json.loads(CliRunner().invoke(app, ["check", str(clip), "--json", "--fail-on", "major"]).stdout)
    assert report["fail_on"] == "major" and report["failed"] is False
