"""`streamqc report`: availability and defects per stream over a time range, from the store.

DuckDB answers. A local store is read with `read_parquet(..., hive_partitioning)`; an
S3 store is read through pyarrow's dataset API and the Arrow tables are queried by
DuckDB, because DuckDB's own S3 reader (the httpfs extension) is downloaded on first
use and cannot be installed offline.

Definitions (see docs/analytics.md):
- an event occupies the wall-clock interval [at - (end - start), at] of its closing
  record (`at` is when it was journaled, `end - start` its length); an event with an
  open record only (still going on when the data ends) occupies [at - (end - start),
  the end of the range];
- a stream's monitored time is the part of the range between the first and the last
  thing the store knows of it: a measurement row (each covers [at, at + 1 s)) or a
  defect's interval (not an info note's: the programme's loudness figures, noted when
  monitoring stops, span the media time, not the time it was watched);
- down time is the union of its `stream.down` intervals inside the monitored time;
- availability = 1 - down time / monitored time;
- defects are events of severity minor or worse, except the outcomes of corrective
  actions (`action.*`); their minutes are their intervals clipped to the range, summed
  per kind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from streamqc.errors import StreamQCError
from streamqc.sinks.store import (EVENT_SCHEMA, EVENTS, MEASUREMENT_SCHEMA, MEASUREMENTS, Location,
                                  open_location, parse_at)


@dataclasses.dataclass(slots=True)
class KindSummary:
    kind: str
    count: int
    minutes: float


@dataclasses.dataclass(slots=True)
class StreamSummary:
    stream: str
    monitored_min: float
    down_min: float
    availability_pct: float | None
    defects: list[KindSummary]

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "monitored_min": round(self.monitored_min, 3),
                "down_min": round(self.down_min, 3),
                "availability_pct": None if self.availability_pct is None else round(self.availability_pct, 3),
                "defects": {d.kind: {"count": d.count, "minutes": round(d.minutes, 3)} for d in self.defects}}


@dataclasses.dataclass(slots=True)
class Report:
    start: dt.datetime
    end: dt.datetime
    streams: list[StreamSummary]

    def to_dict(self) -> dict[str, Any]:
        return {"from": _iso(self.start), "to": _iso(self.end), "streams": [s.to_dict() for s in self.streams]}

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows, one per stream and defect kind (a stream without defects: one row, kind empty)."""
        out = []
        for s in self.streams:
            head = {"stream": s.stream, "monitored_min": round(s.monitored_min, 3), "down_min": round(s.down_min, 3),
                    "availability_pct": None if s.availability_pct is None else round(s.availability_pct, 3)}
            for d in s.defects or [KindSummary("", 0, 0.0)]:
                out.append({**head, "kind": d.kind, "count": d.count, "defect_min": round(d.minutes, 3)})
        return out


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, name: str) -> dt.datetime:
    try:
        return parse_at(text)
    except ValueError:
        raise StreamQCError(f"{name}: not an ISO 8601 time: {text!r} (e.g. 2026-11-26T17:00:00Z)") from None


def build_report(url: str, start: dt.datetime, end: dt.datetime, stream: str | None = None,
                 location: Location | None = None) -> Report:
    if end <= start:
        raise StreamQCError("--to must be after --from")
    location = location or open_location(url)
    if location.local and not location.filesystem.get_file_info(location.root).type == pafs.FileType.Directory:
        raise StreamQCError(f"no store at {location.root}")
    db = duckdb.connect()
    try:
        db.execute("SET TimeZone = 'UTC'")
        _attach(db, location, EVENTS, EVENT_SCHEMA, None, None)
        # Measurements are the bulk (a row a second a stream): only the days of the range are read.
        _attach(db, location, MEASUREMENTS, MEASUREMENT_SCHEMA, start.date(), end.date())
        params = {"t0": start.timestamp(), "t1": end.timestamp(), "stream": stream}
        return Report(start, end, _summaries(db, params))
    except (duckdb.Error, pa.ArrowException, OSError) as err:
        raise StreamQCError(f"cannot read the store at {url}: {str(err).splitlines()[0]}") from None
    finally:
        db.close()


def _attach(db: duckdb.DuckDBPyConnection, location: Location, table: str, schema: pa.Schema,
            first_day: dt.date | None, last_day: dt.date | None) -> None:
    """Make `table` a view with the file columns plus `stream` (text) and `date` (date)."""
    folder = location.path(table)
    days = "" if first_day is None else f" WHERE date BETWEEN DATE '{first_day}' AND DATE '{last_day}'"
    info = location.filesystem.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    if not any(f.is_file and f.path.endswith(".parquet") for f in info):
        empty = pa.Table.from_batches([], schema.append(pa.field("stream", pa.string())).append(
            pa.field("date", pa.date32())))
        db.register(f"{table}_arrow", empty)
        db.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_arrow")
        return
    if location.local:
        pattern = f"{folder}/*/*/*.parquet".replace("'", "''")
        db.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
                   f"union_by_name = true, hive_types = {{'date': DATE, 'stream': VARCHAR}}){days}")
        return
    partitioning = pads.partitioning(pa.schema([("date", pa.date32()), ("stream", pa.string())]), flavor="hive")
    dataset = pads.dataset(folder, filesystem=location.filesystem, format="parquet", partitioning=partitioning,
                           schema=schema.append(pa.field("date", pa.date32())).append(pa.field("stream", pa.string())))
    where = None
    if first_day is not None:
        where = (pads.field("date") >= pa.scalar(first_day, pa.date32())) & (
            pads.field("date") <= pa.scalar(last_day, pa.date32()))
    db.register(f"{table}_arrow", dataset.to_table(filter=where))
    db.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_arrow")


_INTERVALS = """
WITH records AS (
    SELECT DISTINCT ON (id, phase) stream, id, phase, kind, severity, "start", "end",
           epoch_ms("at") / 1000.0 AS at_s
    FROM events WHERE CAST($stream AS VARCHAR) IS NULL OR stream = $stream
),
intervals AS (
    SELECT c.stream, c.id, c.kind, c.severity, c.at_s - (c."end" - c."start") AS s, c.at_s AS e
    FROM records c WHERE c.phase = 'closed'
    UNION ALL
    SELECT o.stream, o.id, o.kind, o.severity, o.at_s - (o."end" - o."start") AS s, NULL AS e
    FROM records o WHERE o.phase = 'open'
      AND NOT EXISTS (SELECT 1 FROM records c WHERE c.id = o.id AND c.phase = 'closed')
),
clipped AS (
    SELECT stream, kind, severity, greatest(s, $t0) AS s, least(coalesce(e, $t1), $t1) AS e
    FROM intervals WHERE coalesce(e, $t1) >= $t0 AND s < $t1
),
seen AS (
    SELECT stream, min(s) AS first_s, max(e) AS last_s FROM clipped WHERE severity <> 'info' GROUP BY stream
    UNION ALL
    SELECT stream, min(epoch_ms("at") / 1000.0), max(epoch_ms("at") / 1000.0 + 1.0) FROM measurements
    WHERE (CAST($stream AS VARCHAR) IS NULL OR stream = $stream) AND "at" >= to_timestamp($t0) - INTERVAL 1 SECOND
      AND "at" < to_timestamp($t1)
    GROUP BY stream
),
spans AS (
    SELECT stream, greatest(min(first_s), $t0) AS s, least(max(last_s), $t1) AS e FROM seen GROUP BY stream
)
"""


def _summaries(db: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> list[StreamSummary]:
    spans = {stream: (s, e) for stream, s, e in db.execute(
        _INTERVALS + "SELECT stream, s, e FROM spans ORDER BY stream", params).fetchall()}
    downs: dict[str, list[tuple[float, float]]] = {}
    for stream, s, e in db.execute(
            _INTERVALS + "SELECT stream, s, e FROM clipped WHERE kind = 'stream.down' ORDER BY stream, s",
            params).fetchall():
        downs.setdefault(stream, []).append((s, e))
    defects: dict[str, list[KindSummary]] = {}
    for stream, kind, count, seconds in db.execute(
            _INTERVALS + "SELECT stream, kind, count(*), sum(e - s) FROM clipped "
                         "WHERE severity <> 'info' AND kind NOT LIKE 'action.%' "
                         "GROUP BY stream, kind ORDER BY stream, kind", params).fetchall():
        defects.setdefault(stream, []).append(KindSummary(kind, int(count), float(seconds) / 60.0))
    out = []
    for stream, (s, e) in spans.items():
        monitored = max(0.0, e - s)
        down = _union_length([(max(a, s), min(b, e)) for a, b in downs.get(stream, [])])
        availability = None if monitored <= 0 else 100.0 * (1.0 - down / monitored)
        out.append(StreamSummary(stream, monitored / 60.0, down / 60.0, availability, defects.get(stream, [])))
    return out


def _union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by the intervals (overlaps counted once)."""
    total, reach = 0.0, -math.inf
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if s > reach:
            total += e - s
            reach = e
        elif e > reach:
            total += e - reach
            reach = e
    return total


def print_report(report: Report, fmt: str, out: Any, console: Any) -> None:
    """`fmt`: json (the nested document), csv (flat rows) or table (rich)."""
    import csv
    import json

    if fmt == "json":
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    rows = report.rows()
    columns = ["stream", "monitored_min", "down_min", "availability_pct", "kind", "count", "defect_min"]
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.table import Table

    table = Table(title=f"{_iso(report.start)} .. {_iso(report.end)}")
    for column in columns:
        table.add_column(column, justify="left" if column in ("stream", "kind") else "right")
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    if not rows:
        console.print(f"no data for {_iso(report.start)} .. {_iso(report.end)}", highlight=False)
        return
    console.print(table)
