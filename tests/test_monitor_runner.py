"""One stream's runner in this process: backup failover, clean stop, ongoing events."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from live import free_tcp_port, make_clip, wait_for
from streamqc.monitor.config import ReconnectConfig, StreamConfig
from streamqc.monitor.runner import RunnerSettings, StreamRunner
from streamqc.sinks.journal import Journal


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("runner") / "clip.ts"
    make_clip(path, 8.0, [("video.freeze", 1.5, 5.5)], seed=4)
    return path


@pytest.fixture
def dead_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_tcp_port()), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/primary.ts"
    server.shutdown()
    server.server_close()


SETTINGS = RunnerSettings(stall_timeout_s=3.0, reconnect=ReconnectConfig(initial_s=0.2, max_s=1.0, jitter=0.2))


def test_a_dead_primary_fails_over_to_the_backup_url(tmp_path, clip, dead_url):
    journal = Journal(tmp_path / "journal.db")
    stream = StreamConfig(id="news", url=dead_url, backup_url=f"loop://{clip}")
    runner = StreamRunner(stream, {}, SETTINGS, journal)
    runner.start()
    try:
        assert wait_for(lambda: runner.status()["frames"] > 25, 20), runner.status()
        status = runner.status()
        assert status["url"] == f"loop://{clip}" and status["state"] in ("ok", "degraded")
        assert runner.last_error and "404" in runner.last_error  # the primary's failure moved it
    finally:
        runner.stop()
    # the backup delivered within the stall timeout: the viewer-facing stream never went down
    assert not journal.read(kind="stream.down")
    journal.close()


def test_a_clean_stop_closes_an_ongoing_freeze_with_its_real_end(tmp_path, clip):
    journal = Journal(tmp_path / "journal.db")
    runner = StreamRunner(StreamConfig(id="sport", url=f"loop://{clip}"), {}, SETTINGS, journal)
    runner.start()
    try:
        # announced at its minimum duration (2 s), while it still goes on
        assert wait_for(lambda: journal.read(kind="video.freeze"), 20)
        opened = journal.read(kind="video.freeze")[0]
        assert opened.phase == "open" and opened.event.ongoing
        assert opened.event.start == pytest.approx(1.5, abs=0.3)
        assert opened.event.end - opened.event.start == pytest.approx(2.0, abs=0.1)
        assert runner.status()["state"] == "degraded"
        time.sleep(0.5)
    finally:
        runner.stop()
    reached = runner.status()["media_seconds"]
    closing = [r for r in journal.read(kind="video.freeze") if r.phase == "closed"]
    assert len(closing) == 1 and closing[0].id == opened.id and closing[0].event.start == opened.event.start
    # the freeze was still on when the monitor stopped: it ends where the media ended
    assert reached < 5.5
    assert closing[0].event.end == pytest.approx(reached, abs=0.1)
    assert not journal.open_defects("sport")
    journal.close()


def test_pause_resume_and_switch_source(tmp_path, clip):
    journal = Journal(tmp_path / "journal.db")
    other = tmp_path / "other.ts"
    other.write_bytes(clip.read_bytes())
    runner = StreamRunner(StreamConfig(id="kids", url=f"loop://{clip}"), {}, SETTINGS, journal)
    runner.start()
    try:
        assert wait_for(lambda: runner.status()["frames"] > 10, 20)
        runner.pause()
        assert wait_for(lambda: runner.status()["state"] == "paused", 5)
        time.sleep(0.3)
        frames = runner.status()["frames"]
        time.sleep(SETTINGS.stall_timeout_s + 0.5)
        # paused: nothing read, and no stall reported for a stream nobody wants watched
        assert runner.status()["frames"] == frames and runner.status()["state"] == "paused"
        runner.resume()
        assert wait_for(lambda: runner.status()["frames"] > frames + 10, 20)
        runner.switch_source(f"loop://{other}")
        assert wait_for(lambda: runner.status()["url"] == f"loop://{other}" and runner.status()["attempts"] >= 3, 10)
        frames = runner.status()["frames"]
        assert wait_for(lambda: runner.status()["frames"] > frames + 10, 20)
    finally:
        runner.stop()
    assert not journal.read(kind="stream.down")
    assert not journal.open_defects("kids")
    journal.close()
