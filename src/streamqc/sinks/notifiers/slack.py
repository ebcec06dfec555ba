"""Slack incoming webhook: `text` (the notification's fallback) and Block Kit `blocks`.

Limits from Slack's Block Kit reference: header text <= 150 characters (plain_text),
section text <= 3000, up to 10 fields of <= 2000, context up to 10 elements.
Slack reads `&`, `<` and `>` as markup (`<!channel>` would ping everyone), so text that
comes from streams and events is escaped.
"""

from __future__ import annotations

import json
from typing import Any

from streamqc.sinks.journal import Record
from streamqc.sinks.notifiers.base import HttpNotifier, summary

_ICONS = {"critical": ":red_circle:", "major": ":large_orange_circle:", "minor": ":large_yellow_circle:",
          "info": ":large_blue_circle:"}


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(record: Record, defect_opened: bool = False) -> dict[str, Any]:
    """A defect's start ("started: ..."), its end ("ended: ..."), or an event reported once."""
    data = record.to_dict()
    title = summary(data)
    if record.phase == "open":
        title, icon = f"started: {title}", _ICONS.get(data["severity"], "")
    elif defect_opened:
        title, icon = f"ended: {title}", ":white_check_mark:"
    else:
        icon = _ICONS.get(data["severity"], "")
    fields = [
        ("Stream", data.get("stream") or "?"),
        ("Kind", data["kind"]),
        ("Severity", data["severity"]),
        ("Media time", f"{data['start']:.2f} – {data['end']:.2f} s"),
    ]
    if data.get("at"):
        fields.append(("Detected at", data["at"]))
    details = json.dumps(data.get("details") or {}, sort_keys=True)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f"*{name}*\n{escape(str(value))}", 2000)}
                                       for name, value in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"```{escape(details)}```", 3000)}},
        {"type": "context",
         "elements": [{"type": "mrkdwn", "text": escape(f"streamqc · {record.key} · seq {record.seq}")}]},
    ]
    return {"text": _clip(f"{icon} {escape(title)}".strip(), 3000), "blocks": blocks}


class SlackNotifier(HttpNotifier):
    def __init__(self, name: str, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(name, timeout_s)
        self.url = url

    def send(self, record: Record, defect_opened: bool) -> None:
        body = json.dumps(slack_message(record, defect_opened), separators=(",", ":")).encode()
        self.post(self.url, body, {"User-Agent": "streamqc-slack"})
