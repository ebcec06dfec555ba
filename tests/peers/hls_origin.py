"""A live HLS origin on 127.0.0.1: real segments encoded in real time, faults on demand."""

from __future__ import annotations

import pathlib
import re
import shutil
import tempfile
import threading
import time

from peers.http_origin import HttpOrigin
from peers.packager import LivePackager

_EXTINF = re.compile(r"#EXTINF:([0-9.]+),\s*\n(seg(\d+)\.ts)")


class LiveHlsOrigin:
    """Serves a live media playlist at `url` (http://127.0.0.1:PORT/live/index.m3u8).

    FFmpeg's hls muxer cuts the segments (MPEG-TS, `segment_s` long, 192x108 H.264 +
    AAC); the playlist is composed here, so a test can break it. The default 1.2 s
    segments with EXT-X-TARGETDURATION 1 are legal (EXTINF rounds to 1); a lost segment
    is then a 1.2 s hole, which the reader's clock folds out like any jump over 1 s.

    - `stop_updating()` / `resume_updating()`: the playlist stops listing new segments
      (a stuck packager); on resume it catches up with what was encoded meanwhile
    - `fail_segment()`: the segment being cut now answers 404 forever; returns its index
      (its media sequence number, until a restart)
    - `long_segment(factor)`: the next segment lasts `factor` x segment_s while
      EXT-X-TARGETDURATION stays `target_duration_s`; returns its sequence number
    - `restart_sequence()`: the packager restarts: the playlist starts again at
      EXT-X-MEDIA-SEQUENCE 0 with the segments cut from now on
    - `discontinuity()`: the next segment cut carries EXT-X-DISCONTINUITY; returns its index
    - `end()`: EXT-X-ENDLIST after the last segment
    - `inject(kind, in_s, for_s)`: a freeze, black or silence in the programme, `in_s`
      seconds past what is being encoded now; returns its label (programme seconds)
    A client's media time 0 is the start of the first segment it fetched: `first_fetched(path_prefix)`
    and `segment_start_s(sequence)` map programme time onto it.
    Use as a context manager; `wait_for_sequence(n)` waits until segment n is listed.
    """

    def __init__(self, segment_s: float = 1.2, window: int = 6, preroll_segments: int = 3, seed: int = 1,
                 target_duration_s: int | None = None) -> None:
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="streamqc-hls-"))
        self.segment_s = segment_s
        self.window = window
        self.target_duration_s = target_duration_s or max(1, round(segment_s))
        self.segments: list[tuple[int, float]] = []  # (sequence, EXTINF) cut so far
        self.listed = 0  # segments the served playlist lists
        self.ended = False
        self._updating = True
        self._base = 0  # segments before this index were cut before a restart
        self._discontinuities: set[int] = set()
        self._lock = threading.Lock()
        self.http = HttpOrigin(self.folder)
        self.packager = LivePackager(
            self.folder / "live" / "muxer.m3u8", "hls",
            {"hls_time": f"{segment_s:g}", "hls_list_size": "0", "hls_flags": "temp_file",
             "hls_segment_filename": str(self.folder / "live" / "seg%05d.ts")},
            segment_s=segment_s, seed=seed, preroll_s=preroll_segments * segment_s, on_tick=self._refresh)
        (self.folder / "live").mkdir(exist_ok=True)
        self._preroll = preroll_segments

    @property
    def url(self) -> str:
        return self.http.url("live/index.m3u8")

    def segment_url(self, sequence: int) -> str:
        return self.http.url(f"live/seg{sequence:05d}.ts")

    # -- life ---------------------------------------------------------------
    def start(self) -> "LiveHlsOrigin":
        self._publish()
        self.http.start()
        self.packager.start()
        self.wait_for_sequence(self._preroll - 1)
        return self

    def close(self) -> None:
        self.packager.close()
        self.http.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "LiveHlsOrigin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- faults -------------------------------------------------------------
    def stop_updating(self) -> None:
        with self._lock:
            self._updating = False

    def resume_updating(self) -> None:
        with self._lock:
            self._updating = True
        self._publish()

    def fail_segment(self) -> int:
        sequence = self.packager.current_segment  # encoded now, not yet listed
        self.http.fail(f"live/seg{sequence:05d}.ts")
        return sequence

    def long_segment(self, factor: float = 3.0) -> int:
        return self.packager.long_segment(factor)  # its index, as fail_segment()

    def restart_sequence(self) -> None:
        with self._lock:
            self._base = self.packager.current_segment + 1
        self._publish()

    def discontinuity(self) -> int:
        index = self.packager.current_segment + 1
        with self._lock:
            self._discontinuities.add(index)
        return index

    def inject(self, kind: str, in_s: float, for_s: float) -> dict:
        return self.packager.inject(kind, in_s, for_s)

    def first_fetched(self) -> int | None:
        """The sequence number of the first segment a client fetched, if any yet."""
        for path, status in list(self.http.requests):
            match = re.fullmatch(r"live/seg(\d+)\.ts", path)
            if match and status == 200:
                return int(match.group(1))
        return None

    def segment_start_s(self, sequence: int) -> float:
        """Where segment `sequence` starts in programme time (the EXTINF of those before it)."""
        with self._lock:
            before = [duration for index, duration in self.segments if index < sequence]
        if len(before) < sequence:
            raise KeyError(f"segment {sequence} not cut yet")
        return sum(before)

    def end(self) -> None:
        self.packager.close()
        with self._lock:
            self.ended = True
        self._refresh()

    def wait_for_sequence(self, sequence: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.listed <= sequence:
            if time.monotonic() > deadline:
                raise TimeoutError(f"segment {sequence} not listed after {timeout_s} s (listed {self.listed})")
            time.sleep(0.05)

    # -- the playlist -------------------------------------------------------
    def _refresh(self) -> None:
        muxer = self.folder / "live" / "muxer.m3u8"
        try:
            text = muxer.read_text()
        except OSError:
            return
        cut = [(int(m.group(3)), float(m.group(1))) for m in _EXTINF.finditer(text)]
        with self._lock:
            self.segments = cut
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            if not self._updating:
                return
            shown = [s for s in self.segments if s[0] >= self._base][-self.window:]
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{self.target_duration_s}",
                     f"#EXT-X-MEDIA-SEQUENCE:{shown[0][0] - self._base if shown else 0}"]
            for index, duration in shown:
                if index in self._discontinuities:
                    lines.append("#EXT-X-DISCONTINUITY")
                lines += [f"#EXTINF:{duration:.6f},", f"seg{index:05d}.ts"]
            if self.ended:
                lines.append("#EXT-X-ENDLIST")
            self.listed = len(self.segments)
        self.http.set_text("live/index.m3u8", "\n".join(lines) + "\n")
