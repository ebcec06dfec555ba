#!/usr/bin/env python
"""How many live-paced 720p30 streams does `streamqc monitor` hold in real time here?

For N = 1, 2, 4, ... streams (each the 720p30 H.264 + AAC reference of bench_check.py,
played in real time and looped by `loop://`, every detector on), one run:
  1. starts the monitor's supervisor with `--workers` worker processes (default 2) and
     N streams, waits until every stream delivers, then `--warmup` seconds more;
  2. samples every stream's status twice a second for `--seconds`: processing lag
     (`processing_lag_s`: how far analysis is behind the stream's real-time pace),
     media seconds analysed, pictures shed; and every worker's RSS and CPU time;
  3. stops the supervisor and goes on to the next N, until N fails to hold (and one
     more N, to see the trend) or the list ends.

"Held in real time": the 95th percentile of the sampled lags is under 1 s, every stream
advanced at >= 0.97 s of media per wall second, and no picture was shed.

    .venv/bin/python bench/bench_monitor.py [--streams 1,2,4,6,8,10] [--seconds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(n: int, reference: Path, workers: int, seconds: float, warmup: float) -> dict:
    from streamqc.monitor import Supervisor, parse_config

    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as state:
        config = parse_config({
            "workers": workers, "state_dir": state,
            "streams": [{"id": f"s{i}", "url": f"loop://{reference}"} for i in range(n)],
        }, "bench")
        supervisor = Supervisor(config)
        supervisor.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(s.frames > 0 for s in supervisor.streams()):
                time.sleep(0.25)
            time.sleep(warmup)
            first = {s.id: s for s in supervisor.streams()}
            cpu0 = {w["pid"]: _cpu_seconds(w["pid"]) for w in supervisor.workers()}
            wall0 = time.monotonic()
            lags: list[float] = []
            rss: list[int] = []
            while time.monotonic() - wall0 < seconds:
                time.sleep(0.5)
                lags += [s.processing_lag_s for s in supervisor.streams()]
                rss.append(sum(w["rss_bytes"] for w in supervisor.workers()))
            wall = time.monotonic() - wall0
            last = {s.id: s for s in supervisor.streams()}
            cpu = sum(_cpu_seconds(pid) - start for pid, start in cpu0.items())
            pace = [(last[k].media_seconds - first[k].media_seconds) / wall for k in first]
            shed = sum(last[k].shed_frames - first[k].shed_frames for k in first)
            restarts = sum(w["restarts"] for w in supervisor.workers())
        finally:
            supervisor.stop()
    result = {
        "streams": n, "workers": workers, "seconds": round(wall, 1),
        "lag_median_s": round(statistics.median(lags), 3), "lag_p95_s": round(_percentile(lags, 0.95), 3),
        "lag_max_s": round(max(lags), 3), "pace_min": round(min(pace), 3), "pace_median": round(statistics.median(pace), 3),
        "shed_frames": shed, "worker_restarts": restarts,
        "rss_total_mib": round(statistics.median(rss) / 2**20, 1),
        "rss_per_stream_mib": round(statistics.median(rss) / 2**20 / n, 1),
        "cpu_cores_used": round(cpu / wall, 2), "cpu_per_stream": round(cpu / wall / n, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    result["held"] = result["lag_p95_s"] < 1.0 and result["pace_min"] >= 0.97 and shed == 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,2,4,6,8,10,12")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--reference-seconds", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from bench_check import ensure_reference

    reference, _ = ensure_reference(args.reference_seconds)
    print(f"\nreference: {reference.name}, looped in real time (loop://); {args.workers} workers; "
          f"{os.cpu_count()} cores; {args.seconds:g} s sampled per N after {args.warmup:g} s warm-up\n")
    header = ("N", "lag med s", "lag p95 s", "lag max s", "pace min", "shed", "RSS MiB", "RSS/stream", "cores", "cores/stream", "load", "held")
    print(" | ".join(header))
    results = []
    failed = 0
    for n in [int(x) for x in args.streams.split(",")]:
        r = measure(n, reference, args.workers, args.seconds, args.warmup)
        results.append(r)
        print(" | ".join(str(v) for v in (r["streams"], r["lag_median_s"], r["lag_p95_s"], r["lag_max_s"], r["pace_min"],
                                           r["shed_frames"], r["rss_total_mib"], r["rss_per_stream_mib"], r["cpu_cores_used"],
                                           r["cpu_per_stream"], r["load_average_1m"], "yes" if r["held"] else "NO")), flush=True)
        if not r["held"]:
            failed += 1
            if failed >= 2:
                break
    held = [r["streams"] for r in results if r["held"]]
    largest = max(held) if held else 0
    print(f"\nlargest N held in real time: {largest}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "largest_held": largest}, indent=1))


if __name__ == "__main__":
    main()
