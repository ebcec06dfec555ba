"""What every notifier shares: `send(record)`, and how an HTTP answer becomes retry or give-up."""

from __future__ import annotations

import email.utils
import time
from typing import Any, ClassVar

import httpx

from streamqc.sinks.journal import Record


class DeliveryError(Exception):
    """A delivery that did not succeed; `retry_after_s` is the receiver's own hint, if any."""

    permanent: ClassVar[bool] = False

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class RetryableError(DeliveryError):
    """Timeouts, refused connections, 5xx, 408 and 429: the same request may succeed later."""


class PermanentError(DeliveryError):
    """Other 4xx: the receiver rejects this request as it is; sending it again will not help."""

    permanent = True


class Notifier:
    """Subclasses set `name` and implement `send`; a notifier keeps no delivery state."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, record: Record, defect_opened: bool) -> None:
        """Deliver one journaled record or raise DeliveryError.

        `defect_opened`: for a closed record, whether the same defect was journaled open
        first (an alert for it went out when it started).
        """
        raise NotImplementedError

    def close(self) -> None:
        pass


class HttpNotifier(Notifier):
    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(name)
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            response = self.client.post(url, content=content, headers={"Content-Type": "application/json", **headers})
        except httpx.TimeoutException as err:
            raise RetryableError(f"timeout: {type(err).__name__}") from None
        except httpx.TransportError as err:
            raise RetryableError(f"{type(err).__name__}: {err}") from None
        raise_for_delivery(response)
        return response

    def close(self) -> None:
        self.client.close()


def raise_for_delivery(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status}: {response.text[:200]!r}"
    if status in (408, 425, 429) or status >= 500:
        raise RetryableError(reason, retry_after(response.headers.get("Retry-After")))
    raise PermanentError(reason)


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def summary(data: dict[str, Any]) -> str:
    """`video.freeze on news-1 at 12.40 s (major)`: one line for chat and pager titles."""
    stream = data.get("stream") or "?"
    text = f"{data['kind']} on {stream} at {data['start']:.2f} s ({data['severity']})"
    if data.get("phase") == "closed" and not data["kind"].startswith("action.") and data["end"] > data["start"]:
        text += f", lasted {data['end'] - data['start']:.1f} s"
    return text
