"""The analytics store writes Parquet (local folder and an S3 server on loopback) and
`streamqc report` reads back the availability of a scripted outage."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streamqc.analytics import build_report
from streamqc.cli import app
from streamqc.events import Event, Severity
from streamqc.sinks.journal import CLOSED, OPEN, Journal
from streamqc.sinks.store import CONSUMER, StoreConfig, StoreWriter, location_of

# Five minutes before midnight UTC: the ten scripted minutes span two date partitions.
T0 = dt.datetime(2026, 11, 20, 23, 55, tzinfo=dt.timezone.utc)
OUTAGE = (120, 180)  # seconds after T0 that news-1 delivers no media
FREEZE = (300, 310)  # sport-2 frozen


def iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
                        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server,
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="qc-store")
    yield client
    for item in client.list_objects_v2(Bucket="qc-store").get("Contents", []):
        client.delete_object(Bucket="qc-store", Key=item["Key"])
    client.delete_bucket(Bucket="qc-store")


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "data")
    request.getfixturevalue("s3_env")
    return "s3://qc-store/analytics"


def script_ten_minutes(journal: Journal, writer: StoreWriter) -> None:
    """news-1 goes down for OUTAGE, sport-2 freezes for FREEZE; measurements once a second.

    Journaled as the monitor does it: the outage announced (open) stall_timeout_s after
    the last media, closed when media flows again with its media-clock length, then a
    stream.recovered note; the freeze announced once it lasted 2 s, closed at its end.
    """
    for second in range(600):
        for stream in ("news-1", "sport-2"):
            if stream == "news-1" and OUTAGE[0] <= second < OUTAGE[1]:
                continue
            writer.add_measurement({"stream": stream, "at": iso(second), "media_time": 1000.0 + second,
                                    "processing_lag_s": 0.1, "motion": 3.0, "luma_mean": 90.0})
        if second == 290:
            writer.poll()
            writer.roll()  # a roll in the middle: two parts per partition, read as one
    down_start = 1000.0 + OUTAGE[0]
    down = journal.append(Event("stream.down", down_start, down_start, Severity.CRITICAL, stream="news-1",
                                at=iso(OUTAGE[0] + 5), ongoing=True, details={"stall_timeout_s": 5}))
    journal.append(Event("stream.down", down_start, 1000.0 + OUTAGE[1], Severity.CRITICAL, stream="news-1",
                         at=iso(OUTAGE[1])), event_id=down.id, phase=CLOSED)
    journal.append(Event("stream.recovered", 1000.0 + OUTAGE[1], 1000.0 + OUTAGE[1], Severity.INFO,
                         stream="news-1", at=iso(OUTAGE[1])))
    # A corrective action that failed during the outage: journaled, but not a defect of the stream.
    journal.append(Event("action.failed", down_start, down_start, Severity.MAJOR, stream="news-1",
                         at=iso(OUTAGE[0] + 20), details={"rule": "restart-encoder"}))
    freeze = journal.append(Event("video.freeze", 1000.0 + FREEZE[0], 1002.0 + FREEZE[0], stream="sport-2",
                                  at=iso(FREEZE[0] + 2), ongoing=True), phase=OPEN)
    journal.append(Event("video.freeze", 1000.0 + FREEZE[0], 1000.0 + FREEZE[1], stream="sport-2",
                         at=iso(FREEZE[1])), event_id=freeze.id, phase=CLOSED)


def scripted(url, tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        writer = StoreWriter(journal, StoreConfig(url=url))
        script_ten_minutes(journal, writer)
        writer.close()
        yield url, journal, writer


@pytest.fixture
def scripted_store(store_url, tmp_path):
    yield from scripted(store_url, tmp_path)


@pytest.fixture
def local_scripted_store(tmp_path):
    yield from scripted(str(tmp_path / "data"), tmp_path)


def by_stream(report):
    return {s.stream: s for s in report.streams}


def test_parquet_lands_in_hive_layout_and_the_cursor_moves(scripted_store):
    url, journal, writer = scripted_store
    location = location_of(StoreConfig(url=url))
    files = sorted(f.path.removeprefix(location.root + "/") for f in location.filesystem.get_file_info(
        pafs.FileSelector(location.root, recursive=True)) if f.is_file)
    folders = {f.rsplit("/", 1)[0] for f in files}
    assert {"events/date=2026-11-20/stream=news-1", "events/date=2026-11-21/stream=sport-2"} <= folders
    measurement_parts = [f for f in files if f.startswith("measurements/date=2026-11-20/stream=news-1/part-")]
    assert len(measurement_parts) == 2 and all(f.endswith(".parquet") for f in files)  # rolled twice
    assert journal.cursor(CONSUMER) == journal.last_seq()
    one = pq.read_table(f"{location.root}/{measurement_parts[0]}", filesystem=location.filesystem)
    assert {"at", "motion", "luma_mean", "corruption_score"} <= set(one.column_names)
    assert "stream" not in one.column_names  # the partition value lives in the path
    # A restarted writer starts at the cursor: nothing is written twice.
    again = StoreWriter(journal, StoreConfig(url=url))
    assert again.poll() == 0 and again.roll() == []


def test_report_gives_the_availability_of_the_scripted_outage(scripted_store):
    url, _, _ = scripted_store
    report = by_stream(build_report(url, T0, T0 + dt.timedelta(minutes=10)))
    news, sport = report["news-1"], report["sport-2"]
    assert news.monitored_min == pytest.approx(10.0)
    assert news.down_min == pytest.approx(1.0)
    assert news.availability_pct == pytest.approx(90.0)
    assert [(d.kind, d.count, round(d.minutes, 3)) for d in news.defects] == [("stream.down", 1, 1.0)]
    assert sport.availability_pct == pytest.approx(100.0)
    assert [(d.kind, d.count, round(d.minutes * 60, 3)) for d in sport.defects] == [("video.freeze", 1, 10.0)]
    # A range that starts inside the outage counts only its part of it.
    late = by_stream(build_report(url, T0 + dt.timedelta(seconds=150), T0 + dt.timedelta(minutes=10),
                                  stream="news-1"))
    assert list(late) == ["news-1"]
    assert late["news-1"].availability_pct == pytest.approx(100.0 * (1 - 30 / 450))


def test_an_outage_still_open_counts_until_the_end_of_the_range(tmp_path):
    url = str(tmp_path / "data")
    with Journal(tmp_path / "journal.db") as journal:
        writer = StoreWriter(journal, StoreConfig(url=url))
        for second in range(240):
            writer.add_measurement({"stream": "a", "at": iso(second)})
        journal.append(Event("stream.down", 500.0, 500.0, Severity.CRITICAL, stream="a", at=iso(240),
                             ongoing=True))
        writer.close()
    report = by_stream(build_report(url, T0, T0 + dt.timedelta(minutes=6)))
    assert report["a"].down_min == pytest.approx(2.0)
    assert report["a"].availability_pct == pytest.approx(100.0 * 4 / 6)


def test_roll_waits_for_roll_s(tmp_path):
    now = [0.0]
    with Journal(tmp_path / "journal.db") as journal:
        writer = StoreWriter(journal, StoreConfig(url=str(tmp_path / "data"), roll_s=300), clock=lambda: now[0])
        now[0] = 299.0
        assert not writer.due()
        now[0] = 300.0
        assert writer.due()


def test_cli_report_formats(local_scripted_store):
    url, _, _ = local_scripted_store
    runner = CliRunner()
    base = ["report", "--store", url, "--from", iso(0), "--to", iso(600)]
    as_json = runner.invoke(app, base + ["--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    streams = {s["stream"]: s for s in json.loads(as_json.stdout)["streams"]}
    assert streams["news-1"]["availability_pct"] == 90.0
    assert streams["news-1"]["defects"] == {"stream.down": {"count": 1, "minutes": 1.0}}
    as_csv = runner.invoke(app, base + ["--format", "csv", "--stream", "sport-2"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["stream"], r["kind"], r["count"]) for r in rows] == [("sport-2", "video.freeze", "1")]
    table = runner.invoke(app, base)
    assert table.exit_code == 0 and "news-1" in table.stdout and "90.0" in table.stdout
    bad = runner.invoke(app, ["report", "--store", url, "--from", "yesterday", "--to", iso(600)])
    assert bad.exit_code == 2 and "not an ISO 8601 time" in bad.stderr


def test_cli_report_reads_s3_with_the_endpoint_option(s3_env, s3_server, tmp_path, monkeypatch):
    (url, _, _), = [item for item in scripted("s3://qc-store/analytics", tmp_path)]
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the option alone says where the server is
    result = CliRunner().invoke(app, ["report", "--store", url, "--from", iso(0), "--to", iso(600),
                                      "--stream", "news-1", "--format", "json", "--endpoint-url", s3_server])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["streams"][0]["availability_pct"] == 90.0


def test_the_writer_thread_rolls_on_its_own_every_roll_s(tmp_path):
    data = tmp_path / "data"
    with Journal(tmp_path / "journal.db") as journal:
        writer = StoreWriter(journal, StoreConfig(url=str(data), roll_s=0.3)).start(poll_s=0.05)
        try:
            journal.append(Event("video.black", 1.0, 4.0, stream="a", at=iso(10)))
            writer.add_measurement({"stream": "a", "at": iso(10), "luma_mean": 16.0})
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and len(list(data.rglob("*.parquet"))) < 2:
                time.sleep(0.05)
            assert len(list(data.rglob("*.parquet"))) == 2  # written before close
            assert journal.cursor(CONSUMER) == journal.last_seq()
        finally:
            writer.close()


def test_events_wait_in_memory_while_s3_cannot_be_written(s3_env, tmp_path):
    url = "s3://qc-store/analytics"
    with Journal(tmp_path / "journal.db") as journal:
        writer = StoreWriter(journal, StoreConfig(url=url))
        s3_env.delete_bucket(Bucket="qc-store")  # the store is gone
        journal.append(Event("stream.down", 5.0, 65.0, Severity.CRITICAL, stream="a", at=iso(65)))
        writer.poll()
        assert writer.roll() == [] and writer.last_error
        assert journal.cursor(CONSUMER) == 0  # not stored: a restart would hand it out again
        s3_env.create_bucket(Bucket="qc-store")  # back
        written = writer.close()
        assert [p.split("/analytics/")[1].rsplit("/", 1)[0] for p in written] == [
            "events/date=2026-11-20/stream=a"]
        assert journal.cursor(CONSUMER) == journal.last_seq()
    report = by_stream(build_report(url, T0, T0 + dt.timedelta(minutes=2)))
    assert report["a"].down_min == pytest.approx(1.0)


def test_monitor_refuses_a_bad_store_section_before_starting(tmp_path):
    config = tmp_path / "streams.yaml"
    config.write_text("streams: [{id: a, url: 'udp://127.0.0.1:5000'}]\nstore: {url: ./d, roll_s: 0}\n")
    result = CliRunner().invoke(app, ["monitor", "--config", str(config)])
    assert result.exit_code == 2 and "store.roll_s" in result.stderr
    config.write_text("streams: [{id: a, url: 'udp://127.0.0.1:5000'}]\nstore: {url: 'ftp://x/y'}\n")
    result = CliRunner().invoke(app, ["monitor", "--config", str(config)])
    assert result.exit_code == 2 and "expected a folder or s3://" in result.stderr
