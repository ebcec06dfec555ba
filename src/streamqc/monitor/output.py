"""Live event output: the journal, tailed, as JSON lines (or one readable line each) on stdout.

The output is a journal consumer like any notifier: it prints the records past its
cursor and then advances the cursor, so an event is printed only once it is durable,
and the events journaled but not yet printed when the service died are printed by the
next run. Delivery is at-least-once: a crash between printing and advancing prints a
record again (same `id` and `phase`).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO

from streamqc.sinks.journal import Journal, Record

CONSUMER = "stdout"


def json_line(record: Record) -> str:
    """One record: the event contract plus `stream`, `at`, `seq`, `id` and `phase`."""
    return json.dumps(record.to_dict(), separators=(",", ":"))


def text_line(record: Record) -> str:
    event = record.event
    state = "open" if record.phase == "open" else ("" if event.start == event.end else "closed")
    span = f"{event.start:9.2f}" if event.start == event.end else f"{event.start:9.2f}-{event.end:.2f}"
    details = " ".join(f"{k}={v}" for k, v in event.details.items() if k not in ("messages",))
    return f"{event.at} {event.stream} {event.kind} {event.severity.value} {span} {state} {details}".rstrip()


class JournalTail:
    """Print every journal record past the consumer's cursor, as it comes."""

    def __init__(self, journal: Journal, as_json: bool, out: IO[str] | None = None,
                 consumer: str = CONSUMER, poll_s: float = 0.1) -> None:
        self.journal = journal
        self.as_json = as_json
        self.out = out or sys.stdout
        self.consumer = consumer
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="journal-tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Print what is left, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.deliver()

    def deliver(self) -> int:
        delivered = 0
        while True:
            records = self.journal.read(after_seq=self.journal.cursor(self.consumer), limit=500)
            if not records:
                return delivered
            for record in records:
                self.out.write((json_line(record) if self.as_json else text_line(record)) + "\n")
            self.out.flush()
            self.journal.advance(self.consumer, records[-1].seq)
            delivered += len(records)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver()
            except BrokenPipeError:
                return
            self._stop.wait(self.poll_s)
