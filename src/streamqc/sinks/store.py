"""The analytics store: events and per-second measurements as Parquet, in Hive layout.

    <root>/events/date=YYYY-MM-DD/stream=<id>/part-<n>.parquet
    <root>/measurements/date=YYYY-MM-DD/stream=<id>/part-<n>.parquet

`<root>` is a local folder (the default, `./streamqc-data`) or `s3://bucket/prefix` on
any S3-compatible server (pyarrow's S3 filesystem; `endpoint_url` for MinIO, Ceph and
the like; credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` or the config).
`date` is the UTC day of the row's `at`; the partition values live in the paths only.

Events come from the journal: the writer is a journal consumer (cursor `store`), so
every journaled record reaches the store at least once, also across crashes; a record
written twice (a crash between the write and the cursor's advance) has the same
(`id`, `phase`), which readers deduplicate on. Measurement rows are handed over by
the monitor (`add_measurement`) and kept in memory until the next roll: a crash loses
at most `roll_s` of them, never an event.

Rows are buffered and written every `roll_s` seconds (and on close), one file per
day and stream, so files stay few and large enough for columnar reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from streamqc.errors import ConfigError
from streamqc.sinks.config import validate_section
from streamqc.sinks.journal import Journal, Record

CONSUMER = "store"
EVENTS = "events"
MEASUREMENTS = "measurements"

TIMESTAMP = pa.timestamp("ms", tz="UTC")
EVENT_SCHEMA = pa.schema([
    ("seq", pa.int64()),
    ("id", pa.string()),
    ("phase", pa.string()),  # open | closed (see sinks/journal.py)
    ("kind", pa.string()),
    ("severity", pa.string()),
    ("confidence", pa.float64()),
    ("start", pa.float64()),  # media time, seconds
    ("end", pa.float64()),
    ("ongoing", pa.bool_()),
    ("at", TIMESTAMP),  # wall clock when the monitor journaled it
    ("details", pa.string()),  # JSON
])
# The figures a measurement row may carry (detectors' measure() plus the runner's own);
# a column a row lacks is null. `corruption_score` is reserved for the corruption detector.
MEASUREMENT_COLUMNS = ("media_time", "processing_lag_s", "luma_mean", "motion", "corruption_score",
                       "momentary_lufs", "audio_level_dbfs")
MEASUREMENT_SCHEMA = pa.schema([("at", TIMESTAMP)] + [(name, pa.float64()) for name in MEASUREMENT_COLUMNS])


class StoreConfig(BaseModel):
    """The `store:` section of the monitor config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "./streamqc-data"  # a folder, or s3://bucket/prefix
    roll_s: float = Field(300.0, gt=0)  # write buffered rows this often
    endpoint_url: str | None = None  # S3-compatible server, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL)
    region: str | None = None  # default: $AWS_REGION, else us-east-1
    access_key_id: str | None = None  # default: $AWS_ACCESS_KEY_ID
    secret_access_key: str | None = None  # default: $AWS_SECRET_ACCESS_KEY
    max_buffered_rows: int = Field(1_000_000, gt=0)  # measurements kept while the store is unreachable

    @classmethod
    def from_section(cls, section: Any) -> "StoreConfig":
        return validate_section(cls, section, "store")


@dataclass(frozen=True)
class Location:
    """Where the store lives: a pyarrow filesystem and the root path on it."""

    filesystem: pafs.FileSystem
    root: str
    local: bool

    def path(self, *parts: str) -> str:
        return "/".join((self.root.rstrip("/"),) + parts)


def open_location(url: str, endpoint_url: str | None = None, region: str | None = None,
                  access_key_id: str | None = None, secret_access_key: str | None = None) -> Location:
    """A folder path (or file://) or s3://bucket[/prefix]; ConfigError for anything else."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"store url {url!r}: no bucket (expected s3://bucket/prefix)")
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {
            "region": region or os.environ.get("AWS_REGION") or "us-east-1",
            "access_key": access_key_id or os.environ.get("AWS_ACCESS_KEY_ID"),
            "secret_key": secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        }
        if bool(options["access_key"]) != bool(options["secret_key"]):
            raise ConfigError("store: give both an access key id and a secret access key, or neither")
        if not options["access_key"]:
            options.update(access_key=None, secret_key=None, anonymous=True)
        if endpoint:
            where = urllib.parse.urlsplit(endpoint)
            if where.scheme not in ("http", "https") or not where.netloc:
                raise ConfigError(f"store endpoint_url {endpoint!r}: expected http(s)://host:port")
            options.update(endpoint_override=where.netloc, scheme=where.scheme)
        # An unreachable server fails in seconds, not after the SDK's long default retries.
        options.update(connect_timeout=5.0, request_timeout=30.0,
                       retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3))
        options = {k: v for k, v in options.items() if v is not None}
        filesystem = pafs.S3FileSystem(**options)
        return Location(filesystem, f"{parsed.netloc}{parsed.path}".rstrip("/"), local=False)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = parsed.path if parsed.scheme == "file" else url
        return Location(pafs.LocalFileSystem(), os.path.abspath(path), local=True)
    raise ConfigError(f"store url {url!r}: expected a folder or s3://bucket/prefix")


def location_of(config: StoreConfig) -> Location:
    return open_location(config.url, config.endpoint_url, config.region, config.access_key_id,
                         config.secret_access_key)


def parse_at(value: str | None) -> dt.datetime:
    """An event's `at` (ISO 8601, 'Z' or an offset) as an aware UTC datetime; now when missing."""
    if not value:
        return dt.datetime.now(dt.timezone.utc)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def event_row(record: Record) -> dict[str, Any]:
    event = record.event
    return {
        "seq": record.seq, "id": record.id, "phase": record.phase, "kind": event.kind,
        "severity": event.severity.value, "confidence": event.confidence, "start": event.start,
        "end": event.end, "ongoing": event.ongoing, "at": parse_at(event.at),
        "details": json.dumps(event.details, separators=(",", ":"), default=str),
        "stream": event.stream or "unknown",
    }


def measurement_row(row: dict[str, Any]) -> dict[str, Any]:
    """A monitor measurement {stream, at, media_time, ...} as a store row (unknown figures dropped)."""
    out: dict[str, Any] = {"stream": str(row.get("stream") or "unknown"), "at": parse_at(row.get("at"))}
    for name in MEASUREMENT_COLUMNS:
        value = row.get(name)
        out[name] = None if value is None else float(value)
    return out


class StoreWriter:
    """Journal consumer + measurement buffer, rolled to Parquet every `roll_s`."""

    def __init__(self, journal: Journal, config: StoreConfig | None = None,
                 location: Location | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.journal = journal
        self.config = config or StoreConfig()
        self.location = location or location_of(self.config)
        self._clock = clock
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._measurements: list[dict[str, Any]] = []
        self._read_up_to = journal.cursor(CONSUMER)  # seq of the last record buffered
        self._last_roll = clock()
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_written = 0
        self.last_error: str | None = None

    # -- input ------------------------------------------------------------------
    def add_measurement(self, row: dict[str, Any]) -> None:
        """One per-second row from the monitor (thread-safe; kept in memory until the roll)."""
        converted = measurement_row(row)
        with self._lock:
            if len(self._measurements) >= self.config.max_buffered_rows:
                self._measurements.pop(0)  # the store has been unreachable for long: oldest go first
                self._dropped += 1
            self._measurements.append(converted)

    def poll(self, batch: int = 1000) -> int:
        """Buffer the journal records past what was read; returns how many were new."""
        count = 0
        while True:
            records = self.journal.read(after_seq=self._read_up_to, limit=batch)
            if not records:
                return count
            with self._lock:
                self._events.extend(event_row(r) for r in records)
            self._read_up_to = records[-1].seq
            count += len(records)

    # -- output -----------------------------------------------------------------
    def roll(self) -> list[str]:
        """Write everything buffered; advance the journal cursor once the events are stored.

        On a write error the rows stay buffered for the next roll (and the error is kept
        in `last_error`), so an unreachable S3 server delays rows but loses no event.
        """
        with self._lock:
            events, self._events = self._events, []
            measurements, self._measurements = self._measurements, []
            read_up_to = self._read_up_to
        self._last_roll = self._clock()
        written: list[str] = []
        try:
            written += self._write(EVENTS, events, EVENT_SCHEMA)
            events = []
            written += self._write(MEASUREMENTS, measurements, MEASUREMENT_SCHEMA)
            measurements = []
        except (OSError, pa.ArrowException) as err:
            self.last_error = f"{type(err).__name__}: {err}"
            print(f"streamqc store: cannot write to {self.config.url}: {self.last_error}; will retry",
                  file=sys.stderr, flush=True)
            with self._lock:  # put back what was not written, in order
                self._events[:0] = events
                self._measurements[:0] = measurements
            if events:
                return written
        self.journal.advance(CONSUMER, read_up_to)
        if self._dropped:
            print(f"streamqc store: dropped {self._dropped} measurement rows (buffer full)", file=sys.stderr)
            self._dropped = 0
        self.files_written += len(written)
        return written

    def _write(self, table_name: str, rows: list[dict[str, Any]], schema: pa.Schema) -> list[str]:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["at"].date().isoformat(), row["stream"]), []).append(row)
        fs, paths = self.location.filesystem, []
        part = f"part-{int(time.time() * 1000)}-{secrets.token_hex(3)}.parquet"
        for (date, stream), group in sorted(groups.items()):
            folder = self.location.path(table_name, f"date={date}", f"stream={stream}")
            table = pa.Table.from_pylist(group, schema=schema)  # the stream key is in the path, not the file
            fs.create_dir(folder, recursive=True)
            path = f"{folder}/{part}"
            if self.location.local:
                # Readers glob *.parquet: a half-written file is never seen under that name.
                pq.write_table(table, path + ".tmp", filesystem=fs)
                fs.move(path + ".tmp", path)
            else:
                pq.write_table(table, path, filesystem=fs)  # an S3 PUT appears whole or not at all
            paths.append(path)
        return paths

    # -- lifecycle --------------------------------------------------------------
    def due(self) -> bool:
        return self._clock() - self._last_roll >= self.config.roll_s

    def start(self, poll_s: float = 1.0) -> "StoreWriter":
        """Poll the journal every `poll_s` and roll every `roll_s`, on a thread, until close()."""
        def loop() -> None:
            while not self._stop.wait(poll_s):
                self.poll()
                if self.due():
                    self.roll()
        self._thread = threading.Thread(target=loop, name="streamqc-store", daemon=True)
        self._thread.start()
        return self

    def close(self) -> list[str]:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
        self.poll()
        return self.roll()


def start_store(section: Any, journal: Journal) -> StoreWriter:
    """The store for the monitor config's `store:` section, polling and rolling on its own thread."""
    return StoreWriter(journal, StoreConfig.from_section(section)).start()
