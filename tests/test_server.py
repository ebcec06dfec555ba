"""The HTTP API on a real uvicorn (127.0.0.1), driving a real supervisor with a worker process."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from media import make_clip
from streamqc.events import Event, Severity
from streamqc.monitor import Supervisor, parse_config
from streamqc.server import ServerConfig, ServerThread, create_app
from streamqc.sinks.journal import CLOSED, Journal

TOKEN = "s3cret-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(condition, timeout_s: float, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    return condition()


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def monitor(state):
    config = parse_config({"state_dir": str(state / "state"), "workers": 1, "stall_timeout_s": 3})
    supervisor = Supervisor(config)
    supervisor.start()
    yield supervisor
    supervisor.stop(timeout_s=10)


@pytest.fixture(scope="module")
def journal(monitor):
    with Journal(monitor.config.journal_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def served(monitor, journal, monkeypatch_module):
    monkeypatch_module.setenv("STREAMQC_TOKENS", f"other-token, {TOKEN}")
    app = create_app(journal, monitor, ServerConfig.from_section({"listen": "127.0.0.1:0"}))
    with ServerThread(app, "127.0.0.1", 0) as server:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield app, client


@pytest.fixture(scope="module")
def api(served):
    return served[1]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def journal_event(journal: Journal, stream: str, kind: str = "video.freeze", at: str = "2026-11-26T17:00:00.000Z",
                  severity: Severity = Severity.MAJOR, **fields) -> int:
    return journal.append(Event(kind, 1.0, 4.0, severity, stream=stream, at=at, **fields)).seq


def test_writes_need_a_token_and_reads_too_unless_public(api, journal):
    assert api.post("/streams", json={"id": "x", "url": "loop://x.ts"}).status_code == 401
    assert api.post("/streams", json={"id": "x", "url": "loop://x.ts"},
                    headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert api.delete("/streams/x").status_code == 401
    assert api.get("/events").status_code == 401
    assert api.get("/events").headers["www-authenticate"] == "Bearer"
    assert api.get("/metrics", headers={"Authorization": "Bearer other-tokenX"}).status_code == 403
    assert api.get("/events", headers={"Authorization": "Bearer other-token"}).status_code == 200
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/ready").status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/streams", "/streams/{stream_id}/pause", "/events", "/events/stream", "/metrics"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.get("/docs").status_code == 200

    public = create_app(journal, None, ServerConfig(tokens=[TOKEN], tokens_env="", public_reads=True))
    with ServerThread(public, "127.0.0.1", 0) as server:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            assert client.get("/events").status_code == 200
            assert client.post("/streams/x/pause").status_code == 401
            assert client.get("/streams").status_code == 503  # no monitor attached


def test_events_filter_by_stream_kind_and_time(api, journal):
    journal_event(journal, "f-1", "video.freeze", "2026-11-26T10:00:00.000Z")
    journal_event(journal, "f-1", "audio.silence", "2026-11-26T11:00:00.000Z")
    journal_event(journal, "f-2", "video.black", "2026-11-26T12:00:00.000Z")

    def kinds(**params):
        body = api.get("/events", params=params, headers=AUTH).json()
        return [(e["stream"], e["kind"]) for e in body["events"] if e["stream"] in ("f-1", "f-2")]

    assert kinds(stream="f-1") == [("f-1", "video.freeze"), ("f-1", "audio.silence")]
    assert kinds(kind="video.") == [("f-1", "video.freeze"), ("f-2", "video.black")]
    assert kinds(since="2026-11-26T10:30:00Z", until="2026-11-26T12:00:00Z") == [("f-1", "audio.silence")]
    assert kinds(since="2026-11-26T12:30:00+01:00") == [("f-2", "video.black")]  # 11:30 UTC
    assert api.get("/events", params={"since": "noon"}, headers=AUTH).status_code == 422


def test_live_events_arrive_as_server_sent_events(api, journal):
    with api.stream("GET", "/events/stream", params={"stream": "sse-1"}, headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines).startswith(":")  # open: what is journaled from now on comes through
        journal_event(journal, "other", "video.black")  # filtered out
        seq = journal_event(journal, "sse-1", "audio.silence")
        received = {}
        for line in lines:  # bounded by the client's read timeout
            if line.startswith("id: "):
                received["id"] = int(line[4:])
            elif line.startswith("data: "):
                received["data"] = json.loads(line[6:])
                break
    assert received["id"] == seq
    assert received["data"]["kind"] == "audio.silence" and received["data"]["stream"] == "sse-1"
    # Journaled while the client was away: a reconnect with Last-Event-ID gets them, in order.
    missed = [journal_event(journal, "sse-1", kind) for kind in ("video.freeze", "video.black")]
    with api.stream("GET", "/events/stream", params={"stream": "sse-1"},
                    headers={**AUTH, "Last-Event-ID": str(seq)}) as response:
        ids = []
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
                if len(ids) == 2:
                    break
    assert ids == missed


def test_streams_added_paused_resumed_removed_at_runtime(api, state, journal):
    clip = make_clip(state / "cam.ts", seconds=4.0)
    url = f"loop://{clip}"
    assert api.get("/streams", headers=AUTH).json() == []
    added = api.post("/streams", json={"id": "cam-1", "url": url, "tags": {"tier": "gold"}}, headers=AUTH)
    assert added.status_code == 201 and added.json()["id"] == "cam-1"
    assert api.post("/streams", json={"id": "cam-1", "url": url}, headers=AUTH).status_code == 409
    bad = api.post("/streams", json={"id": "cam-2", "url": url, "detectors": {"freeze": {"nope": 1}}}, headers=AUTH)
    assert bad.status_code == 422 and "freeze.nope" in bad.text
    assert api.post("/streams", json={"id": "bad id!", "url": url}, headers=AUTH).status_code == 422

    def state_of(stream_id: str) -> dict:
        return api.get(f"/streams/{stream_id}", headers=AUTH).json()

    ok = wait_for(lambda: (s := state_of("cam-1"))["state"] == "ok" and s["frames"] > 0 and s, 20.0)
    assert ok and ok["tags"] == {"tier": "gold"} and ok["open_defects"] == []
    assert api.post("/streams/cam-1/pause", headers=AUTH).status_code == 200
    assert wait_for(lambda: state_of("cam-1")["state"] == "paused", 10.0)
    assert api.post("/streams/cam-1/resume", headers=AUTH).status_code == 200
    assert wait_for(lambda: state_of("cam-1")["state"] == "ok", 15.0)

    families = {f.name: f for f in text_string_to_metric_families(api.get("/metrics", headers=AUTH).text)}
    states = {(s.labels["stream"], s.labels["state"]): s.value for s in families["streamqc_stream_state"].samples}
    assert states[("cam-1", "ok")] == 1.0 and states[("cam-1", "down")] == 0.0
    frames = [s for s in families["streamqc_frames_processed"].samples if s.name.endswith("_total")]
    assert frames[0].labels == {"stream": "cam-1"} and frames[0].value > 0
    assert "streamqc_processing_lag_seconds" in families

    assert api.delete("/streams/cam-1", headers=AUTH).status_code == 200
    assert api.get("/streams/cam-1", headers=AUTH).status_code == 404
    assert api.post("/streams/cam-1/pause", headers=AUTH).status_code == 404


def test_metrics_count_defects_once_per_event_and_notifications(served, journal):
    app, api = served
    opened = journal.append(Event("video.freeze", 1.0, 3.0, stream="m-1", at="2026-11-26T17:00:00.000Z",
                                  ongoing=True))
    journal.append(Event("video.freeze", 1.0, 9.0, stream="m-1", at="2026-11-26T17:00:06.000Z"),
                   event_id=opened.id, phase=CLOSED)
    journal_event(journal, "m-1", "video.freeze")
    journal_event(journal, "m-1", "stream.recovered", severity=Severity.INFO)
    journal_event(journal, "m-1", "action.failed", severity=Severity.MAJOR)
    # The notifier outbox (same process) reports each delivery and failure.
    app.state.metrics.notification_delivered("webhook", 0.3)
    app.state.metrics.notification_delivered("webhook", 4.0)
    app.state.metrics.notification_failed("slack")
    text = api.get("/metrics", headers=AUTH).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    defects = {(s.labels["stream"], s.labels["kind"]): s.value
               for s in families["streamqc_defects"].samples if s.name == "streamqc_defects_total"}
    assert defects[("m-1", "video.freeze")] == 2.0
    assert ("m-1", "stream.recovered") not in defects and ("m-1", "action.failed") not in defects
    latency = {s.name: s.value for s in families["streamqc_notification_latency_seconds"].samples
               if s.labels.get("le") in (None, "0.5")}
    assert latency["streamqc_notification_latency_seconds_count"] == 2.0
    assert latency["streamqc_notification_latency_seconds_bucket"] == 1.0  # 0.3 s under 0.5, 4 s not
    failures = families["streamqc_notification_failures"].samples
    assert [(s.labels, s.value) for s in failures if s.name.endswith("_total")] == [({"notifier": "slack"}, 1.0)]


def test_notification_latency_and_failures_through_the_real_outbox(tmp_path):
    from receivers import Receiver

    from streamqc.events import utc_now_iso
    from streamqc.server.metrics import MonitorMetrics, ObservedNotifier
    from streamqc.sinks.config import Retry
    from streamqc.sinks.notifiers.webhook import WebhookNotifier
    from streamqc.sinks.outbox import Outbox

    answers = iter([503, 200, 200])
    receiver = Receiver(lambda request: (next(answers, 200), b"")).start()
    try:
        with Journal(tmp_path / "journal.db") as journal:
            metrics = MonitorMetrics(journal)
            journal_event(journal, "n-1", "video.black", at=utc_now_iso())
            journal_event(journal, "n-1", "video.freeze", at=utc_now_iso())
            notifier = ObservedNotifier(WebhookNotifier("hook", receiver.url, "secret"), metrics)
            outbox = Outbox(journal, [(notifier, lambda record, tags, check: True,
                                       Retry(initial_s=0.05, max_delay_s=0.1))])
            assert outbox.drain(timeout_s=10.0)
            families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    finally:
        receiver.stop()
    samples = {(s.name, s.labels.get("le")): s.value for s in families["streamqc_notification_latency_seconds"].samples}
    assert samples[("streamqc_notification_latency_seconds_count", None)] == 2.0  # one per event delivered
    assert samples[("streamqc_notification_latency_seconds_bucket", "5.0")] == 2.0  # both within seconds
    failures = [s for s in families["streamqc_notification_failures"].samples if s.name.endswith("_total")]
    assert [(s.labels["notifier"], s.value) for s in failures] == [("hook", 1.0)]  # the 503
