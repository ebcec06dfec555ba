"""`streamqc monitor` with `store:` and `server:` sections: the API answers while it runs,
and after a clean stop the store holds its measurements and events, which `report` reads."""

from __future__ import annotations

import datetime as dt

import httpx
import pyarrow.dataset as pads
import pytest

from live import MonitorProcess, free_tcp_port, make_clip, wait_for
from streamqc.analytics import build_report

TOKEN = "e2e-token"


def test_monitor_feeds_the_store_and_serves_the_api(tmp_path, monkeypatch):
    clip = tmp_path / "cam.ts"
    make_clip(clip, 6.0, [("video.freeze", 1.5, 4.5)])
    port = free_tcp_port()
    (tmp_path / "streams.yaml").write_text(
        f"state_dir: {tmp_path / 'state'}\nworkers: 1\n"
        f"store: {{url: {tmp_path / 'data'}, roll_s: 300}}\n"
        f"server: {{listen: '127.0.0.1:{port}'}}\n"
        f"streams:\n  - {{id: cam, url: 'loop://{clip}'}}\n")
    monkeypatch.setenv("STREAMQC_TOKENS", TOKEN)
    started = dt.datetime.now(dt.timezone.utc)
    monitor = MonitorProcess(["--config", str(tmp_path / "streams.yaml")], cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_for(healthy, 30.0), "\n".join(monitor.stderr)
        listed = httpx.get(f"{base}/streams", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0).json()
        assert [s["id"] for s in listed] == ["cam"]
        assert wait_for(lambda: any(not e.get("ongoing") for e in monitor.events("cam", "video.freeze")), 30.0)
    finally:
        code = monitor.stop()
    assert code == 0, "\n".join(monitor.stderr)

    now = dt.datetime.now(dt.timezone.utc)
    report = build_report(str(tmp_path / "data"), started, now)
    (cam,) = report.streams
    assert cam.stream == "cam" and cam.availability_pct == pytest.approx(100.0)
    assert cam.monitored_min > 3 / 60
    assert [(d.kind, d.count) for d in cam.defects] == [("video.freeze", 1)]

    rows = pads.dataset(tmp_path / "data" / "measurements", format="parquet", partitioning="hive").to_table()
    rows = rows.filter(pads.field("stream") == "cam").sort_by("media_time").to_pylist()
    assert len(rows) >= 4
    motion = {int(r["media_time"]): r["motion"] for r in rows if r["motion"] is not None}
    assert min(motion.get(s, 99.0) for s in (2, 3)) < 0.5  # the frozen seconds
    assert max(motion.values()) > 1.0
    assert all(r["audio_level_dbfs"] is not None and r["processing_lag_s"] is not None for r in rows[1:])
