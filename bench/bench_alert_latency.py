#!/usr/bin/env python
"""Alert latency through the real monitor: defect onset (media time on a real-time stream) to webhook.

One run:
  1. makes (once, cached in bench/.cache/) a 320x180 25 fps H.264 + AAC MPEG-TS clip with
     freezes and black screens at known onsets (the synth generator's defects);
  2. starts `streamqc monitor` (a real service: supervisor, one worker process, journal,
     outbox) on udp://127.0.0.1:PORT, with a `notify:` webhook to a receiver in this
     process on 127.0.0.1 that notes when each open record first arrives;
  3. sends the clip there over UDP at the pace of its PCR (tests/peers' UdpTsSender),
     from the first datagram, once the monitor listens;
  4. the onset on the wall clock is when the stream's own clock (PCR, as sent) reaches the
     onset picture's PTS: started + (first PTS - first PCR) + onset. Latency = arrival of
     the defect's open record (the monitor's live `ongoing` announcement) - that; prints
     median and p95 against the target: the detector's min_duration_s + 1 s.

    .venv/bin/python bench/bench_alert_latency.py [--seconds 90] [--defects 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av

from streamqc.pipeline import DetectorChain
from streamqc.synth.audio import programme
from streamqc.synth.content import MovingObjects
from streamqc.synth.defects import Black, Freeze
from streamqc.synth.encode import AudioCodec, VideoCodec, encode_scenario
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from peers.udp_sender import PCR_HZ, TS_PACKET, UdpTsSender, pcr_of, udp_bound  # noqa: E402 (the tests' peer)

CACHE = pathlib.Path(__file__).resolve().parent / ".cache"
SPEC = VideoSpec(320, 180, Fraction(25))
AUDIO = AudioSpec(48000, 2)
DEFECT_S = 5.0
KINDS = {"freeze": "video.freeze", "black": "video.black", "silence": "audio.silence"}


def make_clip(seconds: float, defects: int) -> tuple[pathlib.Path, list[tuple[str, float]]]:
    """The clip and its (kind, onset in media seconds), one defect every `seconds / (defects + 1)`."""
    gap = seconds / (defects + 1)
    plan, labels = [], []
    for index in range(defects):
        onset = round(gap * (index + 1) + 0.37 * (index % 3), 2)  # onsets off the 1 s grid
        first, end = SPEC.index_at(onset), SPEC.index_at(onset + DEFECT_S)
        if index % 2 == 0:
            plan.append(Freeze(first, end, noise_sigma=1.5, seed=index))
            labels.append(("video.freeze", first / float(SPEC.fps)))
        else:
            plan.append(Black(first, end))
            labels.append(("video.black", first / float(SPEC.fps)))
    path = CACHE / f"alert-latency-{seconds:g}s-{defects}d-v1.ts"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        scenario = Scenario(video=MovingObjects(SPEC, 11, grain_sigma=1.5), audio=programme(AUDIO, 11, "music"),
                            duration_s=seconds, defects=plan)
        partial = path.with_suffix(".part.ts")
        encode_scenario(scenario, partial, "ts", VideoCodec("h264", bitrate_bps=600_000), AudioCodec("aac"))
        partial.rename(path)
    return path, labels


class Receiver:
    """The webhook receiver: notes the monotonic arrival time of each open record, first delivery only."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, dict]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key", "")
                receiver.arrivals.setdefault(key, (arrived, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pts_minus_pcr_s(path: pathlib.Path) -> float:
    """First video PTS minus first PCR, in seconds: where media time 0 lies on the sender's clock."""
    data = path.read_bytes()
    first_pcr = next(p for p in (pcr_of(data[i:i + TS_PACKET]) for i in range(0, len(data), TS_PACKET))
                     if p is not None)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        first_pts = float(frame.pts * stream.time_base)
    return first_pts - first_pcr / PCR_HZ




def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_monitor(path: pathlib.Path, receiver: "Receiver", state: pathlib.Path, tail_s: float) -> float:
    """The clip through `streamqc monitor` in real time; returns the wall clock of media time 0."""
    port = free_udp_port()
    config = {"state_dir": str(state), "workers": 1, "streams": [{"id": "bench-1", "url": f"udp://127.0.0.1:{port}"}],
              "notify": [{"name": "bench", "type": "webhook", "url": receiver.url, "secret": "bench-secret",
                          "routes": [{"kinds": ["video.*", "audio.*"]}]}]}
    config_path = state / "streams.yaml"
    state.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log = open(state / "monitor.log", "w")
    monitor = subprocess.Popen([sys.executable, "-m", "streamqc", "monitor", "--config", str(config_path)],
                               stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not udp_bound(port):
            if monitor.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the monitor did not listen on udp://127.0.0.1:{port}: see {state / 'monitor.log'}")
            time.sleep(0.05)
        offset = pts_minus_pcr_s(path)
        with UdpTsSender(path, port) as sender:
            while sender.started is None:
                time.sleep(0.01)
            wall0 = sender.started + offset
            sender.wait()
        time.sleep(tail_s)
    finally:
        monitor.send_signal(signal.SIGTERM)
        try:
            monitor.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(monitor.pid, signal.SIGKILL)
            monitor.wait(5)
        log.close()
    return wall0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the clip, played in real time")
    parser.add_argument("--defects", type=int, default=6, help="freezes and blacks, alternating")
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()

    path, labels = make_clip(args.seconds, args.defects)
    detectors = DetectorChain.from_options({}).detectors
    min_duration = {KINDS[d.name]: d.options.min_duration_s for d in detectors if d.name in KINDS}
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="streamqc-alert-bench-") as state:
        print(f"sending {path.name} to `streamqc monitor` in real time ({args.seconds:g} s, {len(labels)} defects) ...",
              file=sys.stderr)
        wall0 = run_monitor(path, receiver, pathlib.Path(state), tail_s=3.0)
    receiver.close()
    opened = {key: item for key, item in receiver.arrivals.items() if key.endswith(":open")}

    rows = []
    for kind, onset in labels:
        found = [(arrived, body) for arrived, body in opened.values()
                 if body["kind"] == kind and abs(body["start"] - onset) < 1.0]
        if not found:
            rows.append({"kind": kind, "onset_s": onset, "latency_s": None})
            continue
        arrived, body = min(found, key=lambda item: item[0])
        rows.append({"kind": kind, "onset_s": round(onset, 3), "detected_start_s": body["start"],
                     "latency_s": round(arrived - (wall0 + onset), 3),
                     "target_s": min_duration[kind] + 1.0})
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    target = max(min_duration[k] for k, _ in labels) + 1.0
    print(f"{'kind':<14}{'onset s':>9}{'detected s':>12}{'latency s':>11}{'target s':>10}")
    for row in rows:
        latency = "missed" if row["latency_s"] is None else f"{row['latency_s']:.3f}"
        print(f"{row['kind']:<14}{row['onset_s']:>9.2f}{row.get('detected_start_s', float('nan')):>12.2f}"
              f"{latency:>11}{row.get('target_s', target):>10.1f}")
    summary = {"defects": len(rows), "alerted": len(latencies), "open_records_received": len(opened),
               "target_s": target}
    if latencies:
        summary.update(median_s=round(statistics.median(latencies), 3), p95_s=round(percentile(latencies, 0.95), 3),
                       max_s=round(max(latencies), 3))
        print(f"alert latency over {len(latencies)}/{len(rows)} defects: median {summary['median_s']:.3f} s, "
              f"p95 {summary['p95_s']:.3f} s (target <= {target:.1f} s: min duration + 1 s) -> "
              f"{'met' if summary['p95_s'] <= target else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0 if latencies and len(latencies) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
