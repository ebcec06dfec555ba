"""Corrective actions: the whole loop on real media, cooldown, attempt cap, escalation, argv injection."""

from __future__ import annotations

import json
import sys
import textwrap
import time

import pytest
from media import frame, make_clip
from receivers import Receiver

from streamqc.check import check_input
from streamqc.errors import ConfigError
from streamqc.events import Event, Severity, utc_now_iso
from streamqc.sinks.actions import ActionEngine
from streamqc.sinks.config import parse_actions
from streamqc.sinks.journal import Journal
from streamqc.sinks.service import build_actions
from streamqc.synth.defects import Freeze


class Clock:
    """Engine time under the test's control (cooldowns of minutes without waiting for them)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _actions(journal: Journal, kind: str | None = None) -> list[Event]:
    return [r.event for r in journal.read(kind=kind or "action")]


class Origin:
    """A test origin: /live.ts serves the primary or the backup feed; POST /switch changes it."""

    def __init__(self, primary: bytes, backup: bytes) -> None:
        self.feeds = {"/primary.ts": primary, "/backup.ts": backup}
        self.current = "/primary.ts"
        self.receiver = Receiver(self.respond)

    def respond(self, request):
        if request["method"] == "POST" and request["path"] == "/switch":
            source = json.loads(request["body"]).get("source", "")
            path = source.removeprefix(self.receiver.url)
            if path not in self.feeds:
                return 400, b"unknown source"
            self.current = path
            return 200, b'{"switched": true}'
        path = "/primary.ts" if request["path"] == "/live.ts" and self.current == "/primary.ts" else (
            "/backup.ts" if request["path"] == "/live.ts" else request["path"])
        return (200, self.feeds[path]) if path in self.feeds else (404, b"")


def _poll(journal: Journal, stream: str, url: str, open_ids: dict[str, str]) -> list[Event]:
    """One look at the live feed, as the monitor would journal it (stands in for it until it lands).

    A defect that runs to the end of what was read is still going on: journaled open once;
    an open defect not seen any more is journaled closed under its id.
    """
    result = check_input(url)
    going_on = {e.kind: e for e in result.events if e.is_defect and e.end >= result.duration - 0.2}
    for kind, event in going_on.items():
        if kind not in open_ids:
            open_ids[kind] = journal.append(Event(kind, event.start, event.end, event.severity, details=event.details,
                                                  stream=stream, at=utc_now_iso(), ongoing=True)).id
    for kind in [k for k in open_ids if k not in going_on]:
        opened = journal.get(open_ids.pop(kind), "open")
        journal.append(Event(kind, opened.event.start, opened.event.end, opened.event.severity, stream=stream,
                             at=utc_now_iso()), event_id=opened.id)
    return result.events


def test_the_action_switches_the_origin_to_its_backup_and_the_defect_clears(tmp_path):
    primary = make_clip(tmp_path / "primary.ts", seconds=5.0, audio=None, defects=[Freeze(frame(1.5), frame(5.0) + 1)])
    backup = make_clip(tmp_path / "backup.ts", seconds=5.0, audio=None, seed=5)
    origin = Origin(primary.read_bytes(), backup.read_bytes())
    origin.receiver.start()
    config = {
        "streams": [{"id": "news-1", "url": origin.receiver.url + "/live.ts",
                     "backup_url": origin.receiver.url + "/backup.ts", "tags": {"tier": "gold"}}],
        "actions": [{"name": "switch-to-backup", "kinds": ["video.freeze", "video.black"], "tags": {"tier": "gold"},
                     "min_duration_s": 2, "cooldown_s": 60, "max_attempts": 2, "settle_s": 5,
                     "http": {"method": "POST", "url": origin.receiver.url + "/switch",
                              "json": {"source": "{stream.backup_url}", "stream": "{stream.id}"}}}],
    }
    clock = Clock()
    open_ids: dict[str, str] = {}
    try:
        with Journal(tmp_path / "journal.db") as journal:
            engine = build_actions(config, journal, clock=clock)
            live = config["streams"][0]["url"]
            first = _poll(journal, "news-1", live, open_ids)
            assert [e.kind for e in first if e.is_defect] == ["video.freeze"] and "video.freeze" in open_ids
            engine.settle()
            done = _actions(journal)
            assert [e.kind for e in done] == ["action.succeeded"]
            assert done[0].details["status"] == 200 and done[0].details["attempt"] == 1
            assert done[0].stream == "news-1" and done[0].details["defect_kind"] == "video.freeze"
            switch = [r for r in origin.receiver.requests if r["path"] == "/switch"]
            assert [json.loads(r["body"]) for r in switch] == [{"source": config["streams"][0]["backup_url"],
                                                                 "stream": "news-1"}]
            second = _poll(journal, "news-1", live, open_ids)  # the monitor looks again
            assert [e for e in second if e.is_defect] == [] and open_ids == {}
            assert journal.open_defects() == []
            clock.now += 60
            engine.settle()
            assert [e.kind for e in _actions(journal)] == ["action.succeeded"], "cleared: no retry, no escalation"
            engine.close()
    finally:
        origin.receiver.stop()


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
