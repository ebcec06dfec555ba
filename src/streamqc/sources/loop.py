"""`loop://PATH`: a media file played forever at the pace of its own clock, as a live input.

For demos, soak tests and benchmarks without a network sender: each pass is decoded
by the ordinary reader and shifted onto one continuous clock (pass 2 starts where pass
1 ended), and buffers are released no earlier than their media time after the start,
so the monitor sees exactly what a live channel playing that file would deliver.
`loop://clip.ts?passes=3` stops after three passes (default: never).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Iterator

from streamqc.errors import InputError
from streamqc.media import Buffer, StreamNote
from streamqc.sources.reader import MediaInfo, SourceOptions, open_media

SCHEME = "loop://"


def is_loop_url(url: str) -> bool:
    return url.startswith(SCHEME)


class LoopReader:
    def __init__(self, url: str, options: SourceOptions = SourceOptions()) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.path = urllib.parse.unquote((parsed.netloc or "") + parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        try:
            self.passes = int(query.get("passes", ["0"])[0])
        except ValueError:
            raise InputError(f"bad passes= in {url}: expected a whole number") from None
        self.url = url
        self.options = options
        self._stop = threading.Event()
        first = open_media(self.path, options)  # fails now, with the reader's reason, if unreadable
        self.info: MediaInfo = first.info
        self._first = first
        self.video_stream = first.video_stream

    def __iter__(self) -> Iterator[Buffer]:
        started = time.monotonic()
        offset = 0.0
        passes = 0
        reader = self._first
        while not self._stop.is_set():
            end = offset
            with reader:
                for buffer in reader:
                    if isinstance(buffer, StreamNote):
                        if buffer.kind == "end":
                            end = offset + buffer.time
                            break
                        if buffer.kind == "tracks" and passes > 0:
                            continue
                    buffer.time += offset
                    if not isinstance(buffer, StreamNote):
                        self._wait_until(started + buffer.time)
                        if self._stop.is_set():
                            return
                    yield buffer
            passes += 1
            if self.passes and passes >= self.passes:
                yield StreamNote("end", end, "container")
                return
            if end <= offset:  # nothing decoded in a pass: looping would spin
                raise InputError(f"no media decoded from {self.path}")
            offset = end
            reader = open_media(self.path, self.options)
            self.video_stream = reader.video_stream

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "LoopReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._first.close()
