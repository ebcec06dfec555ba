"""The monitor service as `streamqc monitor` runs it: supervisor + stdout output + signals."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import threading
import time

from streamqc.errors import ConfigError
from streamqc.monitor.config import MonitorConfig, StreamConfig
from streamqc.monitor.output import JournalTail
from streamqc.monitor.supervisor import Supervisor
from streamqc.sinks.journal import Journal


def with_cli_streams(config: MonitorConfig, urls: list[str], workers: int | None, state_dir: str | None) -> MonitorConfig:
    """`--stream URL` (repeatable) adds streams named stream-1, stream-2 ...; flags override the file."""
    streams = list(config.streams)
    taken = {s.id for s in streams}
    number = 0
    for url in urls:
        number += 1
        while f"stream-{number}" in taken:
            number += 1
        streams.append(StreamConfig(id=f"stream-{number}", url=url))
        taken.add(f"stream-{number}")
    update: dict = {"streams": streams}
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        update["workers"] = workers
    if state_dir is not None:
        update["state_dir"] = state_dir
    config = config.model_copy(update=update)
    if not config.streams:
        raise ConfigError("no streams to monitor: give --config streams.yaml or --stream URL")
    return config


def run(config: MonitorConfig, as_json: bool, duration_s: float | None = None) -> None:
    """Monitor until SIGINT/SIGTERM (or `duration_s`), then stop cleanly."""
    journal = Journal(config.journal_path)
    tail = JournalTail(journal, as_json)
    tail.deliver()  # what a previous run journaled but never printed (it was killed)
    tail.start()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Issue 5: the analytics store takes the measurements, the API serves the control surface
    # (imported only when configured: pyarrow and the web stack take seconds to load).
    store = None
    if config.store is not None:
        from streamqc.sinks.store import start_store

        store = start_store(config.store, journal)
    supervisor = Supervisor(config, on_measurement=store.add_measurement if store is not None else None)
    server = None
    metrics = None
    observe = None
    sinks_stop = threading.Event()
    sinks: list[threading.Thread] = []
    try:
        if config.server is not None:
            # /metrics times the notifiers' deliveries: they are wrapped before the outbox starts.
            from streamqc.server.metrics import MonitorMetrics, ObservedNotifier

            metrics = MonitorMetrics(Journal(journal.path), supervisor)
            observe = lambda notifier: ObservedNotifier(notifier, metrics)  # noqa: E731
        if config.notify or config.actions:
            # Notifiers and actions read the journal past their own cursors, in their own
            # threads; a bad section raises ConfigError here, before any stream starts.
            from streamqc.sinks.service import start_sinks

            sinks = start_sinks(config, journal.path, sinks_stop, streams=_stream_info(supervisor), observe=observe)
        supervisor.start()
        if config.server is not None:
            from streamqc.server.serve import start_server

            server = start_server(config.server, journal.path, supervisor, metrics)
        deadline = time.monotonic() + duration_s if duration_s is not None else None
        status_path = pathlib.Path(config.state_dir) / "status.json"
        while not stop.is_set():
            write_status(supervisor, status_path)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            stop.wait(0.5 if remaining is None else min(0.5, remaining))
    finally:
        if server is not None:
            server.stop()
        supervisor.stop()
        sinks_stop.set()
        for thread in sinks:
            thread.join(5.0)  # what is left is delivered by the next run (cursors)
        if store is not None:
            store.close()
        if metrics is not None:
            metrics.journal.close()
        tail.stop()
        journal.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def write_status(supervisor: Supervisor, path: pathlib.Path) -> None:
    """`<state_dir>/status.json`: every stream's status and the workers, for operators and scripts."""
    snapshot = {"at": time.time(), "pid": os.getpid(),
                "streams": [s.to_dict() for s in supervisor.streams()], "workers": supervisor.workers()}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(snapshot, indent=1))
    os.replace(temporary, path)


def _stream_info(supervisor: Supervisor):
    """The sinks' view of the live stream list (streams added through the API included)."""
    from streamqc.sinks.config import StreamInfo

    def lookup(stream_id: str | None):
        stream = supervisor.stream_config(stream_id) if stream_id is not None else None
        return StreamInfo.model_validate(stream.model_dump()) if stream is not None else None

    return lookup
