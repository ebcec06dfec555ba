"""Generic webhook: the journal record as JSON, signed in the manner of Stripe's webhooks.

Headers of every attempt:
- `X-Streamqc-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (only with
  a secret); the timestamp is inside the signed text, so a receiver that rejects old
  timestamps (e.g. > 5 minutes) is safe from replays;
- `X-Streamqc-Timestamp: <t>`;
- `X-Streamqc-Event-Id` and `Idempotency-Key`: `Record.key`, the same on every retry, so a
  receiver keeps the first delivery and acknowledges the others.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from streamqc.sinks.journal import Record
from streamqc.sinks.notifiers.base import HttpNotifier

SIGNATURE_HEADER = "X-Streamqc-Signature"
TIMESTAMP_HEADER = "X-Streamqc-Timestamp"
EVENT_ID_HEADER = "X-Streamqc-Event-Id"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """For receivers written in Python: the signature is ours and not older than tolerance_s."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def body_of(record: Record) -> bytes:
    return json.dumps(record.to_dict(), separators=(",", ":"), sort_keys=True).encode()


class WebhookNotifier(HttpNotifier):
    def __init__(self, name: str, url: str, secret: str | None, headers: dict[str, str] | None = None,
                 timeout_s: float = 10.0) -> None:
        super().__init__(name, timeout_s)
        self.url = url
        self.secret = secret
        self.headers = dict(headers or {})

    def send(self, record: Record, defect_opened: bool) -> None:
        body = body_of(record)
        timestamp = int(time.time())
        headers = {**self.headers, TIMESTAMP_HEADER: str(timestamp), EVENT_ID_HEADER: record.key,
                   "Idempotency-Key": record.key, "User-Agent": "streamqc-webhook"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        self.post(self.url, body, headers)
