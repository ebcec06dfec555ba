"""One monitored stream: read, decode, detect, journal; reconnect; report its state.

A `StreamRunner` owns one thread that loops over *sessions*: open the input, feed every
buffer to a fresh detector chain, publish the events, and when the input ends or fails,
close what is open and open again after an exponential backoff with jitter.

The stream's media clock runs on across sessions: a session starts where the previous
one ended plus the wall-clock time the input was away, so event times of one stream
never go back and a `stream.down` spans the outage.

A worker's watchdog thread calls `check(now)` on every runner a few times a second:
- no media for `stall_timeout_s` (or never any since the runner started): `stream.down`
  once (journaled "open"), closed with `stream.recovered` when media flows again;
- one step (a read, a decode or a detector call) taking longer than `hang_timeout_s`:
  the session thread is abandoned and a new one started, for this stream alone.

Every event is made durable in the journal before anything else sees it. Ongoing
events (a freeze that reached its minimum duration) get a fresh id and are journaled
"open"; their closing event is journaled "closed" under the same id.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from streamqc.errors import StreamQCError
from streamqc.events import Event, Severity, utc_now_iso
from streamqc.media import StreamNote, VideoFrame
from streamqc.monitor.config import MonitorConfig, ReconnectConfig, StreamConfig
from streamqc.pipeline import DetectorChain, DetectorOptions
from streamqc.sinks.journal import CLOSED, OPEN, Journal, Record, new_event_id
from streamqc.sources import SourceOptions, open_media
from streamqc.sources.loop import LoopReader, is_loop_url

STARTING, OK, DEGRADED, DOWN, PAUSED = "starting", "ok", "degraded", "down", "paused"

# A defect that closed less than this long ago still counts for "degraded".
DEGRADED_HOLD_S = 10.0
# A stream that was down is up again once this much media has come in a row.
RECOVERY_MEDIA_S = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class RunnerSettings:
    stall_timeout_s: float = 5.0
    max_lag_s: float = 2.0
    hang_timeout_s: float = 20.0
    decoder_threads: int = 1
    reconnect: ReconnectConfig = ReconnectConfig()

    @classmethod
    def from_config(cls, config: MonitorConfig) -> "RunnerSettings":
        return cls(config.stall_timeout_s, config.max_lag_s, config.hang_timeout_s,
                   config.decoder_threads, config.reconnect)


def open_live(url: str, options: SourceOptions):
    """The reader for a monitored URL: `loop://file` plays a file in real time, forever."""
    if is_loop_url(url):
        return LoopReader(url, options)
    return open_media(url, options)


class Backoff:
    """Exponential backoff with jitter: initial, 2x, 4x ... up to max, each cut at random."""

    def __init__(self, config: ReconnectConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.config.max_s, self.config.initial_s * 2.0 ** self.failures)
        self.failures += 1
        # Jitter spreads the retries of many streams that failed together (one origin down).
        return base * (1.0 - self.config.jitter * self._rng.random())

    def reset(self) -> None:
        self.failures = 0


@dataclasses.dataclass(slots=True)
class _Open:
    """An announced (ongoing) event waiting for its closing event."""

    id: str
    event: Event


class _Abandoned(Exception):
    """The watchdog gave up on this session thread; it must stop without publishing."""


class StreamRunner:
    def __init__(self, stream: StreamConfig, detector_options: DetectorOptions, settings: RunnerSettings,
                 journal: Journal, on_record: Callable[[Record], None] | None = None,
                 on_measurement: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.stream = stream
        self.detector_options = detector_options
        self.settings = settings
        self.journal = journal
        self.on_record = on_record
        self.on_measurement = on_measurement
        self.url = stream.url
        self._lock = threading.RLock()  # guards state shared with the watchdog and status readers
        self._stop = threading.Event()
        self._ending = threading.Event()
        self._wake = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._reader: Any = None
        self._backoff = Backoff(settings.reconnect)
        # state
        self.state = STARTING
        self.since = utc_now_iso()
        self.paused = False
        self.frames = 0
        self.decode_errors = 0
        self.shed_frames = 0
        self.attempts = 0
        self.restarts = 0
        self.last_error: str | None = None
        self.processing_lag_s = 0.0
        self._open: dict[tuple, _Open] = {}
        self._last_defect_wall = float("-inf")
        self._down: _Open | None = None
        # clock
        self._media_end = 0.0  # stream media time reached so far (seconds)
        self._offset = 0.0  # added to the session's media time
        self._session_clock: float | None = None  # min(wall - media) this session: the real-time baseline
        self._last_media_wall = time.monotonic()
        self._step_since: float | None = None
        self._shedding: _Open | None = None
        self._shed_at_start = 0
        self._draining = False  # the input failed; the decoder is giving back what it held
        self._recovery_start: float | None = None  # media time media came back while down
        self._max_lag_s = 0.0
        self._next_measure = 0.0
        # events of the journal left open by a previous run (a crash): closed once the
        # stream's state is known again
        self._orphans: list[Record] = [r for r in journal.open_defects(stream.id)]

    # -- control ------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._last_media_wall = time.monotonic()
            self._generation += 1
            self._thread = threading.Thread(target=self._loop, args=(self._generation,),
                                            name=f"stream-{self.stream.id}", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and close every open event with its real end (the last media seen)."""
        self._stop.set()
        self._wake.set()
        reader = self._reader
        if reader is not None and hasattr(reader, "close") and isinstance(reader, LoopReader):
            reader.close()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        with self._lock:
            if thread is not None and thread.is_alive():
                self._generation += 1  # whatever it still does is not published
            self._close_all("shutdown")
            if self._orphans:
                self._close_orphans(closed_by="shutdown")
            if self._down is not None:
                self._close_down(self._media_now(), recovered=False, closed_by="shutdown")

    def pause(self) -> None:
        with self._lock:
            self.paused = True
            self._set_state(PAUSED)
        self._end_session()

    def resume(self) -> None:
        with self._lock:
            self.paused = False
            self._last_media_wall = time.monotonic()
            self._set_state(STARTING)
        self._wake.set()

    def switch_source(self, url: str) -> None:
        with self._lock:
            self.url = url
            self._backoff.reset()
        self._end_session()

    def _end_session(self) -> None:
        """End the current session at its next buffer, closing what is open (pause, switch)."""
        self._ending.set()
        self._wake.set()
        if isinstance(self._reader, LoopReader):
            self._reader.close()

    def _interrupt(self) -> None:
        """Give up on a session thread that hangs: a new thread takes over the stream."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            old = self._thread
        if isinstance(self._reader, LoopReader):
            self._reader.close()
        # A blocked network read ends by its own timeout; meanwhile a new thread takes over.
        if old is not None and old.is_alive():
            old.join(0.5)
        if not self._stop.is_set():
            self._thread = threading.Thread(target=self._loop, args=(generation,),
                                            name=f"stream-{self.stream.id}", daemon=True)
            self._thread.start()

    # -- status -------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "id": self.stream.id, "url": self.url, "state": self.state, "since": self.since,
                "processing_lag_s": round(self.processing_lag_s, 3), "frames": self.frames,
                "media_seconds": round(self._media_end, 3), "decode_errors": self.decode_errors,
                "shed_frames": self.shed_frames, "attempts": self.attempts, "restarts": self.restarts,
                "last_error": self.last_error, "tags": dict(self.stream.tags),
            }

    def check(self, now: float) -> None:
        """The watchdog's look at this stream: stalls and hangs."""
        with self._lock:
            if self.paused or self._stop.is_set():
                return
            step = self._step_since
            if step is not None and now - step > self.settings.hang_timeout_s:
                self.last_error = f"no progress for {now - step:.0f} s: session restarted"
                self.restarts += 1
                self._step_since = None
                self._close_all("restart")  # the stuck session's detectors are given up with it
                restart = True
            else:
                restart = False
            if self._down is None and now - self._last_media_wall > self.settings.stall_timeout_s:
                self._raise_down()
        if restart:
            print(f"streamqc monitor: stream {self.stream.id}: {self.last_error}", file=sys.stderr, flush=True)
            self._interrupt()

    # -- the session loop ---------------------------------------------------
    def _alive(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _loop(self, generation: int) -> None:
        while self._alive(generation):
            if self.paused:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            started = time.monotonic()
            self._ending.clear()
            try:
                self._session(generation)
            except _Abandoned:
                return
            except StreamQCError as err:  # the input cannot be opened: retried below
                with self._lock:
                    self.last_error = str(err)
            except Exception as err:  # a detector or decoder bug: this stream restarts, alone
                with self._lock:
                    self.last_error = f"{type(err).__name__}: {err}"
                    self.restarts += 1
                print(f"streamqc monitor: stream {self.stream.id} failed and restarts: {self.last_error}",
                      file=sys.stderr, flush=True)
            finally:
                self._reader = None
                with self._lock:
                    self._step_since = None
            if not self._alive(generation):
                return
            if time.monotonic() - started >= self.settings.reconnect.reset_after_s and self._media_seen_since(started):
                self._backoff.reset()
            elif not self._media_seen_since(started):
                with self._lock:
                    self._fail_over()
            delay = self._backoff.next_delay()
            self._wake.wait(delay)
            self._wake.clear()

    def _fail_over(self) -> None:
        """An attempt gave no media: with a backup URL, the next attempt uses the other source."""
        backup = self.stream.backup_url
        if backup and self.url in (self.stream.url, backup):
            self.url = backup if self.url == self.stream.url else self.stream.url

    def _media_now(self) -> float:
        """The stream's media clock now: it runs on at wall-clock pace while no media comes."""
        return self._media_end + max(0.0, time.monotonic() - self._last_media_wall)

    def _media_seen_since(self, started: float) -> bool:
        return self._last_media_wall > started

    def _session(self, generation: int) -> None:
        with self._lock:
            self.attempts += 1
            url = self.url
            self._step_since = time.monotonic()
        options = SourceOptions(threads=self.settings.decoder_threads,
                                open_timeout_s=max(self.settings.stall_timeout_s, 5.0),
                                # longer than the stall timeout: the watchdog reports a stall,
                                # the read timeout only ends a session that is not coming back
                                read_timeout_s=2.0 * max(self.settings.stall_timeout_s, 2.5))
        reader = open_live(url, options)
        self._reader = reader
        chain = DetectorChain.from_options(self.detector_options)
        measures = [d for d in chain.detectors if _measures(d)]
        session_end = self._media_end
        with reader:
            if not self._alive(generation):
                raise _Abandoned
            with self._lock:
                # The input was away for the wall time since its last media: the clock runs on.
                gap = max(0.0, time.monotonic() - self._last_media_wall) if self.frames else 0.0
                self._offset = self._media_end + gap
                self._session_clock = None
                self._draining = False
                self._recovery_start = None
            buffers = iter(reader)
            while True:
                with self._lock:
                    self._step_since = time.monotonic()
                try:
                    buffer = next(buffers)
                except StopIteration:
                    break
                if generation != self._generation:
                    raise _Abandoned
                if self._stop.is_set() or self._ending.is_set():
                    break
                if isinstance(buffer, StreamNote) and buffer.kind == "end":
                    break
                if buffer.time == buffer.time:  # NaN: a note with no time of its own
                    buffer.time += self._offset
                events = self._take(buffer, chain, measures)
                if generation != self._generation:
                    raise _Abandoned
                self._publish_all(events)
                session_end = max(session_end, self._media_end)
        with self._lock:
            self._step_since = None
        if generation == self._generation:
            # The runs still open end where the media ended: their real end.
            self._publish_all(chain.finish(session_end))
            with self._lock:
                self._close_all("session end")

    def _take(self, buffer, chain: DetectorChain, measures: list) -> list[Event]:
        """Feed one buffer, keeping the clock, the lag and the counters."""
        now = time.monotonic()
        events: list[Event] = []
        if isinstance(buffer, StreamNote):
            if buffer.kind == "read_error":
                # What follows is the decoder emptying its delay line, not the input
                # coming back: it is analysed but neither ends a stall nor counts as lag.
                self._draining = True
            if buffer.kind == "decode_error":
                self.decode_errors += 1
            if buffer.kind == "event" and isinstance(buffer.details.get("event"), Event):
                events.append(buffer.details["event"])  # a source-level event (hls.*, ...)
                return events
            return chain.feed(buffer)
        end = buffer.time + buffer.duration
        with self._lock:
            if not self._draining:
                if self._down is not None and self._recovery_start is None:
                    # The clock ran on while the input was away (the timestamps of a
                    # resumed feed need not say so): event times keep pace with the wall.
                    shift = self._media_end + (now - self._last_media_wall) - buffer.time
                    if shift > 0.1:
                        self._offset += shift
                        buffer.time += shift
                        end += shift
                self._last_media_wall = now
                if self._down is not None:
                    # Recovered once media flows again for a while: the few buffers a
                    # decoder gives back when its input ends are not a recovery.
                    if self._recovery_start is None:
                        self._recovery_start = buffer.time
                    elif end - self._recovery_start >= RECOVERY_MEDIA_S:
                        self._close_down(self._recovery_start, recovered=True)
                if self._orphans:
                    self._close_orphans()
                if self._session_clock is None or now - buffer.time < self._session_clock:
                    self._session_clock = now - buffer.time
        if isinstance(buffer, VideoFrame):
            self.frames += 1
            if self._shedding is not None:
                self.shed_frames += 1
                events.extend(self._after_feed(buffer, end, measures))
                return events
        events.extend(chain.feed(buffer))
        events.extend(self._after_feed(buffer, end, measures))
        return events

    def _after_feed(self, buffer, end: float, measures: list) -> list[Event]:
        events: list[Event] = []
        done = time.monotonic()
        with self._lock:
            self._media_end = max(self._media_end, end)
            if self._session_clock is None or self._draining:
                return events
            lag = max(0.0, (done - buffer.time) - self._session_clock)
            self.processing_lag_s = lag
            self._max_lag_s = max(self._max_lag_s, lag)
            if self._shedding is None and lag > self.settings.max_lag_s:
                self._start_shedding(buffer.time, lag)
            elif self._shedding is not None and lag < self.settings.max_lag_s / 2:
                self._stop_shedding(buffer.time)
            self._refresh_state()
        if self.on_measurement is not None and buffer.time >= self._next_measure:
            self._next_measure = buffer.time + 1.0
            row: dict[str, Any] = {"stream": self.stream.id, "at": utc_now_iso(), "media_time": round(buffer.time, 3),
                                   "processing_lag_s": round(self.processing_lag_s, 3)}
            for detector in measures:
                row.update(detector.measure())
            self.on_measurement(row)
        return events

    # -- publishing ---------------------------------------------------------
    def _publish_all(self, events: list[Event]) -> None:
        for event in events:
            self._publish(event)

    def _publish(self, event: Event, event_id: str | None = None, phase: str | None = None) -> Record:
        """Journal first (durable on return), then hand on."""
        with self._lock:
            event.stream = self.stream.id
            event.at = utc_now_iso()
            event.start = max(0.0, event.start)
            event.end = max(event.start, event.end)
            if event_id is None:
                key = _key(event)
                if event.ongoing:
                    if key in self._open:
                        return Record(0, self._open[key].id, OPEN, event)  # announced already
                    event_id = new_event_id()
                    self._open[key] = _Open(event_id, event)
                elif key in self._open:
                    event_id = self._open.pop(key).id
            if event.is_defect and event.kind not in ("stream.down", "stream.lag"):
                self._last_defect_wall = time.monotonic()
            record = self.journal.append(event, event_id, phase)
            self._refresh_state()
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _start_shedding(self, media_time: float, lag: float) -> None:
        """Behind real time: pictures go unanalysed until the lag halves (sound is cheap and stays)."""
        self._max_lag_s = lag
        event = Event("stream.lag", media_time, media_time, Severity.MINOR, 1.0,
                      {"max_lag_s": self.settings.max_lag_s, "lag_s": round(lag, 3)}, ongoing=True)
        self._shedding = _Open(new_event_id(), event)
        self._shed_at_start = self.shed_frames
        self._publish(event, self._shedding.id, OPEN)

    def _stop_shedding(self, media_time: float) -> None:
        assert self._shedding is not None
        opened, self._shedding = self._shedding, None
        closing = dataclasses.replace(opened.event, end=max(opened.event.start, media_time), ongoing=False, details={
            **opened.event.details, "lag_s": round(self._max_lag_s, 3),
            "shed_frames": self.shed_frames - self._shed_at_start})
        self._publish(closing, opened.id, CLOSED)

    def _close_all(self, closed_by: str) -> None:
        """Close what is still announced (the chain's finish closes its own runs first)."""
        for key, opened in list(self._open.items()):
            if opened.event.kind == "stream.down":
                continue
            closing = dataclasses.replace(opened.event, ongoing=False, end=max(opened.event.end, self._media_end),
                                          details={**opened.event.details, "closed_by": closed_by})
            self._publish(closing, opened.id, CLOSED)
            self._open.pop(key, None)
        if self._shedding is not None:
            self._stop_shedding(self._media_end)

    def _raise_down(self) -> None:
        reason = self.last_error or f"no media for {self.settings.stall_timeout_s:g} s"
        event = Event("stream.down", self._media_end, self._media_end, Severity.CRITICAL, 1.0,
                      {"reason": reason, "url": self.url, "stall_timeout_s": self.settings.stall_timeout_s,
                       "never_up": self.frames == 0}, ongoing=True)
        event_id = new_event_id()
        self._down = _Open(event_id, event)
        self._recovery_start = None
        self._set_state(DOWN)
        self._publish(event, event_id, OPEN)
        if self._orphans:
            self._close_orphans()

    def _close_down(self, media_time: float, recovered: bool, closed_by: str | None = None) -> None:
        assert self._down is not None
        opened, self._down = self._down, None
        end = max(opened.event.start, media_time)
        details = {**opened.event.details, "duration_s": round(end - opened.event.start, 3)}
        if closed_by:
            details["closed_by"] = closed_by
        self._publish(dataclasses.replace(opened.event, end=end, ongoing=False, details=details), opened.id, CLOSED)
        if recovered:
            self.last_error = None
            self._publish(Event("stream.recovered", end, end, Severity.INFO, 1.0,
                                {"down_s": round(end - opened.event.start, 3), "url": self.url}))
            self._backoff.reset()

    def _close_orphans(self, closed_by: str = "restart") -> None:
        """Close the events a crashed run left open, now that the stream's state is known.

        Their real end is unknown: the last time it was known to go on is the open
        record's `end`, so they close there, marked `closed_by: restart` with the state
        the stream was found in.
        """
        orphans, self._orphans = self._orphans, []
        state = DOWN if self._down is not None else OK
        for record in orphans:
            event = record.event
            closing = dataclasses.replace(event, ongoing=False, details={
                **event.details, "closed_by": closed_by, "state_after_restart": state})
            self._publish(closing, record.id, CLOSED)

    # -- state --------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = utc_now_iso()

    def _refresh_state(self) -> None:
        if self.paused:
            self._set_state(PAUSED)
        elif self._down is not None:
            self._set_state(DOWN)
        elif self.frames == 0:
            self._set_state(STARTING)
        elif self._open or self._shedding is not None or time.monotonic() - self._last_defect_wall < DEGRADED_HOLD_S:
            self._set_state(DEGRADED)
        else:
            self._set_state(OK)


def _key(event: Event) -> tuple:
    """What pairs an ongoing event with its closing event: kind, start and track."""
    return (event.kind, round(event.start, 3), event.details.get("track"))


def _measures(detector: Any) -> bool:
    method = getattr(detector, "measure", None)
    if method is None:
        return False
    try:
        return not inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False

