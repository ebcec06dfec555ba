"""A live DASH origin on 127.0.0.1: FFmpeg's dash packager in real time, faults on demand."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import time

from peers.http_origin import HttpOrigin
from peers.packager import LivePackager


class DashOrigin:
    """Serves a dynamic MPD at `url` (http://127.0.0.1:PORT/live/manifest.mpd).

    FFmpeg's dash muxer writes it: SegmentTemplate with $Number$ and a SegmentTimeline,
    video (192x108 H.264) and audio (AAC) in separate adaptation sets, fragmented MP4
    segments of `segment_s`. Faults:

    - `stop_updating()` / `resume_updating()`: the MPD is served frozen (a stuck packager)
    - `fail_segment()`: the video segment being encoded now answers 404; returns its $Number$
    - `wait_for_number(n)`: wait until video segment n is in the manifest
    """

    def __init__(self, segment_s: float = 1.2, preroll_segments: int = 3, seed: int = 2) -> None:
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="streamqc-dash-"))
        (self.folder / "live").mkdir()
        self.segment_s = segment_s
        self.http = HttpOrigin(self.folder)
        self.packager = LivePackager(
            self.folder / "live" / "manifest.mpd", "dash",
            {"seg_duration": f"{segment_s:g}", "window_size": "6", "extra_window_size": "6", "use_template": "1",
             "use_timeline": "1", "remove_at_exit": "0", "adaptation_sets": "id=0,streams=v id=1,streams=a"},
            segment_s=segment_s, seed=seed, preroll_s=preroll_segments * segment_s)
        self._preroll = preroll_segments

    @property
    def url(self) -> str:
        return self.http.url("live/manifest.mpd")

    def start(self) -> "DashOrigin":
        self.http.start()
        self.packager.start()
        self.wait_for_number(self._preroll)
        return self

    def close(self) -> None:
        self.packager.close()
        self.http.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "DashOrigin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def stop_updating(self) -> None:
        self.http.set_text("live/manifest.mpd", (self.folder / "live" / "manifest.mpd").read_bytes())

    def resume_updating(self) -> None:
        with self.http._lock:
            self.http.texts.pop("live/manifest.mpd", None)

    def fail_segment(self) -> int:
        number = self.packager.current_segment + 1  # the muxer numbers from 1
        self.http.fail(f"live/chunk-stream0-{number:05d}.m4s")
        return number

    def wait_for_number(self, number: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.folder / "live" / f"chunk-stream0-{number + 1:05d}.m4s").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"DASH segment {number} not written after {timeout_s} s")
            time.sleep(0.05)
