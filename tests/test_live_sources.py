"""Live sources against real local peers on 127.0.0.1: HLS, DASH, UDP, looped files, RTMP, RTSP.

Every peer really encodes (FFmpeg through PyAV) and really serves or sends; waits are
bounded. Timing assertions leave room for a loaded 2-core machine.
"""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from streamqc.check import check_input
from streamqc.errors import InputError
from streamqc.events import Event
from streamqc.media import AudioChunk, StreamNote, VideoFrame
from streamqc.sources import SourceOptions, open_media
from streamqc.sources.live_options import LiveOptions

from peers import LiveHlsOrigin


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(note) -> Event | None:
    if isinstance(note, StreamNote) and note.kind == "event":
        return note.details["event"]
    return None


@dataclasses.dataclass
class Run:
    """What a test saw while reading, with the wall clock of each event's arrival."""

    video: list[float] = dataclasses.field(default_factory=list)
    audio: list[float] = dataclasses.field(default_factory=list)
    events: list[tuple[float, Event]] = dataclasses.field(default_factory=list)
    notes: list[StreamNote] = dataclasses.field(default_factory=list)
    ended: bool = False

    def kinds(self) -> list[str]:
        return [e.kind for _, e in self.events]

    def closed(self, kind: str) -> list[Event]:
        return [e for _, e in self.events if e.kind == kind and not e.ongoing]


def read(reader, until_media_s: float, timeout_s: float, on_video=None) -> Run:
    """Iterate `reader` until `until_media_s` of video, its end, or `timeout_s` of wall clock."""
    run = Run()
    deadline = time.monotonic() + timeout_s
    for buffer in reader:
        if isinstance(buffer, VideoFrame):
            run.video.append(buffer.time)
            if on_video is not None:
                on_video(buffer.time)
            if buffer.time >= until_media_s:
                break
        elif isinstance(buffer, AudioChunk):
            run.audio.append(buffer.time)
        elif (event := _events(buffer)) is not None:
            run.events.append((time.monotonic(), event))
        else:
            run.notes.append(buffer)
            run.ended = buffer.kind == "end"
        assert time.monotonic() < deadline, f"reading did not reach {until_media_s} s of media in {timeout_s} s"
    return run


def assert_continuous(times: list[float], max_gap_s: float = 0.1) -> None:
    gaps = [(a, b) for a, b in zip(times, times[1:]) if not 0 < b - a <= max_gap_s]
    assert not gaps, f"clock not continuous: {gaps[:3]}"


# -- HLS ------------------------------------------------------------------------

@pytest.fixture
def hls_origin():
    with LiveHlsOrigin() as origin:
        yield origin


def test_hls_live_stream_decodes_continuously_at_live_pace_until_endlist(hls_origin):
    started = time.monotonic()
    with open_media(hls_origin.url) as reader:
        assert reader.info.format == "hls (mpegts)"
        assert reader.info.duration is None
        assert reader.info.video.details["width"] == 192 and reader.info.audio.codec == "aac"
        run = read(reader, until_media_s=6.0, timeout_s=30)
        assert run.video[0] == pytest.approx(0.0, abs=0.05)
        assert_continuous(run.video)
        assert run.audio and abs(run.audio[0]) < 0.2 and run.audio[-1] > 5.5
        assert not run.events
        # Three segments behind the live edge at start (3.6 s): anything beyond comes in real time.
        assert time.monotonic() - started >= 6.0 - 3 * 1.2 - 0.5
        hls_origin.end()
        tail = read(reader, until_media_s=1e9, timeout_s=20)
    assert tail.ended and tail.video and tail.video[0] > run.video[-1]
    assert_continuous(run.video[-1:] + tail.video)


def test_hls_stale_playlist_is_announced_after_three_target_durations_and_closed_on_resume(hls_origin):
    stopped = {}

    def stall(media_s: float) -> None:
        if media_s >= 1.0 and not stopped:
            hls_origin.stop_updating()
            stopped["at"] = time.monotonic()

    with open_media(hls_origin.url) as reader:
        run = read(reader, until_media_s=1.5, timeout_s=30, on_video=stall)
        # Wait out the stall inside the reader: events arrive while no media does.
        deadline = time.monotonic() + 15
        for buffer in reader:
            if (event := _events(buffer)) is not None:
                run.events.append((time.monotonic(), event))
                if event.ongoing:
                    time.sleep(1.5)
                    hls_origin.resume_updating()
                else:
                    break
            elif isinstance(buffer, VideoFrame):
                run.video.append(buffer.time)
            assert time.monotonic() < deadline
    (announced_at, ongoing), (closed_at, closed) = run.events
    assert ongoing.kind == closed.kind == "hls.stale_playlist"
    assert ongoing.ongoing and not closed.ongoing and closed.start == ongoing.start
    # The last new segment came at most one segment before the stop; stale = 3 x 1 s.
    assert 3.0 - 1.3 <= announced_at - stopped["at"] <= 3.0 + 2.0
    assert closed.details["stalled_s"] >= 3.0 + 1.5 - 0.2
    assert closed.duration == pytest.approx(closed.details["stalled_s"], abs=0.01)
    # It starts where the media stopped coming.
    assert ongoing.start == pytest.approx(max(run.video) + 0.04, abs=0.3)


def test_hls_missing_segment_and_long_segment_are_reported_where_they_are(hls_origin):
    faults = {}

    def inject(media_s: float) -> None:
        if media_s >= 1.0 and not faults:
            faults["missing"] = hls_origin.fail_segment()
            faults["long"] = hls_origin.long_segment(3.0)

    with open_media(hls_origin.url) as reader:
        run = read(reader, until_media_s=9.0, timeout_s=40, on_video=inject)
    [missing] = run.closed("hls.segment_error")
    [long] = run.closed("hls.target_duration")
    assert missing.details["sequence"] == faults["missing"] and missing.details["reason"] == "HTTP 404"
    assert missing.duration == pytest.approx(1.2, abs=0.05)
    assert long.details["sequence"] == faults["long"] == faults["missing"] + 1
    assert long.details["duration_s"] == pytest.approx(3.6, abs=0.05) and long.details["target_duration_s"] == 1
    assert long.duration == pytest.approx(3.6, abs=0.05)
    # The 1.2 s hole is folded out of the clock: the picture after it is at the missing
    # segment's start, and the long segment starts there too.
    assert long.start == pytest.approx(missing.start, abs=0.01)
    after = min(t for t in run.video if t >= missing.start - 0.02)
    assert after == pytest.approx(missing.start, abs=0.1)
    assert [n.kind for n in run.notes].count("discontinuity") >= 1
    assert_continuous(run.video)


def test_check_reports_hls_delivery_events(hls_origin):
    hls_origin.fail_segment()
    result = check_input(hls_origin.url, duration=6.0)
    kinds = [e.kind for e in result.events]
    assert "hls.segment_error" in kinds
    assert all(not e.ongoing for e in result.events)
    assert result.to_dict()["events"]  # JSON-ready


def test_dead_and_wrong_hls_urls_give_clear_errors(hls_origin, tmp_path):
    port = _closed_port()
    with pytest.raises(InputError, match="connection refused"):
        open_media(f"http://127.0.0.1:{port}/live/index.m3u8")
    with pytest.raises(InputError, match="HTTP error.*404"):
        open_media(hls_origin.http.url("live/nothing.m3u8"))
    hls_origin.http.set_text("live/bad.m3u8", "<html>not a playlist</html>")
    with pytest.raises(InputError, match="not an HLS playlist"):
        open_media(hls_origin.http.url("live/bad.m3u8"))
    hls_origin.http.set_text("live/dead.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nmissing.ts\n")
    options = SourceOptions(open_timeout_s=2.0, live=LiveOptions(retry_wait_s=0.05))
    with pytest.raises(InputError, match="no segment .* could be fetched"):
        open_media(hls_origin.http.url("live/dead.m3u8"), options)
