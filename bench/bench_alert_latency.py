#!/usr/bin/env python
"""Alert latency: defect onset (media time on a real-time stream) to the webhook receiving it.

One run:
  1. makes (once, cached in bench/.cache/) a 320x180 25 fps H.264 + AAC MPEG-TS clip with
     freezes and black screens at known onsets (the synth generator's defects);
  2. plays it in real time: each decoded buffer is released at wall0 + its media time, as
     a live source would deliver it, and goes reader -> DetectorChain -> journal (fsync'd)
     -> outbox (its own thread and Journal connection, as in the monitor) -> signed webhook
     POST -> a local receiver on 127.0.0.1, which notes when each open record arrives;
  3. latency of a defect = arrival of its open record - (wall0 + onset); prints median and
     p95 against the target: the detector's min_duration_s + 1 s.

The live alert is the detector's `ongoing` event (issue 4, the monitor branch). While the
detectors in use do not emit one, the bench announces a run itself when the detector's
RunTracker has lasted min_duration_s (a stand-in reading the detector's `_run`, printed as
such), which is the moment the detector would announce it.

    .venv/bin/python bench/bench_alert_latency.py [--seconds 90] [--defects 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamqc.events import Event, utc_now_iso
from streamqc.media import StreamNote
from streamqc.pipeline import DetectorChain
from streamqc.sinks.config import Retry
from streamqc.sinks.journal import Journal
from streamqc.sinks.notifiers.webhook import WebhookNotifier
from streamqc.sinks.outbox import Outbox
from streamqc.sources import SourceOptions, open_media
from streamqc.synth.audio import programme
from streamqc.synth.content import MovingObjects
from streamqc.synth.defects import Black, Freeze
from streamqc.synth.encode import AudioCodec, VideoCodec, encode_scenario
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

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


class StandIn:
    """Announces a run once it has lasted min_duration_s, for detectors that do not yet emit `ongoing`."""

    def __init__(self, chain: DetectorChain) -> None:
        self.watched = [d for d in chain.detectors if d.name in KINDS and hasattr(d, "_run")]
        self.announced: dict[str, float] = {}

    def poll(self) -> list[Event]:
        events = []
        for detector in self.watched:
            run = detector._run
            if run.start is None:
                self.announced.pop(detector.name, None)
                continue
            if getattr(detector, "_reference_black", False) or self.announced.get(detector.name) == run.start:
                continue
            if run.open_for >= detector.options.min_duration_s:
                self.announced[detector.name] = run.start
                events.append(Event(KINDS[detector.name], run.start, run.last_end, ongoing=True,
                                    details={"duration_s": round(run.open_for, 3)}))
        return events


def play(path: pathlib.Path, journal: Journal, stream: str) -> tuple[float, bool]:
    """Real-time playback into the journal; returns (wall0, whether the detectors emitted ongoing events)."""
    chain = DetectorChain.from_options({})
    stand_in = StandIn(chain)
    native = False
    open_ids: dict[tuple[str, float], str] = {}
    wall0 = None
    with open_media(str(path), SourceOptions(threads=1)) as reader:
        for buffer in reader:
            if isinstance(buffer, StreamNote):
                events = chain.feed(buffer)
            else:
                if wall0 is None:
                    wall0 = time.monotonic() - buffer.time
                delay = wall0 + buffer.time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                events = chain.feed(buffer)
            native = native or any(e.ongoing for e in events)
            if not native:
                events += stand_in.poll()
            for event in events:
                event.stream, event.at = stream, utc_now_iso()
                key = (event.kind, round(event.start, 3))
                if event.ongoing:
                    open_ids[key] = journal.append(event).id
                else:
                    journal.append(event, event_id=open_ids.pop(key, None))
    return (wall0 or time.monotonic()), native


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
    parser.add_argument("--poll-s", type=float, default=0.1, help="the outbox's journal poll interval")
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()

    path, labels = make_clip(args.seconds, args.defects)
    detectors = DetectorChain.from_options({}).detectors
    min_duration = {KINDS[d.name]: d.options.min_duration_s for d in detectors if d.name in KINDS}
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="streamqc-alert-bench-") as state:
        journal_path = pathlib.Path(state) / "journal.db"
        with Journal(journal_path) as journal:
            outbox = Outbox(journal_path, [(WebhookNotifier("bench", receiver.url, "bench-secret", timeout_s=5.0),
                                            lambda record, tags, severity: record.phase == "open",
                                            Retry(initial_s=0.1, max_delay_s=1.0))], poll_s=args.poll_s)
            stop = threading.Event()
            worker = threading.Thread(target=outbox.run, args=(stop,), daemon=True)
            worker.start()
            print(f"playing {path.name} in real time ({args.seconds:g} s, {len(labels)} defects) ...", file=sys.stderr)
            wall0, native = play(path, journal, "bench-1")
            time.sleep(2.0)
            stop.set()
            worker.join(10)
            outbox.close()
            journaled = {r.key: r for r in journal.read() if r.phase == "open"}
    receiver.close()

    rows = []
    for kind, onset in labels:
        found = [(arrived, body) for arrived, body in receiver.arrivals.values()
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
    source = "the detectors' ongoing events" if native else "bench stand-in (the detectors emit no ongoing events yet)"
    print(f"live announcements: {source}")
    print(f"{'kind':<14}{'onset s':>9}{'detected s':>12}{'latency s':>11}{'target s':>10}")
    for row in rows:
        latency = "missed" if row["latency_s"] is None else f"{row['latency_s']:.3f}"
        print(f"{row['kind']:<14}{row['onset_s']:>9.2f}{row.get('detected_start_s', float('nan')):>12.2f}"
              f"{latency:>11}{row.get('target_s', target):>10.1f}")
    summary = {"defects": len(rows), "alerted": len(latencies), "journaled_open": len(journaled),
               "native_ongoing": native, "target_s": target}
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
