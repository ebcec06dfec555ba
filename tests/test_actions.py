"""Corrective actions: the whole loop with the live monitor on real media, cooldown, attempt cap, escalation, argv injection."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from peers import UdpTsSender, udp_bound
from receivers import Receiver

from live import free_udp_port, make_clip, wait_for
from streamqc.errors import ConfigError
from streamqc.events import Event, Severity, utc_now_iso
from streamqc.monitor.config import StreamConfig
from streamqc.monitor.runner import RunnerSettings, StreamRunner
from streamqc.sinks.actions import ActionEngine
from streamqc.sinks.config import parse_actions
from streamqc.sinks.journal import Journal
from streamqc.sinks.service import build_actions, start_sinks


class Clock:
    """Engine time under the test's control (cooldowns of minutes without waiting for them)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _actions(journal: Journal, kind: str | None = None) -> list[Event]:
    return [r.event for r in journal.read(kind=kind or "action")]


class SwitchingOrigin:
    """A test origin on 127.0.0.1: its primary feed goes out over UDP in real time; POST /switch
    (JSON `{"stream": ..., "feed": "backup"}`) puts the backup feed on air on the same port."""

    def __init__(self, primary: Path, backup: Path, port: int) -> None:
        self.backup = backup
        self.port = port
        self.sender = UdpTsSender(primary, port)
        self.switched_at: float | None = None
        self.receiver = Receiver(self.respond)

    def respond(self, request):
        if request["method"] != "POST" or request["path"] != "/switch":
            return 404, b""
        if json.loads(request["body"]) != {"stream": "news-1", "feed": "backup"}:
            return 400, b"unknown stream or feed"
        if self.switched_at is None:
            self.sender.close()
            self.sender = UdpTsSender(self.backup, self.port, loop=True).start()
            self.switched_at = time.monotonic()
        return 200, b'{"switched": true}'

    def close(self) -> None:
        self.sender.close()
        self.receiver.stop()


def test_the_monitor_sees_a_freeze_the_action_switches_the_origin_to_backup_and_the_freeze_clears(tmp_path):
    primary = tmp_path / "primary.ts"
    make_clip(primary, 12.0, [("video.freeze", 1.0, 12.0)], seed=3)  # frozen until its end
    backup = tmp_path / "backup.ts"
    make_clip(backup, 6.0, [], seed=5)
    origin = SwitchingOrigin(primary, backup, free_udp_port())
    origin.receiver.start()
    stream = {"id": "news-1", "url": f"udp://127.0.0.1:{origin.port}", "tags": {"tier": "gold"}}
    config = {
        "streams": [stream],
        "actions": [{"name": "switch-to-backup", "kinds": ["video.freeze", "video.black"], "tags": {"tier": "gold"},
                     "min_duration_s": 2, "cooldown_s": 60, "max_attempts": 2, "settle_s": 2,
                     "http": {"method": "POST", "url": origin.receiver.url + "/switch",
                              "json": {"stream": "{stream.id}", "feed": "backup"}}}],
    }
    journal = Journal(tmp_path / "journal.db")
    runner = StreamRunner(StreamConfig(**stream), {}, RunnerSettings(stall_timeout_s=3.0), journal)
    stop_sinks = threading.Event()
    sinks = start_sinks(config, journal.path, stop_sinks)  # the action engine reads the journal
    runner.start()
    try:
        assert wait_for(lambda: udp_bound(origin.port), 20), "the monitor never listened"
        origin.sender.start()
        assert wait_for(lambda: origin.switched_at is not None, 20), [r.to_dict() for r in journal.read()]
        freeze = [r for r in journal.read(kind="video.freeze")]
        assert [(r.phase, r.event.ongoing) for r in freeze][:1] == [("open", True)]  # announced live
        # the backup's moving picture ends the freeze, under the id it was announced with
        assert wait_for(lambda: journal.read(kind="video.freeze")[-1].phase == "closed", 10)
        cleared_at = time.monotonic()
        time.sleep(max(0.0, origin.switched_at + 3.0 - time.monotonic()))  # the backup plays on
        status = runner.status()
    finally:
        runner.stop()
        stop_sinks.set()
        for thread in sinks:
            thread.join(5)
        origin.close()
    freeze = journal.read(kind="video.freeze")
    assert [r.phase for r in freeze] == ["open", "closed"] and freeze[0].id == freeze[1].id
    opened, closed = freeze[0].event, freeze[1].event
    assert opened.start == pytest.approx(1.0, abs=0.5) and opened.end - opened.start == pytest.approx(2.0, abs=0.2)
    # cleared by the switch, long before the primary's freeze would have ended (12 s)
    assert closed.end < 9.0 and cleared_at - origin.switched_at < 5.0
    done = _actions(journal)
    assert [e.kind for e in done] == ["action.succeeded"], "cleared: no retry, no escalation"
    assert done[0].details["status"] == 200 and done[0].details["attempt"] == 1
    assert done[0].stream == "news-1" and done[0].details["defect_kind"] == "video.freeze"
    assert done[0].details["defect_id"] == freeze[0].id
    switch = [r for r in origin.receiver.requests if r["path"] == "/switch"]
    assert [json.loads(r["body"]) for r in switch] == [{"stream": "news-1", "feed": "backup"}]
    assert journal.open_defects() == [] and status["state"] in ("ok", "degraded") and status["frames"] > 100
    journal.close()


def _open(journal: Journal, stream: str, start: float = 10.0, duration: float = 2.0) -> str:
    return journal.append(Event("video.freeze", start, start + duration, Severity.MAJOR, stream=stream,
                                at=utc_now_iso(), ongoing=True)).id


def _close(journal: Journal, event_id: str, stream: str, start: float = 10.0) -> None:
    journal.append(Event("video.freeze", start, start + 9.0, Severity.MAJOR, stream=stream, at=utc_now_iso()),
                   event_id=event_id)


def test_cooldown_attempt_cap_and_escalation(tmp_path):
    encoder = Receiver(lambda request: (500, b"encoder busy")).start()
    rules = parse_actions([{"name": "restart-encoder", "kinds": ["video.*"], "min_duration_s": 3, "cooldown_s": 30,
                            "max_attempts": 2, "settle_s": 10,
                            "http": {"url": encoder.url + "/encoders/{stream.id}/restart"}}])
    clock = Clock()
    try:
        with Journal(tmp_path / "journal.db") as journal:
            engine = ActionEngine(journal, rules, clock=clock)
            first = _open(journal, "ch1")
            engine.settle()
            assert _actions(journal) == [], "2 s of freeze is under the rule's 3 s"
            clock.now += 1.0
            engine.settle()
            assert [(e.kind, e.details["attempt"]) for e in _actions(journal)] == [("action.failed", 1)]
            assert _actions(journal)[0].details["status"] == 500
            clock.now += 10.0  # settled, but the cooldown (30 s) holds the second attempt back
            engine.settle()
            assert len(_actions(journal)) == 1
            clock.now += 20.0
            engine.settle()
            assert [(e.kind, e.details["attempt"]) for e in _actions(journal)][-1] == ("action.failed", 2)
            clock.now += 10.0  # still open after the last attempt: escalate, once
            engine.settle()
            engine.settle()
            escalated = _actions(journal, "action.escalated")
            assert len(escalated) == 1 and escalated[0].severity == Severity.CRITICAL
            assert escalated[0].details == {"rule": "restart-encoder", "attempts": 2, "defect_id": first,
                                            "defect_kind": "video.freeze"}
            _close(journal, first, "ch1")
            # A new defect on the same stream inside the cooldown waits; another stream does not.
            second, other = _open(journal, "ch1", start=40.0, duration=3.0), _open(journal, "ch2", duration=3.0)
            clock.now += 5.0
            engine.settle()
            tried = [(e.stream, e.details["defect_id"]) for e in _actions(journal, "action.failed")]
            assert tried[-1] == ("ch2", other) and ("ch1", second) not in tried
            clock.now += 30.0
            engine.settle()
            tried = [(e.stream, e.details["defect_id"], e.details["attempt"]) for e in _actions(journal, "action.failed")]
            assert sorted(tried[-2:]) == [("ch1", second, 1), ("ch2", other, 2)]
            engine.close()
            # A restarted engine picks the open defects up with the attempts already made.
            again = ActionEngine(journal, rules, clock=clock)
            assert again.cases[(second, "restart-encoder")].attempts == 1
            assert again.cases[(other, "restart-encoder")].attempts == 2
            again.close()
    finally:
        encoder.stop()
    paths = [r["path"] for r in encoder.requests]
    assert paths[:3] == ["/encoders/ch1/restart"] * 2 + ["/encoders/ch2/restart"]
    assert sorted(paths[3:]) == ["/encoders/ch1/restart", "/encoders/ch2/restart"]


ARGV_PRINTER = textwrap.dedent("""
    import json, sys
    print(json.dumps(sys.argv[1:]))
""")


@pytest.mark.parametrize("stream_id", ["x; touch pwned", "--flag", "$(touch pwned)", "a b\n--c", "`touch pwned`|ls"])
def test_command_values_stay_one_literal_argument(tmp_path, monkeypatch, stream_id):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "print_argv.py"
    script.write_text(ARGV_PRINTER)
    config = {
        "streams": [{"id": stream_id, "url": "udp://127.0.0.1:5000", "tags": {"region": "eu west; reboot"}}],
        "actions": [{"name": "restart", "kinds": ["video.freeze"], "settle_s": 0,
                     "command": {"argv": [sys.executable, str(script), "--stream", "{stream.id}", "id={stream.id}",
                                          "{stream.tags.region}", "{event.kind}", "--", "{stream.id}"],
                                 "timeout_s": 20}}],
    }
    with Journal(tmp_path / "journal.db") as journal:
        engine = build_actions(config, journal)
        _open(journal, stream_id)
        engine.settle()
        engine.close()
        (outcome,) = _actions(journal)
    assert outcome.kind == "action.succeeded", outcome.details
    assert outcome.details["exit_code"] == 0
    assert json.loads(outcome.details["stdout"]) == ["--stream", stream_id, f"id={stream_id}", "eu west; reboot",
                                                    "video.freeze", "--", stream_id]
    assert not (tmp_path / "pwned").exists()


def test_http_values_cannot_change_the_url_and_a_missing_value_fails_cleanly(tmp_path):
    receiver = Receiver().start()
    config = {
        "streams": [{"id": "../admin?drop=1#x", "url": "udp://127.0.0.1:5000"}],
        "actions": [{"name": "restart", "kinds": ["video.*"], "max_attempts": 1,
                     "http": {"url": receiver.url + "/streams/{stream.id}/restart"}},
                    {"name": "backup", "kinds": ["video.*"], "max_attempts": 1,
                     "http": {"url": receiver.url + "/switch", "json": {"to": "{stream.backup_url}"}}}],
    }
    try:
        with Journal(tmp_path / "journal.db") as journal:
            engine = build_actions(config, journal)
            _open(journal, "../admin?drop=1#x")
            engine.settle()
            engine.close()
            outcomes = {e.details["rule"]: e for e in _actions(journal)}
    finally:
        receiver.stop()
    assert [r["path"] for r in receiver.requests] == ["/streams/..%2Fadmin%3Fdrop%3D1%23x/restart"]
    assert outcomes["restart"].kind == "action.succeeded"
    assert outcomes["backup"].kind == "action.failed"
    assert "stream.backup_url" in outcomes["backup"].details["error"]


def test_bad_action_rules_name_the_key():
    with pytest.raises(ConfigError, match=r"actions\[0\]\.command\.argv.*unknown placeholder \{stream\.password\}"):
        parse_actions([{"name": "a", "command": {"argv": ["echo", "{stream.password}"]}}])
    with pytest.raises(ConfigError, match=r"actions\[0\]: .*exactly one of 'http' or 'command'"):
        parse_actions([{"name": "a"}])
    with pytest.raises(ConfigError, match=r"actions\[1\]\.cooldown_s"):
        parse_actions([{"name": "a", "command": {"argv": ["true"]}},
                       {"name": "b", "cooldown_s": -1, "command": {"argv": ["true"]}}])


def test_a_slow_command_on_one_stream_does_not_hold_back_another(tmp_path):
    receiver = Receiver().start()
    config = {
        "streams": [{"id": "slow", "tags": {"fix": "command"}}, {"id": "fast", "tags": {"fix": "http"}}],
        "actions": [
            {"name": "slow-fix", "kinds": ["video.freeze"], "tags": {"fix": "command"},
             "command": {"argv": [sys.executable, "-c", "import time; time.sleep(3)"]}},
            {"name": "fast-fix", "kinds": ["video.freeze"], "tags": {"fix": "http"},
             "http": {"url": receiver.url + "/switch/{stream.id}"}},
        ],
    }
    try:
        with Journal(tmp_path / "journal.db") as journal:
            engine = build_actions(config, journal)
            _open(journal, "slow")
            _open(journal, "fast")
            engine.step()
            deadline = time.monotonic() + 2.5
            while not _actions(journal) and time.monotonic() < deadline:
                engine.step()
                time.sleep(0.02)
            assert engine.busy, "the HTTP fix waited for the slow command"
            assert [(e.kind, e.stream) for e in _actions(journal)] == [("action.succeeded", "fast")]
            engine.settle()
            assert sorted((e.kind, e.stream) for e in _actions(journal)) == [("action.succeeded", "fast"),
                                                                             ("action.succeeded", "slow")]
            engine.close()
    finally:
        receiver.stop()
