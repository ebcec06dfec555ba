"""Slack incoming-webhook messages: valid per the documented Block Kit limits, escaped, routed by tags."""

from __future__ import annotations

import json
import pathlib

import jsonschema
from receivers import Receiver

from streamqc.events import Event, Severity
from streamqc.sinks.journal import Journal
from streamqc.sinks.service import build_outbox

SCHEMA = json.loads((pathlib.Path(__file__).parent / "schemas" / "slack-incoming-webhook.schema.json").read_text())
AT = "2026-11-26T17:00:00.000Z"


def test_slack_messages_follow_block_kit_and_only_routed_events_go(tmp_path):
    receiver = Receiver().start()
    config = {
        "streams": [{"id": "<!channel> & co", "tags": {"team": "news"}}, {"id": "sport-1", "tags": {"team": "sport"}}],
        "notify": [{"name": "chat", "type": "slack", "url": receiver.url + "/services/T000/B000/XXXX",
                    "routes": [{"kinds": ["video.*"], "tags": {"team": "news"}},
                               {"kinds": ["action.escalated"]}]}],
    }
    try:
        with Journal(tmp_path / "journal.db") as journal:
            opened = journal.append(Event("video.freeze", 5.0, 7.0, Severity.MAJOR, stream="<!channel> & co", at=AT,
                                          ongoing=True, details={"duration_s": 2.0, "note": "x" * 5000}))
            journal.append(Event("video.freeze", 5.0, 9.25, Severity.MAJOR, stream="<!channel> & co", at=AT),
                           event_id=opened.id)
            journal.append(Event("video.black", 1.0, 4.0, Severity.MAJOR, stream="sport-1", at=AT))  # other team
            journal.append(Event("audio.silence", 1.0, 4.0, Severity.MAJOR, stream="<!channel> & co", at=AT))  # kind
            journal.append(Event("action.escalated", 1.0, 4.0, Severity.CRITICAL, stream="sport-1", at=AT,
                                 details={"rule": "switch", "attempts": 2}))
            outbox = build_outbox(config, journal)
            assert outbox.drain(10)
            outbox.close()
    finally:
        receiver.stop()
    messages = receiver.json_bodies()
    for message in messages:
        jsonschema.validate(message, SCHEMA)
    titles = [m["blocks"][0]["text"]["text"] for m in messages]
    assert [t.split(":")[0] for t in titles[:2]] == ["started", "ended"]
    assert titles[2] == "action.escalated on sport-1 at 1.00 s (critical)"
    started, ended, escalated = messages
    # Slack reads mrkdwn (and the fallback text) as markup: stream names there are escaped.
    marked = [started["text"], *_mrkdwn(started["blocks"])]
    assert not any("<!channel>" in text for text in marked) and "&lt;!channel&gt; &amp; co" in started["text"]
    assert started["blocks"][0]["text"]["type"] == "plain_text"
    assert "video.freeze" in started["text"] and "lasted 4.2 s" in ended["text"]
    assert "action.escalated on sport-1" in escalated["text"]
    assert all(r["headers"]["Content-Type"] == "application/json" for r in receiver.requests)


def _mrkdwn(value):
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn":
            yield value["text"]
        for item in value.values():
            yield from _mrkdwn(item)
    elif isinstance(value, list):
        for item in value:
            yield from _mrkdwn(item)
