"""A worker process: runs its share of the streams, one `StreamRunner` thread each.

It talks to the supervisor over one duplex pipe: commands in (`add`, `remove`,
`pause`, `resume`, `switch`, `stop`), status snapshots out twice a second. Events do
not travel over the pipe: each runner journals them itself (the journal is the
hand-over point), so a worker killed at any moment loses nothing it journaled.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

STATUS_EVERY_S = 0.5
WATCH_EVERY_S = 0.25


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the supervisor dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_main(index: int, config_json: str, conn: Connection, parent_pid: int, measurements: bool) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the supervisor decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from streamqc.monitor.config import MonitorConfig, StreamConfig
    from streamqc.monitor.runner import RunnerSettings, StreamRunner
    from streamqc.sinks.journal import Journal
    from streamqc.detectors.loudness import lfilter

    lfilter()  # scipy.signal loads now, not while a stream's first sound waits (a lag spike)

    config = MonitorConfig.model_validate_json(config_json)
    settings = RunnerSettings.from_config(config)
    journal = Journal(config.journal_path)
    runners: dict[str, StreamRunner] = {}
    send_lock = threading.Lock()

    def send(message: Any) -> None:
        with send_lock:
            try:
                conn.send(message)
            except (OSError, EOFError, BrokenPipeError):
                pass

    on_measurement = (lambda row: send(("measurement", row))) if measurements else None

    def add(stream_json: str, paused: bool) -> None:
        stream = StreamConfig.model_validate_json(stream_json)
        old = runners.pop(stream.id, None)
        if old is not None:
            old.stop()
        runner = StreamRunner(stream, config.detector_options(stream), settings, journal,
                              on_measurement=on_measurement)
        runners[stream.id] = runner
        if paused:
            runner.paused = True
            runner.state = "paused"
        runner.start()

    def stop_all() -> None:
        threads = [threading.Thread(target=r.stop, daemon=True) for r in runners.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)

    next_status = 0.0
    next_watch = 0.0
    try:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)  # the supervisor is gone: a restarted service takes over
            if conn.poll(WATCH_EVERY_S / 2):
                try:
                    command, *args = conn.recv()
                except (EOFError, OSError):
                    os._exit(0)
                if command == "stop":
                    stop_all()
                    send(("stopped", index))
                    return
                if command == "add":
                    add(*args)
                elif command in ("remove", "pause", "resume", "switch"):
                    runner = runners.get(args[0])
                    if runner is None:
                        continue
                    if command == "remove":
                        runners.pop(args[0]).stop()
                    elif command == "pause":
                        runner.pause()
                    elif command == "resume":
                        runner.resume()
                    else:
                        runner.switch_source(args[1])
            now = time.monotonic()
            if now >= next_watch:
                next_watch = now + WATCH_EVERY_S
                for runner in list(runners.values()):
                    runner.check(now)
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                send(("status", index, os.getpid(), _rss_bytes(), [r.status() for r in runners.values()]))
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is ignored above
        stop_all()
    finally:
        sys.stdout.flush()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
