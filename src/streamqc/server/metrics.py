"""Prometheus metrics for `/metrics`, in a registry of their own.

How the numbers reach the API server (which runs in the monitor's main process, beside
the supervisor): nothing is shared between processes. Worker processes already send
the supervisor a status snapshot of each stream twice a second (state, frames, media
seconds, decode errors, lag); a scrape reads those snapshots through
`control.streams()`, so the per-stream figures are at most half a second old and need
no multiprocess files. Defect counts come from the journal, which every worker writes
and this process reads past its own in-memory cursor on each scrape. Notification
latency and failures are observed in the same main process, where the notifier outbox
runs: wrap each notifier in `ObservedNotifier` before handing it to the outbox.

Counters taken from a worker's snapshot restart from 0 when its worker is replaced;
Prometheus' rate() and increase() treat that as a counter reset, as intended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamqc.events import Severity
from streamqc.sinks.journal import CLOSED, OPEN, Journal, Record
from streamqc.sinks.notifiers.base import DeliveryError, Notifier
from streamqc.sinks.store import parse_at

STATES = ("starting", "ok", "degraded", "down", "paused")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Control(Protocol):
    """What the metrics (and the API) need of the supervisor."""

    def streams(self) -> list[Any]: ...


class _StreamCollector(Collector):
    """Per-stream figures from the supervisor's latest snapshots, read at scrape time."""

    def __init__(self, control: Control | None) -> None:
        self.control = control

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("streamqc_stream_state", "1 for the state the stream is in, 0 for the others",
                                  labels=["stream", "state"])
        frames = CounterMetricFamily("streamqc_frames_processed", "Video frames decoded and analysed",
                                     labels=["stream"])
        seconds = CounterMetricFamily("streamqc_media_seconds_processed", "Seconds of media processed",
                                      labels=["stream"])
        errors = CounterMetricFamily("streamqc_decode_errors", "Packets or frames the decoder rejected",
                                     labels=["stream"])
        lag = GaugeMetricFamily("streamqc_processing_lag_seconds", "How far processing is behind real time",
                                labels=["stream"])
        for status in self.control.streams() if self.control is not None else []:
            for name in STATES:
                state.add_metric([status.id, name], 1.0 if status.state == name else 0.0)
            frames.add_metric([status.id], float(status.frames))
            seconds.add_metric([status.id], float(status.media_seconds))
            errors.add_metric([status.id], float(status.decode_errors))
            lag.add_metric([status.id], float(status.processing_lag_s))
        yield from (state, frames, seconds, errors, lag)


class MonitorMetrics:
    def __init__(self, journal: Journal, control: Control | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.journal = journal
        self.registry.register(_StreamCollector(control))
        self.defects = Counter("streamqc_defects", "Defects seen (severity minor or worse, not action.*; once per id)",
                               ["stream", "kind"], registry=self.registry)
        self.notification_latency = Histogram(
            "streamqc_notification_latency_seconds", "From an event being journaled to its notification delivered",
            ["notifier"], registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0))
        self.notification_failures = Counter("streamqc_notification_failures", "Notification attempts that failed",
                                             ["notifier"], registry=self.registry)
        self._lock = threading.Lock()
        self._after = 0
        self._open_ids: set[str] = set()  # announced defects: their closing record is not counted again

    def notification_delivered(self, notifier: str, latency_s: float) -> None:
        self.notification_latency.labels(notifier).observe(max(0.0, latency_s))

    def notification_failed(self, notifier: str) -> None:
        self.notification_failures.labels(notifier).inc()

    def count_defects(self, batch: int = 5000) -> None:
        """Count the journal records written since the last call."""
        with self._lock:
            while True:
                records = self.journal.read(after_seq=self._after, limit=batch)
                for record in records:
                    event = record.event
                    if event.severity.rank < Severity.MINOR.rank or event.kind.startswith("action."):
                        continue  # notes, and the outcomes of corrective actions, are not defects
                    if record.phase == OPEN:
                        self._open_ids.add(record.id)
                    elif record.phase == CLOSED and record.id in self._open_ids:
                        self._open_ids.discard(record.id)
                        continue
                    self.defects.labels(event.stream or "unknown", event.kind).inc()
                if len(records) < batch:
                    if records:
                        self._after = records[-1].seq
                    return
                self._after = records[-1].seq

    def exposition(self) -> bytes:
        self.count_defects()
        return generate_latest(self.registry)


class ObservedNotifier(Notifier):
    """A notifier whose deliveries are timed and whose failed attempts are counted.

    Latency runs from the event's `at` (when the monitor journaled it) to the delivery
    that succeeded, retries included: what the person paged waited. Every attempt that
    raises DeliveryError counts as a failure, whether it is retried or dead-lettered.
    """

    def __init__(self, inner: Notifier, metrics: MonitorMetrics, clock: Callable[[], float] = time.time) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.metrics = metrics
        self.clock = clock

    def send(self, record: Record, defect_opened: bool) -> None:
        try:
            self.inner.send(record, defect_opened)
        except DeliveryError:
            self.metrics.notification_failed(self.name)
            raise
        if record.event.at:
            self.metrics.notification_delivered(self.name, self.clock() - parse_at(record.event.at).timestamp())

    def close(self) -> None:
        self.inner.close()
