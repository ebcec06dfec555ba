"""PagerDuty Events API v2 (`POST /v2/enqueue`): trigger when a defect starts, resolve when it ends.

dedup_key: `streamqc/<stream>/<kind>`, stable per stream and kind as the issue asks.
PagerDuty applies events with the same key to the alert that is open, and a trigger after
a resolve opens a new alert; so two separate freezes on one stream become two alerts (the
journal delivers the first one's resolve before the second one's trigger), while a
defect that flaps does not page twice while its alert is open. The defect's own id is in
`custom_details.defect_id`.

- an open record (a defect still going on) -> `trigger`;
- the closed record of a defect that was open -> `resolve`;
- a defect reported only once over (e.g. an audio dropout) -> `trigger` then `resolve`, so
  PagerDuty has it on record without leaving an alert open;
- `stream.recovered` -> `resolve` of the stream's `stream.down` key;
- `action.escalated` (a fix that did not clear a defect) -> `trigger` on the defect's own key
  at critical severity, left open for a person (the defect's end resolves it when the
  defect itself was routed here).
"""

from __future__ import annotations

import json
from typing import Any

from streamqc.sinks.journal import Record
from streamqc.sinks.notifiers.base import HttpNotifier, summary

_SEVERITY = {"critical": "critical", "major": "error", "minor": "warning", "info": "info"}


def dedup_key(stream: str | None, kind: str) -> str:
    return f"streamqc/{stream or '-'}/{kind}"[:255]


def pagerduty_events(record: Record, defect_opened: bool, routing_key: str, source: str) -> list[dict[str, Any]]:
    data = record.to_dict()
    kind, stream = data["kind"], data.get("stream")
    if kind == "stream.recovered":
        return [_resolve(routing_key, dedup_key(stream, "stream.down"))]
    key = dedup_key(stream, kind)
    escalation = kind == "action.escalated"
    if escalation:
        key = dedup_key(stream, str(data.get("details", {}).get("defect_kind", kind)))
    if record.phase == "closed" and defect_opened:
        return [_resolve(routing_key, key)]
    trigger = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary(data)[:1024],
            "source": f"{source}:{stream or '-'}",
            "severity": _SEVERITY.get(data["severity"], "error"),
            "component": stream or "-",
            "group": kind.split(".", 1)[0],
            "class": kind,
            "custom_details": {"defect_id": record.id, "phase": record.phase, "seq": record.seq,
                               "start_s": data["start"], "end_s": data["end"], "details": data.get("details", {})},
        },
        "client": "streamqc",
    }
    if data.get("at"):
        trigger["payload"]["timestamp"] = data["at"]
    return [trigger] if record.phase == "open" or escalation else [trigger, _resolve(routing_key, key)]


def _resolve(routing_key: str, key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}


class PagerDutyNotifier(HttpNotifier):
    def __init__(self, name: str, url: str, routing_key: str, source: str = "streamqc",
                 timeout_s: float = 10.0) -> None:
        super().__init__(name, timeout_s)
        self.url = url
        self.routing_key = routing_key
        self.source = source

    def send(self, record: Record, defect_opened: bool) -> None:
        # A retry after a partial success sends the trigger again: PagerDuty adds it to the
        # open alert, and the resolve that follows closes it.
        for event in pagerduty_events(record, defect_opened, self.routing_key, self.source):
            self.post(self.url, json.dumps(event, separators=(",", ":")).encode(), {"User-Agent": "streamqc-pagerduty"})
