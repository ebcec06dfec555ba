"""Shared machinery of the live readers of our own (HLS, DASH, looped files).

A live reader has two halves: a fetcher thread that talks HTTP and writes the media
bytes into a `BytePipe`, and PyAV demuxing and decoding those bytes in-process through
the pipe's read end. Decoding runs on a thread of its own per container, so that a
delivery problem the fetcher sees while the demuxer waits for bytes (a stale playlist)
reaches the caller at once, as a `StreamNote(kind="event")`, instead of when media
flows again.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from streamqc.events import Event, Severity
from streamqc.media import Buffer, StreamNote
from streamqc.sources.live_options import LiveOptions
from streamqc.sources.reader import MediaInfo, MediaReader

_POLL_S = 0.25  # how often blocked waits look at the stop flag


def source_event(event: Event) -> StreamNote:
    """How a source-level event travels through the reader (docs/live-architecture.md)."""
    return StreamNote("event", event.start, "container", {"event": event})


class BytePipe:
    """Bytes written by a fetcher thread, read by PyAV as a non-seekable file.

    `read` blocks until bytes come or the pipe is closed (then b"": end of file).
    """

    def __init__(self, limit_bytes: int = 64 * 1024 * 1024) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit_bytes
        self._cond = threading.Condition()
        self._closed = False
        self.bytes_written = 0

    def write(self, data: bytes, stop: threading.Event | None = None) -> None:
        with self._cond:
            while self._size > self._limit and not self._closed and not (stop and stop.is_set()):
                self._cond.wait(_POLL_S)
            if self._closed or not data:
                return
            self._chunks.append(bytes(data))
            self._size += len(data)
            self.bytes_written += len(data)
            self._cond.notify_all()

    def close(self, discard: bool = False) -> None:
        """No more bytes: the reader gets end of file after what is buffered (or at once: `discard`)."""
        with self._cond:
            self._closed = True
            if discard:
                self._chunks.clear()
                self._size = 0
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_for_data(self, timeout_s: float) -> bool:
        """True once bytes were written; False if the pipe closed or the time ran out first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._chunks and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, _POLL_S))
            return bool(self._chunks)

    def peek(self, n: int) -> bytes:
        with self._cond:
            return b"".join(self._chunks)[:n] if self._chunks else b""

    def read(self, n: int) -> bytes:
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait(_POLL_S)
            out = bytearray()
            while self._chunks and len(out) < n:
                chunk = self._chunks.popleft()
                take = n - len(out)
                if len(chunk) > take:
                    self._chunks.appendleft(chunk[take:])
                    chunk = chunk[:take]
                out += chunk
            self._size -= len(out)
            self._cond.notify_all()
            return bytes(out)

    def read_end(self) -> "_ReadEnd":
        return _ReadEnd(self)


class _ReadEnd:
    """Only `read`: PyAV treats an object with `write` as an output."""

    def __init__(self, pipe: BytePipe) -> None:
        self._pipe = pipe

    def read(self, n: int) -> bytes:
        return self._pipe.read(n)


class Fetcher:
    """Base of the delivery threads: events and notes go to the reader's queue."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.out: queue.Queue[tuple[str, Any]] | None = None
        self._early: list[tuple[str, Any]] = []  # before the reader is iterated
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def emit(self, event: Event) -> None:
        self._put(("note", source_event(event)))

    def note(self, note: StreamNote) -> None:
        self._put(("note", note))

    def _put(self, item: tuple[str, Any]) -> None:
        with self._lock:
            if self.out is None:
                self._early.append(item)
                return
        self.out.put(item)

    def attach(self, out: queue.Queue) -> None:
        with self._lock:
            self.out = out
            for item in self._early:
                out.put(item)
            self._early = []

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run_guarded, name=type(self).__name__, daemon=True)
        self.thread.start()

    def _run_guarded(self) -> None:
        try:
            self.run()
        except Exception as err:  # a bug or an odd origin must end the stream, not hang it
            self.note(StreamNote("read_error", float("nan"), "container", {"reason": f"fetcher failed: {err!r}"}))
        finally:
            self.close_pipes()

    def run(self) -> None:
        raise NotImplementedError

    def close_pipes(self, discard: bool = False) -> None:
        raise NotImplementedError

    def finish(self) -> list[Event]:
        """Closing events of defects still open when the stream ends."""
        return []

    def shutdown(self) -> None:
        self.stop.set()
        self.close_pipes(discard=True)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5.0)


class LiveReader:
    """Decoded buffers of one or more containers fed by a fetcher, on one media clock.

    `parts[0]` gives the clock: the others (DASH's audio next to its video) are moved
    by the difference between their first timestamps and its first timestamp, so
    tracks muxed apart keep the sync the packager gave them. Same interface as
    MediaReader: `info`, iteration, `close()`, context manager.
    """

    def __init__(self, url: str, info: MediaInfo, parts: list[MediaReader], fetcher: Fetcher | None,
                 queue_limit: int = 256) -> None:
        self.url = url
        self.info = info
        self.options = parts[0].options
        self._parts = parts
        self._fetcher = fetcher
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._room = threading.Semaphore(queue_limit)  # decoded buffers waiting for the caller
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._buffers: Iterator[Buffer] | None = None
        if fetcher is not None:
            fetcher.attach(self._queue)

    def close(self) -> None:
        """Stop fetching and decoding; safe from another thread and more than once.

        A container is only ever closed by the thread that decodes it, after its decoder
        was drained: freeing a frame-threaded decoder whose workers are still busy
        deadlocks when a worker logs (PyAV's log callback needs the GIL the freeing
        thread holds). The closed pipes give the demuxers end of file at once.
        """
        self._stop.set()
        if self._fetcher is not None:
            self._fetcher.shutdown()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10.0)
        if not self._threads:
            for part in self._parts:  # never decoded: nothing in flight
                part.close()

    def __enter__(self) -> "LiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _decode(self, index: int, part: MediaReader) -> None:
        # Runs the part to its own end even when stopped (buffers are then dropped): its
        # end drains the decoder and closes the container on this thread.
        try:
            for buffer in part:
                if self._stop.is_set() or (isinstance(buffer, StreamNote) and buffer.kind in ("tracks", "end")):
                    continue
                while not self._room.acquire(timeout=_POLL_S):
                    if self._stop.is_set():
                        break
                else:
                    self._queue.put(("buffer", (index, buffer)))
        except Exception as err:  # never a traceback in the caller's thread
            self._queue.put(("note", StreamNote("read_error", float("nan"), "container", {"reason": repr(err)})))
        finally:
            self._queue.put(("done", index))

    def __iter__(self) -> Iterator[Buffer]:
        # One pass: iterating again (after a `break`) goes on where it stopped.
        if self._buffers is None:
            self._buffers = self._generate()
        return self._buffers

    def _generate(self) -> Iterator[Buffer]:
        yield StreamNote("tracks", 0.0, "container", self.info.to_dict())
        for index, part in enumerate(self._parts):
            thread = threading.Thread(target=self._decode, args=(index, part), name=f"decode-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        running = len(self._parts)
        done: set[int] = set()
        held: list[tuple[int, Buffer]] = []  # buffers of later parts until the clock's origin is known
        end_time = 0.0
        try:
            while running:
                try:
                    what, item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if what == "done":
                    running -= 1
                    done.add(item)
                    continue
                if what == "note":
                    end_time = max(end_time, _finite(item.time, end_time))
                    if item.time != item.time:
                        item.time = end_time
                    yield item
                    continue
                index, buffer = item
                self._room.release()
                if index and self._parts[0].origin is None and 0 not in done:
                    held.append((index, buffer))
                    continue
                for index, buffer in [*held, (index, buffer)]:
                    if self._align(index, buffer):
                        end_time = max(end_time, _end(buffer))
                        yield buffer
                held = []
            for index, buffer in held:
                if self._align(index, buffer):
                    end_time = max(end_time, _end(buffer))
                    yield buffer
            while not self._queue.empty():
                what, item = self._queue.get()
                if what == "note":
                    yield item
            if self._fetcher is not None:
                self._fetcher.shutdown()
                while not self._queue.empty():
                    what, item = self._queue.get()
                    if what == "note":
                        yield item
                for event in self._fetcher.finish():
                    end_time = max(end_time, event.end)
                    yield source_event(event)
        finally:
            self.close()
        yield StreamNote("end", end_time, "container")

    def _align(self, index: int, buffer: Buffer) -> bool:
        """Move a later part's buffer onto the first part's clock; False: it ends before time 0."""
        if index == 0:
            return True
        reference, own = self._parts[0].origin, self._parts[index].origin
        if reference is not None and own is not None:
            buffer.time += own - reference
        # A separately packaged track's first segment may begin before the first picture.
        return isinstance(buffer, StreamNote) or buffer.time + buffer.duration > 0


def _finite(value: float, default: float) -> float:
    return value if value == value else default


def _end(buffer: Buffer) -> float:
    if isinstance(buffer, StreamNote):
        return _finite(buffer.time, 0.0)
    return buffer.time + buffer.duration


def delivery_event(kind: str, start: float, end: float, severity: Severity = Severity.MAJOR,
                   ongoing: bool = False, **details: Any) -> Event:
    return Event(kind=kind, start=start, end=max(start, end), severity=severity, details=details, ongoing=ongoing)
