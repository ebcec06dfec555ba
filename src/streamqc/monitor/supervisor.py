"""The supervisor: N worker processes share the streams; a dead worker is replaced at once.

Streams go to the worker with the fewest. The supervisor's thread waits on every
worker's pipe and process sentinel together, so a worker that dies (SIGKILL, a crash
in native code, the OOM killer) is noticed within milliseconds, and a spare worker,
started in advance with its imports done, takes its slot and its streams at once
(starting a Python process with FFmpeg, numpy and scipy takes seconds on a busy host);
a new spare is then started in the background. The control surface (`add_stream` ... `streams()`) is what the
HTTP API uses; every method is thread-safe.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from streamqc.errors import ConfigError
from streamqc.events import utc_now_iso
from streamqc.monitor.config import MonitorConfig, StreamConfig
from streamqc.monitor.worker import worker_main
from streamqc.pipeline import build_detectors


@dataclasses.dataclass(slots=True)
class StreamStatus:
    id: str
    url: str
    state: str  # starting | ok | degraded | down | paused
    since: str
    processing_lag_s: float = 0.0
    frames: int = 0
    media_seconds: float = 0.0
    decode_errors: int = 0
    worker: int | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    shed_frames: int = 0
    attempts: int = 0
    restarts: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class _Slot:
    index: int
    process: Any = None
    conn: Connection | None = None
    pid: int | None = None
    rss_bytes: int = 0
    started: float = 0.0
    restarts: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class Supervisor:
    def __init__(self, config: MonitorConfig,
                 on_measurement: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.on_measurement = on_measurement
        self._ctx = multiprocessing.get_context("spawn")  # no inherited threads or sockets
        self._lock = threading.RLock()
        self._slots = [_Slot(i) for i in range(config.worker_count)]
        self._spare = _Slot(-1)
        self._streams: dict[str, StreamConfig] = {}
        self._paused: set[str] = set()
        self._assigned: dict[str, int] = {}
        self._status: dict[str, StreamStatus] = {}
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._config_json = config.model_copy(update={"streams": []}).model_dump_json()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
            self._spawn(self._spare)
            for stream in self.config.streams:
                if stream.enabled:
                    self._add(stream)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every worker cleanly: each closes its open events with their real end."""
        self._stopping.set()  # no more restarts; the watch thread keeps reading the pipes
        with self._lock:
            for slot in self._all():
                self._send(slot, ("stop",))
        deadline = time.monotonic() + timeout_s
        for slot in self._all():
            if slot.process is not None:
                slot.process.join(max(0.1, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.terminate()
                    slot.process.join(2.0)
        self._closed.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def __enter__(self) -> "Supervisor":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control surface ----------------------------------------------------
    def add_stream(self, stream: StreamConfig) -> None:
        build_detectors(self.config.detector_options(stream))  # a bad option fails here, not in a worker
        with self._lock:
            if stream.id in self._streams:
                raise ConfigError(f"stream {stream.id!r} is already monitored")
            self._add(stream)

    def remove_stream(self, stream_id: str) -> None:
        with self._lock:
            self._known(stream_id)
            slot = self._slots[self._assigned.pop(stream_id)]
            del self._streams[stream_id]
            self._status.pop(stream_id, None)
            self._paused.discard(stream_id)
            self._send(slot, ("remove", stream_id))

    def pause_stream(self, stream_id: str) -> None:
        with self._lock:
            self._known(stream_id)
            self._paused.add(stream_id)
            self._status[stream_id].state = "paused"
            self._send(self._slots[self._assigned[stream_id]], ("pause", stream_id))

    def resume_stream(self, stream_id: str) -> None:
        with self._lock:
            self._known(stream_id)
            self._paused.discard(stream_id)
            self._send(self._slots[self._assigned[stream_id]], ("resume", stream_id))

    def switch_source(self, stream_id: str, url: str) -> None:
        """Read the stream from `url` from now on (primary and backup, either way)."""
        with self._lock:
            stream = self._known(stream_id)
            self._streams[stream_id] = stream.model_copy(update={"url": url}) if url != stream.url else stream
            self._status[stream_id].url = url
            self._send(self._slots[self._assigned[stream_id]], ("switch", stream_id, url))

    def streams(self) -> list[StreamStatus]:
        with self._lock:
            return [dataclasses.replace(s, tags=dict(s.tags)) for s in self._status.values()]

    def workers(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"index": s.index, "pid": s.pid, "alive": bool(s.process and s.process.is_alive()),
                     "rss_bytes": s.rss_bytes, "restarts": s.restarts,
                     "streams": sorted(k for k, v in self._assigned.items() if v == s.index)}
                    for s in self._slots]

    # -- internals ----------------------------------------------------------
    def _known(self, stream_id: str) -> StreamConfig:
        if stream_id not in self._streams:
            raise KeyError(f"no stream {stream_id!r}")
        return self._streams[stream_id]

    def _add(self, stream: StreamConfig) -> None:
        counts = {slot.index: 0 for slot in self._slots}
        for index in self._assigned.values():
            counts[index] += 1
        index = min(counts, key=lambda i: (counts[i], i))
        self._streams[stream.id] = stream
        self._assigned[stream.id] = index
        self._status[stream.id] = StreamStatus(stream.id, stream.url, "starting", utc_now_iso(),
                                               worker=index, tags=dict(stream.tags))
        self._send(self._slots[index], ("add", stream.model_dump_json(), False))

    def _spawn(self, slot: _Slot) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main, name=f"streamqc-worker-{slot.index}", daemon=True,
            args=(slot.index, self._config_json, child_end, os.getpid(), self.on_measurement is not None))
        process.start()
        child_end.close()
        slot.process, slot.conn, slot.pid, slot.started = process, parent_end, process.pid, time.monotonic()

    def _all(self) -> list[_Slot]:
        return [*self._slots, self._spare]

    def _respawn(self, slot: _Slot) -> None:
        """A worker died: the spare (or a new process) takes its slot and every stream it had."""
        code = slot.process.exitcode if slot.process is not None else None
        if slot.conn is not None:
            slot.conn.close()
        if slot is self._spare:
            self._spawn(slot)
            return
        slot.restarts += 1
        spare = self._spare
        if spare.process is not None and spare.process.is_alive():
            slot.process, slot.conn, slot.pid, slot.started = spare.process, spare.conn, spare.pid, time.monotonic()
            spare.process = spare.conn = spare.pid = None
        else:
            self._spawn(slot)
        print(f"streamqc monitor: worker {slot.index} died (exit {code}); pid {slot.pid} took over its streams",
              file=sys.stderr, flush=True)
        for stream_id, index in self._assigned.items():
            if index == slot.index:
                status = self._status[stream_id]
                status.state, status.since = "starting", utc_now_iso()
                self._send(slot, ("add", self._streams[stream_id].model_dump_json(), stream_id in self._paused))
        if self._spare.process is None:
            self._spawn(self._spare)

    def _send(self, slot: _Slot, message: tuple) -> None:
        if slot.conn is None:
            return
        with slot.lock:
            try:
                slot.conn.send(message)
            except (OSError, BrokenPipeError):
                pass  # a dead worker: the watch thread restarts it with its streams

    def _watch(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                waitables: dict[Any, _Slot] = {}
                for slot in self._all():
                    if slot.conn is not None:
                        waitables[slot.conn] = slot
                    if slot.process is not None:
                        waitables[slot.process.sentinel] = slot
            ready = wait(list(waitables), timeout=0.2)
            with self._lock:
                for item in ready:
                    slot = waitables[item]
                    if item is slot.conn:
                        self._drain(slot)
                stopping = self._stopping.is_set()
                if not stopping:
                    for slot in {id(waitables[i]): waitables[i] for i in ready}.values():
                        if slot.process is not None and not slot.process.is_alive():
                            self._respawn(slot)
            if stopping:
                time.sleep(0.05)  # the sentinels of exited workers stay ready: do not spin


    def _drain(self, slot: _Slot) -> None:
        conn = slot.conn
        try:
            while conn is not None and conn.poll():
                message = conn.recv()
                if message[0] == "status":
                    _, _, pid, rss, statuses = message
                    index = slot.index
                    slot.rss_bytes = rss
                    for item in statuses:
                        if self._assigned.get(item["id"]) != index:
                            continue  # removed or moved meanwhile
                        status = self._status[item["id"]]
                        for field in ("url", "state", "since", "processing_lag_s", "frames", "media_seconds",
                                      "decode_errors", "shed_frames", "attempts", "restarts", "last_error"):
                            setattr(status, field, item[field])
                        status.worker = index
                elif message[0] == "measurement" and self.on_measurement is not None:
                    self.on_measurement(message[1])
        except (EOFError, OSError):
            pass  # the worker died mid-message: its sentinel says so too
