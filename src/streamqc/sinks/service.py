"""Starting the alerting sinks from the monitor config, and `streamqc notify-test`.

The monitor calls `start_sinks(config, journal_path, stop_event)` once; the outbox and the
action engine then read the journal in their own threads (their own Journal connection),
and stop when `stop_event` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from streamqc.events import Event, Severity, utc_now_iso
from streamqc.sinks.actions import ActionEngine
from streamqc.sinks.config import StreamInfo, parse_actions, parse_notify, parse_streams
from streamqc.sinks.journal import CLOSED, Journal, Record, new_event_id
from streamqc.sinks.notifiers import DeliveryError, Notifier, build_notifier
from streamqc.sinks.outbox import Outbox


def _section(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    value = getattr(config, name, None)
    if isinstance(value, list):  # pydantic models of the monitor config: back to plain data
        return [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
    return value


NotifierWrapper = Callable[[Notifier], Notifier]


def build_outbox(config: Any, journal: Journal | str | Path,
                 streams: Callable[[str | None], StreamInfo | None] | None = None,
                 observe: NotifierWrapper | None = None, **options: Any) -> Outbox:
    """The outbox for the config's `notify:` section (ConfigError names a bad key).

    `observe` wraps each notifier (the API's metrics time deliveries and count failures).
    """
    configs = parse_notify(_section(config, "notify"))
    lookup = streams or _stream_lookup(config)
    wrap = observe or (lambda notifier: notifier)
    notifiers = [(wrap(build_notifier(c)), _router(c), c.retry) for c in configs]

    def tags(stream: str | None) -> Mapping[str, str]:
        info = lookup(stream)
        return info.tags if info else {}

    return Outbox(journal, notifiers, tags=tags, **options)


def build_actions(config: Any, journal: Journal,
                  streams: Callable[[str | None], StreamInfo | None] | None = None, **options: Any) -> ActionEngine:
    rules = parse_actions(_section(config, "actions"))
    return ActionEngine(journal, rules, streams or _stream_lookup(config), **options)


def _router(config: Any) -> Callable[[Record, Mapping[str, str], bool], bool]:
    return lambda record, tags, check_severity: config.wants(record.event, tags, check_severity)


def _stream_lookup(config: Any) -> Callable[[str | None], StreamInfo | None]:
    known = parse_streams(_section(config, "streams"))
    return lambda stream: known.get(stream) if stream is not None else None


def start_sinks(config: Any, journal_path: str | Path, stop_event: threading.Event,
                streams: Callable[[str | None], StreamInfo | None] | None = None,
                observe: NotifierWrapper | None = None) -> list[threading.Thread]:
    """Start the outbox (when `notify:` has notifiers) and the action engine (when `actions:` has rules).

    `config`: the monitor config (a mapping or its pydantic model) with `notify`, `actions`
    and `streams`; `streams`: a lookup of the live stream list (streams added through the
    API), instead of the config's; `observe`: wraps each notifier (`ObservedNotifier` for
    the API's metrics). Validation happens here, before any thread starts.
    """
    threads: list[threading.Thread] = []
    if _section(config, "notify"):
        outbox = build_outbox(config, journal_path, streams, observe)
        threads.append(threading.Thread(target=_run_and_close, args=(outbox, stop_event), name="streamqc-outbox",
                                        daemon=True))
    if _section(config, "actions"):
        parse_actions(_section(config, "actions"))  # fail here, in the caller, on a bad rule
        threads.append(threading.Thread(target=_run_actions, args=(config, journal_path, streams, stop_event),
                                        name="streamqc-actions", daemon=True))
    for thread in threads:
        thread.start()
    return threads


def _run_and_close(outbox: Outbox, stop_event: threading.Event) -> None:
    try:
        outbox.run(stop_event)
    finally:
        outbox.close()


def _run_actions(config: Any, journal_path: str | Path, streams: Any, stop_event: threading.Event) -> None:
    with Journal(journal_path) as journal:
        engine = build_actions(config, journal, streams)
        try:
            engine.run(stop_event)
        finally:
            engine.close()


def sample_record() -> Record:
    event = Event("notify.test", 0.0, 0.0, Severity.INFO, confidence=1.0,
                  details={"message": "streamqc notify-test: this notifier works"}, stream="streamqc-test",
                  at=utc_now_iso())
    return Record(0, new_event_id(), CLOSED, event)


def send_test(config: Any) -> list[tuple[str, str | None]]:
    """Send one `notify.test` event through every configured notifier, past the routes.

    Returns (notifier name, None when delivered or the reason it was not).
    """
    results = []
    record = sample_record()
    for notifier_config in parse_notify(_section(config, "notify")):
        notifier: Notifier = build_notifier(notifier_config)
        try:
            notifier.send(record, defect_opened=False)
            results.append((notifier.name, None))
        except DeliveryError as err:
            results.append((notifier.name, str(err)))
        finally:
            notifier.close()
    return results
