"""The event journal: every event is made durable here before anything else sees it.

SQLite in WAL mode with `synchronous=FULL`, so `append` returns only after the record
is fsync'd; several processes (the monitor's workers, the notifier outbox, the API)
open the same file, each with its own connection. Consumers (notifiers, the Parquet
store) keep a cursor: the sequence number of the last record they handled. After a
crash, whatever lies beyond a consumer's cursor is handed to it again, so nothing
journaled is lost and delivery is at-least-once; receivers deduplicate by `key`.

A live defect is journaled twice under one `id`: phase "open" when it has lasted its
minimum duration (the detector's `ongoing` event), phase "closed" with its real end.
A defect reported only when it ends has a "closed" record alone.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from streamqc.events import Event

OPEN = "open"
CLOSED = "closed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL,
    phase   TEXT NOT NULL CHECK (phase IN ('open', 'closed')),
    stream  TEXT,
    kind    TEXT NOT NULL,
    at      TEXT,
    body    TEXT NOT NULL,
    UNIQUE (id, phase)
);
CREATE INDEX IF NOT EXISTS records_stream_kind ON records (stream, kind, seq);
CREATE TABLE IF NOT EXISTS cursors (
    consumer TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
);
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One journaled event: `seq` orders the journal, `key` identifies it to receivers."""

    seq: int
    id: str
    phase: str
    event: Event

    @property
    def key(self) -> str:
        """Idempotency key: the same for every delivery attempt of this record."""
        return f"{self.id}:{self.phase}"

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "phase": self.phase, **self.event.to_dict()}


def new_event_id() -> str:
    return uuid.uuid4().hex


class Journal:
    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per Journal object, shared by its threads under a lock;
        # other processes open their own Journal on the same file.
        self._db = sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False,
                                   isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def append(self, event: Event, event_id: str | None = None, phase: str | None = None) -> Record:
        """Make `event` durable and return its record (idempotent per (id, phase)).

        Without `event_id` the event gets a fresh one; `phase` defaults to "open" for an
        ongoing event and "closed" otherwise.
        """
        event_id = event_id or new_event_id()
        phase = phase or (OPEN if event.ongoing else CLOSED)
        body = json.dumps(event.to_dict(), separators=(",", ":"))
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO records (id, phase, stream, kind, at, body) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id, phase) DO NOTHING RETURNING seq",
                (event_id, phase, event.stream, event.kind, event.at, body))
            row = cur.fetchone()
            if row is None:  # already journaled (a retry after a crash): keep the first
                row = self._db.execute("SELECT seq FROM records WHERE id = ? AND phase = ?",
                                       (event_id, phase)).fetchone()
        return Record(int(row[0]), event_id, phase, event)

    def read(self, after_seq: int = 0, limit: int = 1000, stream: str | None = None,
             kind: str | None = None, since: str | None = None, until: str | None = None) -> list[Record]:
        """Records with seq > after_seq in journal order; filters on stream, kind prefix, `at` range."""
        query = "SELECT seq, id, phase, body FROM records WHERE seq > ?"
        args: list[Any] = [after_seq]
        if stream is not None:
            query += " AND stream = ?"
            args.append(stream)
        if kind is not None:
            query += " AND (kind = ? OR kind LIKE ?)"
            args += [kind, kind.rstrip(".") + ".%"]
        if since is not None:
            query += " AND at >= ?"
            args.append(since)
        if until is not None:
            query += " AND at < ?"
            args.append(until)
        query += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [Record(seq, rid, phase, Event.from_dict(json.loads(body))) for seq, rid, phase, body in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
        return int(row[0])

    def open_defects(self, stream: str | None = None) -> list[Record]:
        """Open records with no closing record yet: defects still going on (or cut by a crash)."""
        query = ("SELECT seq, id, phase, body FROM records r WHERE phase = 'open' AND NOT EXISTS "
                 "(SELECT 1 FROM records c WHERE c.id = r.id AND c.phase = 'closed')")
        args: list[Any] = []
        if stream is not None:
            query += " AND stream = ?"
            args.append(stream)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [Record(seq, rid, phase, Event.from_dict(json.loads(body))) for seq, rid, phase, body in rows]

    def get(self, event_id: str, phase: str) -> Record | None:
        """The record of one defect phase, e.g. the open record a closing one follows."""
        with self._lock:
            row = self._db.execute("SELECT seq, id, phase, body FROM records WHERE id = ? AND phase = ?",
                                   (event_id, phase)).fetchone()
        return None if row is None else Record(row[0], row[1], row[2], Event.from_dict(json.loads(row[3])))

    def cursor(self, consumer: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM cursors WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    def advance(self, consumer: str, seq: int) -> None:
        """Record that `consumer` has handled every record up to `seq` (never moves back)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors (consumer, seq) VALUES (?, ?) "
                "ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)", (consumer, seq))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
