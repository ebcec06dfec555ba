"""`loop://PATH`: a file played over and over at the pace of its media, as a live channel.

Each pass is decoded by a fresh MediaReader; its buffers are moved along by the media
already played, so detectors see one continuous clock (no jump at the seam) and a
live consumer sees media no faster than real time. `loop://clip.ts?passes=3` stops
after three passes (default: never); `speed=4` plays four times faster (tests),
`speed=0` unpaced. `loop:PATH` (one slash less) is the same.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote

from streamqc.errors import InputError
from streamqc.media import Buffer, StreamNote
from streamqc.sources.reader import MediaInfo, MediaReader, SourceOptions, open_media

SCHEME = "loop://"
_KEYS = {"speed", "passes"}


def is_loop_url(url: str) -> bool:
    return url.startswith("loop:")


@dataclasses.dataclass(frozen=True, slots=True)
class LoopUrl:
    path: str
    speed: float = 1.0
    passes: int = 0  # 0: forever


def parse_loop_url(url: str) -> LoopUrl:
    body = url.removeprefix(SCHEME) if url.startswith(SCHEME) else url.removeprefix("loop:")
    path, _, query = body.rpartition("?")
    params = parse_qs(query) if path else {}
    if not path or not params or not set(params) <= _KEYS:
        return LoopUrl(unquote(body))  # a '?' that is part of the file's name
    try:
        speed = float(params.get("speed", ["1"])[0])
        passes = int(params.get("passes", ["0"])[0])
    except ValueError:
        raise InputError(f"bad loop URL (speed is a number, passes a whole number): {url}") from None
    if speed < 0 or passes < 0:
        raise InputError(f"bad loop URL (speed >= 0, passes >= 0): {url}")
    return LoopUrl(unquote(path), speed, passes)


def open_loop(url: str, options: SourceOptions = SourceOptions()) -> "LoopReader":
    return LoopReader(url, options)


class LoopReader:
    """Same interface as MediaReader: `info`, one pass of iteration, `close()`.

    Opening checks the file at once (InputError with the reader's reason).
    """

    def __init__(self, url: str, options: SourceOptions = SourceOptions()) -> None:
        spec = parse_loop_url(url)
        if "://" in spec.path:
            raise InputError(f"loop: plays files, not network streams: {url}")
        first = open_media(spec.path, options)
        self.url = url
        self.path = spec.path
        self.passes = spec.passes
        self.passes_done = 0
        self.options = options
        self._spec = spec
        self._current: MediaReader | None = first
        self._closed = False
        self._iterating = False
        self._wake = threading.Event()  # cuts a pacing wait short on close
        self.video_stream = first.video_stream
        info = first.info
        self.info = MediaInfo(url, f"loop ({info.format})", None, info.video, info.audio, info.tracks_in_container)
        self._buffers: Iterator[Buffer] | None = None

    def close(self) -> None:
        """Safe from another thread: a pass being decoded is closed by the iterating thread."""
        self._closed = True
        self._wake.set()
        if not self._iterating and self._current is not None:
            self._current.close()

    def __enter__(self) -> "LoopReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Buffer]:
        if self._buffers is None:
            self._buffers = self._generate()
        return self._buffers

    def _generate(self) -> Iterator[Buffer]:
        self._iterating = True
        yield StreamNote("tracks", 0.0, "container", self.info.to_dict())
        offset = 0.0
        started = time.monotonic()
        speed = self._spec.speed
        try:
            while not self._closed:
                reader = self._current or self._reopen()
                if reader is None:
                    yield StreamNote("read_error", offset, "container", {"reason": f"cannot open {self.path} again"})
                    break
                pass_end = 0.0
                for buffer in reader:
                    if self._closed:
                        break
                    if isinstance(buffer, StreamNote) and buffer.kind in ("tracks", "end"):
                        pass_end = max(pass_end, buffer.time) if buffer.kind == "end" else pass_end
                        continue
                    buffer.time += offset
                    if speed > 0 and not isinstance(buffer, StreamNote):
                        wait = started + buffer.time / speed - time.monotonic()
                        if wait > 0 and self._wake.wait(wait):
                            break
                    yield buffer
                reader.close()  # on this thread, also when cut short
                self._current = None
                if self._closed:
                    break
                self.passes_done += 1
                if pass_end <= 0.0:  # nothing decoded in a pass: looping would spin
                    yield StreamNote("read_error", offset, "container", {"reason": f"no media decoded from {self.path}"})
                    break
                offset += pass_end
                if self.passes and self.passes_done >= self.passes:
                    break
        finally:
            self._closed = True
            if self._current is not None:
                self._current.close()
            self._iterating = False
        yield StreamNote("end", offset, "container")

    def _reopen(self) -> MediaReader | None:
        try:
            self._current = open_media(self._spec.path, self.options)
        except InputError:
            return None  # the file went away between passes: the channel ends
        self.video_stream = self._current.video_stream
        return self._current
