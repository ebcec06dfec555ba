"""The outbox: each notifier reads the journal past its own cursor and delivers in order.

- The cursor (`notify.<name>` in the journal) moves only after a record is delivered,
  dead-lettered or not routed to that notifier; after a restart delivery resumes where
  it stopped, so delivery is at-least-once and `Record.key` lets receivers drop repeats.
- A failure that may pass (timeout, refused connection, 5xx, 429) is retried with
  exponential backoff (jittered, capped); the notifier waits on that record (keeping
  order) while the other notifiers, each in its own thread, go on.
- A permanent failure (other 4xx), or `retry.max_attempts` attempts, or `retry.max_age_s`
  since the first failure, writes a dead letter (`dead-letters.jsonl` beside the journal)
  with a warning in the log, and the notifier moves on.
- Routing: a record goes to a notifier when one of its routes matches. The closing record
  of a defect that was journaled open goes wherever its open record went, so an alert
  that was raised is always ended (a PagerDuty trigger gets its resolve); so does
  `stream.recovered`, whatever the route's minimum severity.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from streamqc.events import utc_now_iso
from streamqc.sinks.config import Retry
from streamqc.sinks.journal import CLOSED, OPEN, Journal, Record
from streamqc.sinks.notifiers.base import DeliveryError, Notifier

log = logging.getLogger("streamqc.outbox")

TagLookup = Callable[[str | None], Mapping[str, str]]
Router = Callable[[Record, Mapping[str, str], bool], bool]


ENDING_NOTES = frozenset({"stream.recovered"})


def cursor_name(notifier: str) -> str:
    return f"notify.{notifier}"


def backoff_s(attempts: int, retry: Retry, rng: random.Random, hint_s: float | None = None) -> float:
    """Delay before attempt `attempts + 1`: initial * 2^(attempts-1), capped, jittered in [1/2, 1]."""
    ceiling = min(retry.max_delay_s, retry.initial_s * 2.0 ** max(0, attempts - 1))
    delay = ceiling * rng.uniform(0.5, 1.0)
    if hint_s is not None:  # the receiver's Retry-After, within our cap
        delay = max(delay, min(hint_s, retry.max_delay_s))
    return delay


@dataclasses.dataclass(slots=True)
class _Failing:
    seq: int
    attempts: int
    first_failure: float
    due: float
    reason: str = ""


class DeadLetters:
    """Records a notifier gave up on, as JSON lines (fsync'd): what, where, why, how often tried."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, notifier: str, record: Record, attempts: int, reason: str) -> None:
        line = json.dumps({"at": utc_now_iso(), "notifier": notifier, "key": record.key, "seq": record.seq,
                           "attempts": attempts, "reason": reason, "record": record.to_dict()})
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Consumer:
    """One notifier's place in the journal and its retry state."""

    def __init__(self, journal: Journal, notifier: Notifier, routes: Router, retry: Retry, tags: TagLookup,
                 dead_letters: DeadLetters, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, batch: int = 200) -> None:
        self.journal = journal
        self.notifier = notifier
        self.routes = routes
        self.retry = retry
        self.tags = tags
        self.dead_letters = dead_letters
        self.clock = clock
        self.rng = rng or random.Random()
        self.batch = batch
        self.cursor_name = cursor_name(notifier.name)
        self.cursor = journal.cursor(self.cursor_name)
        self.failing: _Failing | None = None
        self.delivered = 0

    def step(self, idle_s: float) -> float:
        """Handle what is due; the seconds to wait before the next call (0: call again now)."""
        if self.failing is not None:
            wait = self.failing.due - self.clock()
            if wait > 0:
                return wait
        records = self.journal.read(after_seq=self.cursor, limit=self.batch)
        if not records:
            return idle_s
        skipped_to = None
        try:
            for record in records:
                opened = self._opened(record)
                if not self._routed(record, opened):
                    skipped_to = record.seq
                    continue
                if skipped_to is not None:
                    self._advance(skipped_to)
                    skipped_to = None
                wait = self._attempt(record, opened is not None)
                if wait > 0:
                    return wait
                self._advance(record.seq)
        finally:
            if skipped_to is not None:
                self._advance(skipped_to)
        return 0.0

    def _opened(self, record: Record) -> Record | None:
        return self.journal.get(record.id, OPEN) if record.phase == CLOSED else None

    def _routed(self, record: Record, opened: Record | None) -> bool:
        decisive = opened or record
        tags = self.tags(decisive.event.stream)
        # `stream.recovered` is an info note that ends a `stream.down` alert: it goes where
        # its kind and tags say, whatever the route's minimum severity.
        return self.routes(decisive, tags, decisive.event.kind not in ENDING_NOTES)

    def _attempt(self, record: Record, defect_opened: bool) -> float:
        now = self.clock()
        state = self.failing if self.failing is not None and self.failing.seq == record.seq else None
        try:
            self.notifier.send(record, defect_opened)
        except DeliveryError as err:
            attempts = (state.attempts if state else 0) + 1
            first = state.first_failure if state else now
            reason = str(err)
            if err.permanent or attempts >= self.retry.max_attempts or now - first >= self.retry.max_age_s:
                why = "rejected" if err.permanent else f"gave up after {attempts} attempts"
                log.warning("notifier %s: %s %s (%s): %s; dead letter written to %s", self.notifier.name, why,
                            record.key, record.event.kind, reason, self.dead_letters.path)
                self.dead_letters.write(self.notifier.name, record, attempts, reason)
                self.failing = None
                return 0.0
            delay = backoff_s(attempts, self.retry, self.rng, err.retry_after_s)
            if attempts == 1:
                log.info("notifier %s: %s failed (%s), retrying", self.notifier.name, record.key, reason)
            self.failing = _Failing(record.seq, attempts, first, now + delay, reason)
            return delay
        if state is not None:
            log.info("notifier %s: %s delivered after %d failed attempts", self.notifier.name, record.key,
                     state.attempts)
        self.failing = None
        self.delivered += 1
        return 0.0

    def _advance(self, seq: int) -> None:
        self.journal.advance(self.cursor_name, seq)
        self.cursor = max(self.cursor, seq)


class Outbox:
    """Delivers the journal to notifiers: `run(stop_event)` in threads, or `drain()` at once."""

    def __init__(self, journal: Journal | str | Path, notifiers: list[tuple[Notifier, Router, Retry]],
                 tags: TagLookup | None = None, poll_s: float = 0.1, dead_letter_path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self._own_journal = not isinstance(journal, Journal)
        self.journal = journal if isinstance(journal, Journal) else Journal(journal)
        self.poll_s = poll_s
        self.dead_letters = DeadLetters(dead_letter_path or self.journal.path.with_name("dead-letters.jsonl"))
        lookup = tags or (lambda stream: {})
        self.consumers = [Consumer(self.journal, notifier, router, retry, lookup, self.dead_letters, clock, rng)
                          for notifier, router, retry in notifiers]

    def run(self, stop_event: threading.Event) -> None:
        """Deliver until `stop_event` is set: one thread per notifier, so a dead receiver blocks only its own."""
        threads = [threading.Thread(target=self._run_one, args=(c, stop_event), name=f"outbox-{c.notifier.name}",
                                    daemon=True) for c in self.consumers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _run_one(self, consumer: Consumer, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                wait = consumer.step(self.poll_s)
            except Exception:  # a bug must not stop alerting for good: log it and try again
                log.exception("notifier %s: unexpected error", consumer.notifier.name)
                wait = max(self.poll_s, 1.0)
            if wait > 0:
                stop_event.wait(min(wait, 1.0))

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Deliver (or dead-letter) everything journaled so far, waiting out backoffs; True when done."""
        target = self.journal.last_seq()
        deadline = time.monotonic() + timeout_s
        while True:
            waits = [c.step(0.0) for c in self.consumers if c.cursor < target]
            pending = [c for c in self.consumers if c.cursor < target]
            if not pending:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            positive = [w for w in waits if w > 0]
            if positive and len(positive) == len(waits):
                time.sleep(min(min(positive), remaining))

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.notifier.close()
        if self._own_journal:
            self.journal.close()
