"""`streamqc monitor` as a real service: 8 live streams over 2 worker processes.

One scenario, run once for the module (real processes, real sockets, all on 127.0.0.1):
- two UDP MPEG-TS streams sent in real time from labelled clips, two live HLS streams
  from origins encoding in real time (defects injected into their programme once the
  monitor has joined) and two looped files (`loop://`), each with scheduled defects;
- a UDP stream whose sender goes silent for a while (stall, then recovery);
- a URL that is dead from the start (an HTTP server answering 404, counting tries);
- one worker SIGKILLed while it runs; at the end, kill -9 of the whole service and a
  restart on the same state directory.
Each test below checks one of these behaviours on what the scenario recorded.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time

import pytest

from peers import LiveHlsOrigin, UdpTsSender, udp_bound
from receivers import Receiver

from live import MonitorProcess, free_tcp_port, free_udp_port, make_clip, wait_for
from streamqc.sinks.journal import Journal

CLIP_S = 12.0
CLIPS = {
    "A": [("video.freeze", 2.5, 5.5), ("audio.silence", 7.0, 9.5)],
    "B": [("video.black", 3.0, 5.5), ("video.freeze", 8.0, 10.5)],
    "C": [("audio.silence", 2.0, 4.5), ("video.black", 7.5, 10.0)],
}
UDP_STREAMS = {"udp-1": "A", "udp-2": "B"}
LOOP_STREAMS = {"loop-1": "B", "loop-2": "C"}
# (kind, seconds past the frame the origin encodes when the monitor has joined, duration)
HLS_STREAMS = {"hls-1": [("video.freeze", 1.0, 2.5), ("audio.silence", 4.5, 2.5)],
               "hls-2": [("video.black", 1.0, 2.5), ("video.freeze", 4.5, 2.5)]}
DEFECT_STREAMS = [*UDP_STREAMS, *HLS_STREAMS, *LOOP_STREAMS]
# longer than the read timeout (2 x stall timeout): the session ends and the input is reopened
STALL_AT_S, STALL_FOR_S = 6.0, 9.0
STALL_TIMEOUT_S = 3.0
ONSET_TOLERANCE_S = 0.5


class _DeadOrigin(http.server.BaseHTTPRequestHandler):
    tries: list[float] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).tries.append(time.monotonic())
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    labels = {name: make_clip(folder / f"{name}.ts", CLIP_S, defects, seed=i + 1)
              for i, (name, defects) in enumerate(CLIPS.items())}
    ports = {sid: free_udp_port() for sid in [*UDP_STREAMS, "stall"]}
    _DeadOrigin.tries = []
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", free_tcp_port()), _DeadOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    dead_url = f"http://127.0.0.1:{origin.server_address[1]}/live/dead.ts"
    hook = Receiver().start()
    origins = {}
    for seed, sid in enumerate(HLS_STREAMS, start=11):
        origins[sid] = LiveHlsOrigin(seed=seed).start()
    streams = [{"id": sid, "url": f"udp://127.0.0.1:{ports[sid]}"} for sid in UDP_STREAMS]
    streams += [{"id": sid, "url": origin.url} for sid, origin in origins.items()]
    streams += [{"id": sid, "url": f"loop://{folder / (clip + '.ts')}"} for sid, clip in LOOP_STREAMS.items()]
    streams += [{"id": "stall", "url": f"udp://127.0.0.1:{ports['stall']}"}, {"id": "dead", "url": dead_url}]
    config = {"workers": 2, "stall_timeout_s": STALL_TIMEOUT_S, "state_dir": str(folder / "state"),
              "reconnect": {"initial_s": 0.5, "max_s": 8, "jitter": 0.2}, "streams": streams,
              "notify": [{"name": "hook", "type": "webhook", "url": hook.url + "/events",
                          "routes": [{"kinds": ["stream.*"]}]}]}
    config_path = folder / "streams.yaml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    record = {"labels": labels, "folder": folder, "dead_url": dead_url, "hook": hook}

    monitor = MonitorProcess(["--config", str(config_path)], folder)
    senders: list[UdpTsSender] = []
    try:
        assert wait_for(lambda: all(udp_bound(p) for p in ports.values()), 90), "monitor never listened"
        # at once: a UDP stream with no media for the stall timeout is down (its clock runs on)
        senders = [UdpTsSender(folder / f"{clip}.ts", ports[sid]).start() for sid, clip in UDP_STREAMS.items()]
        stall = UdpTsSender(folder / "A.ts", ports["stall"], loop=True).start()
        senders.append(stall)
        record["started"] = time.monotonic()
        assert wait_for(lambda: all(o.first_fetched() is not None for o in origins.values()), 30), "HLS never read"
        # An HLS client's media time 0 is the start of the first segment it fetched.
        record["hls"] = {sid: [{**label, "start": label["start"] - origin.segment_start_s(origin.first_fetched())}
                               for label in (origin.inject(*defect) for defect in HLS_STREAMS[sid])]
                         for sid, origin in origins.items()}
        time.sleep(max(0.0, record["started"] + STALL_AT_S - time.monotonic()))
        stall.stall(STALL_FOR_S)  # the packets of that time are lost; the sender carries on after
        time.sleep(STALL_FOR_S)
        journal = Journal(folder / "state" / "journal.db")
        wait_for(lambda: journal.read(stream="stall", kind="stream.recovered"), 15)
        # the worker with loop-2 also runs the dead stream: what it did so far is kept apart
        record["dead_tries"] = list(_DeadOrigin.tries)
        record["seq_before_sigkill"] = journal.last_seq()
        status_path = folder / "state" / "status.json"

        def stall_status():
            return next(s for s in json.loads(status_path.read_text())["streams"] if s["id"] == "stall")

        wait_for(lambda: stall_status()["state"] in ("ok", "degraded"), 5)  # status lags events by <= 1 s
        record["stall_status"] = stall_status()
        record["first_run"] = _sigkill_a_worker(folder / "state" / "status.json", "loop-2")
        # kill -9 of the whole service: the dead stream's stream.down is still open
        record["before_kill"] = journal.read(limit=100000)
        monitor.kill()
        record["after_kill"] = journal.read(limit=100000)
        record["lines_run1"] = list(monitor.lines)
        record["stderr_run1"] = list(monitor.stderr)
        # restart on the same state directory, then a clean stop (SIGTERM)
        restarted = MonitorProcess(["--config", str(config_path)], folder)
        assert wait_for(lambda: all(udp_bound(p) for p in ports.values()), 90), "restart never listened"
        wait_for(lambda: any(r.phase == "closed" and r.event.details.get("closed_by") == "restart"
                             for r in journal.read(after_seq=record["after_kill"][-1].seq, limit=100000)),
                 STALL_TIMEOUT_S + 10)
        record["restart_code"] = restarted.stop()
        record["lines_run2"] = list(restarted.lines)
        record["journal"] = journal.read(limit=100000)
        journal.close()
        record["lines"] = record["lines_run1"]
        yield record
    finally:
        for sender in senders:
            sender.close()
        monitor.kill()
        for hls_origin in origins.values():
            hls_origin.close()
        origin.shutdown()
        origin.server_close()
        hook.stop()


def _sigkill_a_worker(status_path, stream_id):
    status = json.loads(status_path.read_text())
    slot = next(s for s in status["streams"] if s["id"] == stream_id)["worker"]
    pid = next(w["pid"] for w in status["workers"] if w["index"] == slot)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def back() -> bool:
        now = json.loads(status_path.read_text())
        worker = next(w for w in now["workers"] if w["index"] == slot)
        stream = next(s for s in now["streams"] if s["id"] == stream_id)
        return worker["pid"] != pid and worker["alive"] and stream["state"] in ("ok", "degraded") and stream["frames"] > 0

    came_back = wait_for(back, 15)
    return {"killed_pid": pid, "back_after_s": time.monotonic() - killed if came_back else None,
            "streams_of_worker": [s["id"] for s in status["streams"] if s["worker"] == slot]}


def _events(lines, stream, kind=None, phase=None):
    return [e for e in lines if e["stream"] == stream and (kind is None or e["kind"] == kind)
            and (phase is None or e["phase"] == phase)]


DEFECT_KINDS = ("video.freeze", "video.black", "audio.silence")


@pytest.mark.parametrize("stream", DEFECT_STREAMS)
def test_every_scheduled_defect_is_an_event_with_the_right_stream_kind_and_onset(scenario, stream):
    closed = [e for e in _events(scenario["lines"], stream, phase="closed") if e["kind"] in DEFECT_KINDS]
    if stream in HLS_STREAMS:
        labels = scenario["hls"][stream]
        # what the first run saw before a worker was killed (the origin plays on)
        closed = [e for e in closed if e["seq"] <= scenario["seq_before_sigkill"]]
    else:
        labels = scenario["labels"][{**UDP_STREAMS, **LOOP_STREAMS}[stream]]
        closed = [e for e in closed if e["start"] < CLIP_S - 0.5]  # the first pass (a looped file plays again)
    for label in labels:
        near = [e for e in closed if e["kind"] == label["kind"]
                and abs(e["start"] - label["start"]) <= ONSET_TOLERANCE_S]
        assert near, f"{stream}: {label} not found in {[(e['kind'], e['start']) for e in closed]}"
    # and nothing that was not scheduled
    for event in closed:
        assert any(event["kind"] == label["kind"] and abs(event["start"] - label["start"]) <= ONSET_TOLERANCE_S
                   for label in labels), f"{stream}: unexpected {event}"


def test_an_ongoing_defect_is_announced_at_its_minimum_duration_and_closed_under_the_same_id(scenario):
    for stream in DEFECT_STREAMS:
        for opened in _events(scenario["lines"], stream, phase="open"):
            if opened["kind"] not in DEFECT_KINDS:
                continue
            assert opened["ongoing"] is True
            assert opened["end"] - opened["start"] == pytest.approx(2.0, abs=0.2)  # min_duration_s
            # closed in the same run, or (open when the service was killed) by the restart;
            # a record printed just before the kill is printed again by the restart (the
            # output is at-least-once), with the same journal seq: one closing record
            closing = list({e["seq"]: e for e in scenario["lines_run1"] + scenario["lines_run2"]
                            if e["id"] == opened["id"] and e["phase"] == "closed"}.values())
            assert len(closing) == 1 and closing[0]["start"] == opened["start"]
            assert closing[0]["end"] >= opened["end"] and closing[0]["seq"] > opened["seq"]


def test_every_event_line_carries_stream_and_at(scenario):
    assert scenario["lines"]
    for line in scenario["lines"]:
        assert line["stream"] and line["at"].endswith("Z") and line["id"] and line["phase"] in ("open", "closed")


def test_a_stall_raises_stream_down_once_reconnects_and_recovers(scenario):
    downs = _events(scenario["lines"], "stall", "stream.down")
    opened = [e for e in downs if e["phase"] == "open"]
    assert opened, scenario["stderr_run1"]
    first = opened[0]
    # the stall began STALL_AT_S into the stream; it is reported once, not per retry
    assert first["start"] == pytest.approx(STALL_AT_S, abs=1.0)
    during = [e for e in opened if e["start"] < STALL_AT_S + STALL_FOR_S]
    assert len(during) == 1
    closed = [e for e in downs if e["id"] == first["id"] and e["phase"] == "closed"]
    assert len(closed) == 1
    # the stream's clock ran on while it was away; reopening and probing take a second or two
    assert closed[0]["end"] - closed[0]["start"] == pytest.approx(STALL_FOR_S + 1.0, abs=2.0)
    # the read timed out and the input was opened again (reconnect), then media came back
    status = scenario["stall_status"]
    assert status["attempts"] >= 2 and status["state"] in ("ok", "degraded")
    recovered = _events(scenario["lines"], "stall", "stream.recovered")
    assert recovered and recovered[0]["start"] == pytest.approx(closed[0]["end"], abs=0.01)
    assert recovered[0]["seq"] > first["seq"]


def test_a_dead_url_is_reported_once_and_retried_with_growing_backoff(scenario):
    downs = [e for e in _events(scenario["lines"], "dead", "stream.down") if e["seq"] <= scenario["seq_before_sigkill"]]
    assert len(downs) == 1 and downs[0]["phase"] == "open"
    assert downs[0]["details"]["never_up"] is True and "404" in downs[0]["details"]["reason"]
    tries = scenario["dead_tries"]
    assert len(tries) >= 4
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    # initial 0.5 s doubling up to 8 s, each cut by at most 20%: every gap longer than the last
    # but one, and far fewer tries than a retry loop without backoff would make
    assert all(later > earlier * 1.2 for earlier, later in zip(gaps, gaps[1:])), gaps
    assert len(tries) <= 2 + (tries[-1] - tries[0]) / 0.4 / 2


def test_a_sigkilled_worker_has_its_streams_running_again_within_5_s(scenario):
    run = scenario["first_run"]
    assert run["back_after_s"] is not None and run["back_after_s"] <= 5.0, run
    assert any("died" in line for line in scenario["stderr_run1"])
    # the other worker's streams were not touched: they never went down around the kill
    others = [s for s in [*DEFECT_STREAMS, "stall", "dead"] if s not in run["streams_of_worker"]]
    assert "loop-1" in others
    for stream in LOOP_STREAMS:
        if stream in others:
            assert not _events(scenario["lines"], stream, "stream.down")


def test_after_kill_9_and_a_restart_no_journaled_event_is_lost_and_open_ones_are_closed(scenario):
    before = {(r.id, r.phase) for r in scenario["before_kill"]}
    after = {(r.id, r.phase): r for r in scenario["journal"]}
    assert before <= set(after)  # every journaled record survived kill -9
    assert scenario["restart_code"] == 0
    opened_before = [r for r in scenario["after_kill"] if r.phase == "open"
                     and (r.id, "closed") not in {(x.id, x.phase) for x in scenario["after_kill"]}]
    assert any(r.event.stream == "dead" and r.event.kind == "stream.down" for r in opened_before)
    for record in opened_before:
        closing = after.get((record.id, "closed"))
        assert closing is not None, f"left open: {record.to_dict()}"
        assert closing.event.details["closed_by"] in ("restart", "shutdown")
    # after the clean stop nothing is open any more
    assert not [r for r in scenario["journal"] if r.phase == "open" and (r.id, "closed") not in after]
    # every journaled record was printed by one run or the other (undelivered ones by the restart)
    printed = {(e["id"], e["phase"]) for e in scenario["lines_run1"] + scenario["lines_run2"]}
    assert set(after) <= printed


def test_the_notify_section_delivers_journaled_events_to_a_webhook(scenario):
    delivered = {(b["id"], b["phase"]) for b in scenario["hook"].json_bodies()}
    dead_down = [e for e in scenario["lines_run1"] if e["stream"] == "dead" and e["kind"] == "stream.down"]
    assert dead_down and (dead_down[0]["id"], "open") in delivered
    assert all(b["kind"].startswith("stream.") for b in scenario["hook"].json_bodies())  # the route
