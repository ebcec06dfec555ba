"""`streamqc monitor` with `store:` and `server:` sections, on a real UDP stream that
goes silent for a while: the API answers while it runs, and after a clean stop the
store holds the measurements and events from which `report` gets the availability."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pyarrow.dataset as pads
import pytest

from peers import UdpTsSender, udp_bound
from prometheus_client.parser import text_string_to_metric_families
from receivers import Receiver

from live import MonitorProcess, free_tcp_port, free_udp_port, make_clip, wait_for
from streamqc.analytics import build_report

TOKEN = "e2e-token"
HOLD_S = 4.0  # the sender stops this long: an outage of about that much media


def test_monitor_feeds_the_store_and_the_report_sees_the_outage(tmp_path, monkeypatch):
    clip = tmp_path / "cam.ts"
    make_clip(clip, 6.0, [("video.freeze", 1.5, 4.5)])
    port, udp = free_tcp_port(), free_udp_port()
    hook = Receiver().start()
    (tmp_path / "streams.yaml").write_text(
        f"state_dir: {tmp_path / 'state'}\nworkers: 1\nstall_timeout_s: 1\n"
        "reconnect: {initial_s: 0.2, max_s: 1, jitter: 0}\n"
        f"store: {{url: {tmp_path / 'data'}, roll_s: 300}}\n"
        f"server: {{listen: '127.0.0.1:{port}'}}\n"
        f"notify: [{{name: hook, type: webhook, url: '{hook.url}/events', routes: [{{kinds: ['stream.*']}}]}}]\n"
        f"streams:\n  - {{id: cam, url: 'udp://127.0.0.1:{udp}'}}\n")
    monkeypatch.setenv("STREAMQC_TOKENS", TOKEN)
    started = dt.datetime.now(dt.timezone.utc)
    monitor = MonitorProcess(["--config", str(tmp_path / "streams.yaml")], cwd=tmp_path)
    sender = None
    try:
        assert wait_for(lambda: udp_bound(udp), 60.0), "\n".join(monitor.stderr)
        sender = UdpTsSender(clip, udp, loop=True).start()
        sending_since = time.monotonic()
        listed = httpx.get(f"http://127.0.0.1:{port}/streams", headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=5.0).json()
        assert [s["id"] for s in listed] == ["cam"]
        assert wait_for(lambda: any(not e.get("ongoing") for e in monitor.events("cam", "video.freeze")), 30.0)
        sender.stall(HOLD_S)  # the packets of that time are lost, then it carries on
        held = time.monotonic()
        assert wait_for(lambda: monitor.events("cam", "stream.down"), 10.0)
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - held)))
        hold_s = time.monotonic() - held
        assert wait_for(lambda: monitor.events("cam", "stream.recovered"), 15.0)
        time.sleep(2.0)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=5.0).text
    finally:
        stopped = time.monotonic()
        if sender is not None:
            sender.close()
        code = monitor.stop()
        hook.stop()
    assert code == 0, "\n".join(monitor.stderr)
    # the webhook got the outage; /metrics timed those deliveries (scraped before the last ones)
    delivered = [b["kind"] for b in hook.json_bodies()]
    assert "stream.down" in delivered
    latency = {(s.name, s.labels.get("notifier")): s.value
               for f in text_string_to_metric_families(metrics) for s in f.samples}
    assert 1 <= latency[("streamqc_notification_latency_seconds_count", "hook")] <= len(delivered)
    assert latency[("streamqc_notification_latency_seconds_sum", "hook")] > 0
    assert latency.get(("streamqc_notification_failures_total", "hook"), 0.0) == 0.0
    freezes = {e["start"] for e in monitor.events("cam", "video.freeze") if not e.get("ongoing")}

    report = build_report(str(tmp_path / "data"), started, dt.datetime.now(dt.timezone.utc))
    (cam,) = report.streams
    sent_s = stopped - sending_since
    # Media arrives in real time: the outage is the hold, and the stream was watched while it was sent.
    assert cam.down_min * 60 == pytest.approx(hold_s, abs=1.0)
    assert cam.monitored_min * 60 == pytest.approx(sent_s, abs=2.0)
    assert cam.availability_pct == pytest.approx(100.0 * (1 - hold_s / sent_s), abs=4.0)
    kinds = {d.kind: d.count for d in cam.defects}
    assert kinds["stream.down"] == 1 and kinds["video.freeze"] == len(freezes) >= 1

    rows = pads.dataset(tmp_path / "data" / "measurements", format="parquet", partitioning="hive").to_table()
    rows = rows.filter(pads.field("stream") == "cam").sort_by("at").to_pylist()
    assert len(rows) >= 5
    motion = [r["motion"] for r in rows if r["motion"] is not None]
    assert min(motion) < 0.5 and max(motion) > 1.0  # frozen seconds and moving ones
    assert all(r["audio_level_dbfs"] is not None and r["processing_lag_s"] is not None for r in rows[1:])
