"""PagerDuty Events API v2: payloads valid per the documented schema; every trigger is resolved."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import jsonschema
from receivers import Receiver

from streamqc.events import Event, Severity
from streamqc.sinks.config import parse_notify
from streamqc.sinks.journal import Journal
from streamqc.sinks.service import build_outbox

SCHEMA = json.loads((pathlib.Path(__file__).parent / "schemas" / "pagerduty-events-v2.schema.json").read_text())
AT = "2026-11-26T17:00:00.000Z"


def _accepting_once_rate_limited():
    calls = {"n": 0}

    def respond(request):
        calls["n"] += 1
        if calls["n"] == 2:  # PagerDuty answers 429 when rate limited: retried
            return 429, b'{"status":"throttle event"}'
        body = json.loads(request["body"])
        return 202, json.dumps({"status": "success", "message": "Event processed",
                                "dedup_key": body.get("dedup_key")}).encode()
    return respond


def test_trigger_when_a_defect_starts_and_resolve_when_it_ends(tmp_path, monkeypatch):
    receiver = Receiver(_accepting_once_rate_limited()).start()
    monkeypatch.setenv("PD_KEY", "0123456789abcdef0123456789abcdef")
    config = {
        "streams": [{"id": "news-1", "url": "udp://127.0.0.1:5000", "tags": {"tier": "gold"}},
                    {"id": "news-2", "url": "udp://127.0.0.1:5002", "tags": {"tier": "bronze"}}],
        "notify": [{"name": "pager", "type": "pagerduty", "url": receiver.url + "/v2/enqueue",
                    "routing_key_env": "PD_KEY", "retry": {"initial_s": 0.05, "max_delay_s": 0.2},
                    "routes": [{"kinds": ["video.*", "audio.*", "stream.down", "stream.recovered", "action.*"],
                                "min_severity": "major", "tags": {"tier": "gold"}}]}],
    }
    try:
        with Journal(tmp_path / "journal.db") as journal:
            freeze = journal.append(Event("video.freeze", 12.0, 14.0, Severity.MAJOR, stream="news-1", at=AT, ongoing=True))
            journal.append(Event("audio.dropout", 20.0, 20.2, Severity.MAJOR, stream="news-1", at=AT))
            journal.append(Event("video.freeze", 12.0, 19.5, Severity.MAJOR, stream="news-1", at=AT), event_id=freeze.id)
            # Not for the pager: a minor defect, a bronze stream. The minor one's end is not sent either.
            minor = journal.append(Event("video.black", 30.0, 32.0, Severity.MINOR, stream="news-1", at=AT, ongoing=True))
            journal.append(Event("video.black", 30.0, 40.0, Severity.MAJOR, stream="news-1", at=AT), event_id=minor.id)
            journal.append(Event("video.freeze", 1.0, 3.0, Severity.MAJOR, stream="news-2", at=AT, ongoing=True))
            journal.append(Event("stream.down", 50.0, 55.0, Severity.CRITICAL, stream="news-1", at=AT, ongoing=True))
            journal.append(Event("stream.recovered", 61.0, 61.0, Severity.INFO, stream="news-1", at=AT))
            second = journal.append(Event("video.freeze", 70.0, 72.0, Severity.CRITICAL, stream="news-1", at=AT, ongoing=True))
            journal.append(Event("video.freeze", 70.0, 75.0, Severity.CRITICAL, stream="news-1", at=AT), event_id=second.id)
            # The fix did not clear a black screen: the escalation pages on the defect's own alert.
            third = journal.append(Event("video.black", 80.0, 82.0, Severity.MAJOR, stream="news-1", at=AT, ongoing=True))
            journal.append(Event("action.succeeded", 80.0, 82.0, Severity.INFO, stream="news-1", at=AT,
                                 details={"rule": "switch", "attempt": 1, "defect_id": third.id}))
            journal.append(Event("action.escalated", 80.0, 95.0, Severity.CRITICAL, stream="news-1", at=AT,
                                 details={"rule": "switch", "attempts": 1, "defect_id": third.id,
                                          "defect_kind": "video.black"}))
            journal.append(Event("video.black", 80.0, 99.0, Severity.MAJOR, stream="news-1", at=AT), event_id=third.id)
            outbox = build_outbox(config, journal)
            assert outbox.drain(10)
            outbox.close()
    finally:
        receiver.stop()

    sent = receiver.json_bodies()
    assert len(sent) == 12  # 11 events and one retry after the 429
    for event in sent:
        jsonschema.validate(event, SCHEMA)
        assert event["routing_key"] == "0123456789abcdef0123456789abcdef"
        if event["event_action"] == "trigger":
            dt.datetime.fromisoformat(event["payload"]["timestamp"])
    accepted = [e for i, e in enumerate(sent) if i != 1]
    actions = [(e["event_action"], e["dedup_key"]) for e in accepted]
    assert actions == [
        ("trigger", "streamqc/news-1/video.freeze"),
        ("trigger", "streamqc/news-1/audio.dropout"), ("resolve", "streamqc/news-1/audio.dropout"),
        ("resolve", "streamqc/news-1/video.freeze"),
        ("trigger", "streamqc/news-1/stream.down"), ("resolve", "streamqc/news-1/stream.down"),
        ("trigger", "streamqc/news-1/video.freeze"), ("resolve", "streamqc/news-1/video.freeze"),
        ("trigger", "streamqc/news-1/video.black"), ("trigger", "streamqc/news-1/video.black"),
        ("resolve", "streamqc/news-1/video.black"),
    ]
    first = accepted[0]["payload"]
    assert first["severity"] == "error" and first["source"] == "streamqc:news-1"
    assert first["custom_details"]["defect_id"] == freeze.id and first["summary"].startswith("video.freeze on news-1")
    assert accepted[4]["payload"]["severity"] == "critical"
    assert accepted[9]["payload"]["severity"] == "critical" and accepted[9]["payload"]["class"] == "action.escalated"


def test_a_payload_missing_a_required_field_fails_the_schema():
    # The schema is strict enough to catch what PagerDuty would reject.
    good = {"routing_key": "k", "event_action": "trigger", "dedup_key": "d",
            "payload": {"summary": "s", "source": "x", "severity": "error"}}
    jsonschema.validate(good, SCHEMA)
    for broken in ({**good, "payload": {"summary": "s", "source": "x", "severity": "major"}},
                   {**good, "event_action": "resolve", "dedup_key": None},
                   {k: v for k, v in good.items() if k != "payload"}):
        try:
            jsonschema.validate(broken, SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"accepted {broken}")


def test_bad_notify_config_names_the_key():
    import pytest

    from streamqc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"notify\[0\]\.routes\[0\]\.min_severity"):
        parse_notify([{"name": "p", "type": "pagerduty", "routing_key": "k", "routes": [{"min_severity": "loud"}]}])
    with pytest.raises(ConfigError, match=r"notify\[1\]\.colour: unknown key"):
        parse_notify([{"name": "a", "type": "stdout"}, {"name": "b", "type": "slack", "url": "http://x", "colour": 1}])
    with pytest.raises(ConfigError, match=r"notify\[0\]"):
        parse_notify([{"name": "a", "type": "carrier-pigeon"}])
