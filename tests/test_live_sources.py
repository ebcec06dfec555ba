"""Live sources against real local peers on 127.0.0.1: HLS, DASH, UDP, looped files, RTMP, RTSP.

Every peer really encodes (FFmpeg through PyAV) and really serves or sends; waits are
bounded. Timing assertions leave room for a loaded 2-core machine.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest

from streamqc.check import check_input
from streamqc.errors import InputError
from streamqc.events import Event
from streamqc.media import AudioChunk, StreamNote, VideoFrame
from streamqc.sources import SourceOptions, open_media
from streamqc.sources.live_options import LiveOptions

from media import make_clip
from peers import DashOrigin, HttpOrigin, LiveHlsOrigin, RtmpServer, RtspServer, UdpTsSender, rtmp_server, rtsp_server
from peers.packager import SMALL_VIDEO, LivePackager


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
        run = read(reader, until_media_s=5.0, timeout_s=30)
        assert run.video[0] == pytest.approx(0.0, abs=0.05)
        assert_continuous(run.video)
        assert run.audio and abs(run.audio[0]) < 0.2 and run.audio[-1] > 4.5
        assert not run.events
        # Three segments behind the live edge at start (3.6 s): anything beyond comes in real time.
        assert time.monotonic() - started >= 5.0 - 3 * 1.2 - 0.5
        hls_origin.end()
        tail = read(reader, until_media_s=1e9, timeout_s=20)
    assert tail.ended and tail.video and tail.video[0] > run.video[-1]
    assert_continuous(run.video[-1:] + tail.video)


def test_hls_stale_playlist_is_announced_after_three_target_durations_and_closed_on_resume():
    stopped = {}
    origin = LiveHlsOrigin(window=2).start()  # a short window: the stall outlasts it

    def stall(media_s: float) -> None:
        if media_s >= 1.0 and not stopped:
            origin.stop_updating()
            stopped["at"] = time.monotonic()

    try:
        with open_media(origin.url) as reader:
            run = read(reader, until_media_s=1.5, timeout_s=30, on_video=stall)
            # Wait out the stall inside the reader: events arrive while no media does.
            deadline = time.monotonic() + 15
            for buffer in reader:
                if (event := _events(buffer)) is not None:
                    run.events.append((time.monotonic(), event))
                    if event.ongoing:
                        time.sleep(1.5)
                        origin.resume_updating()
                    elif event.kind == "hls.stale_playlist":
                        break
                elif isinstance(buffer, VideoFrame):
                    run.video.append(buffer.time)
                assert time.monotonic() < deadline
    finally:
        origin.close()
    assert run.kinds() == ["hls.stale_playlist", "hls.segments_skipped", "hls.stale_playlist"]
    (announced_at, ongoing), (_, skipped), (closed_at, closed) = run.events
    assert ongoing.ongoing and not closed.ongoing and closed.start == ongoing.start
    # The last new segment came at most one segment before the stop; stale = 3 x 1 s.
    assert 3.0 - 1.3 <= announced_at - stopped["at"] <= 3.0 + 2.0
    assert closed.details["stalled_s"] >= 3.0 + 1.5 - 0.2
    assert closed.duration == pytest.approx(closed.details["stalled_s"], abs=0.01)
    # It starts where the media stopped coming.
    assert ongoing.start == pytest.approx(max(run.video) + 0.04, abs=0.3)
    # ~4.5 s frozen = ~3.7 segments cut, of which the 2-segment window shows the last 2.
    assert skipped.details["segments"] >= 1 and skipped.start == pytest.approx(ongoing.start, abs=0.01)


def test_hls_reader_gives_up_on_a_dead_playlist_and_closes_from_another_thread(hls_origin):
    hls_origin.stop_updating()
    impatient = SourceOptions(live=LiveOptions(stale_target_durations=1.0, give_up_after_stale_s=1.0))
    with open_media(hls_origin.url, impatient) as reader:
        run = read(reader, until_media_s=1e9, timeout_s=15)  # the listed segments, then nothing
    assert run.ended and run.video[-1] > 3.0
    assert [n.kind for n in run.notes][-2:] == ["read_error", "end"]
    assert "no new segment in" in run.notes[-2].details["reason"]
    assert [(e.kind, e.ongoing) for _, e in run.events] == [("hls.stale_playlist", True), ("hls.stale_playlist", False)]
    assert run.closed("hls.stale_playlist")[0].details["stalled_s"] >= 2.0

    # A monitor's watchdog closes a reader that waits for media on its own thread.
    with open_media(hls_origin.url) as reader:
        read(reader, until_media_s=1.0, timeout_s=15)
        closer = threading.Timer(0.5, reader.close)
        closer.start()
        started = time.monotonic()
        rest = read(reader, until_media_s=1e9, timeout_s=10)
    assert rest.ended and time.monotonic() - started < 0.5 + 3.0


def test_hls_sequence_reset_and_discontinuity_are_reported(hls_origin):
    marks = {}

    def inject(media_s: float) -> None:
        if media_s >= 1.0 and not marks:  # a packager restart, announced by a discontinuity tag
            marks["discontinuity"] = hls_origin.discontinuity()
            hls_origin.restart_sequence()

    with open_media(hls_origin.url) as reader:
        run = Run()
        deadline = time.monotonic() + 25
        for buffer in reader:
            if isinstance(buffer, VideoFrame):
                run.video.append(buffer.time)
                inject(buffer.time)
            elif (event := _events(buffer)) is not None:
                run.events.append((time.monotonic(), event))
                if event.kind == "hls.discontinuity":
                    break
            assert time.monotonic() < deadline
    # The restarted playlist starts at sequence 0 with the tagged segment: both are reported, there.
    [reset] = run.closed("hls.sequence_reset")
    [note] = run.closed("hls.discontinuity")
    assert reset.details["now"] < reset.details["previous"]
    assert note.severity.value == "info" and note.details["sequence"] == 0
    assert note.start == reset.start


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
    result = check_input(hls_origin.url, duration=5.0)
    kinds = [e.kind for e in result.events]
    assert "hls.segment_error" in kinds
    assert all(not e.ongoing for e in result.events)
    assert result.to_dict()["events"]  # JSON-ready


def test_hls_master_playlist_with_fmp4_segments_reads_to_endlist(tmp_path):
    packager = LivePackager(tmp_path / "hi" / "index.m3u8", "hls", {
        "hls_time": "1", "hls_list_size": "0", "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4", "hls_segment_filename": str(tmp_path / "hi" / "seg%d.m4s")},
        preroll_s=3600.0)
    (tmp_path / "hi").mkdir()
    packager.scenario.duration_s = 3.0
    packager.start()
    packager._thread.join(timeout=60)
    assert "#EXT-X-MAP" in (tmp_path / "hi" / "index.m3u8").read_text()
    (tmp_path / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=150000,RESOLUTION=96x54\nlo/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=192x108\nhi/index.m3u8\n")
    origin = HttpOrigin(tmp_path).start()
    try:
        with open_media(origin.url("master.m3u8")) as reader:  # lo/ does not exist: the highest is read
            assert reader.info.format == "hls (mp4)" and reader.info.duration == pytest.approx(3.0, abs=0.05)
            run = read(reader, until_media_s=1e9, timeout_s=30)
    finally:
        origin.close()
    assert run.ended and not run.events and len(run.video) == 75
    assert_continuous(run.video)
    assert run.audio[-1] == pytest.approx(3.0, abs=0.15)
    assert not any(path.startswith("lo/") for path, _ in origin.requests)


def test_dead_and_wrong_hls_urls_give_clear_errors(tmp_path):
    port = _closed_port()
    with pytest.raises(InputError, match="connection refused"):
        open_media(f"http://127.0.0.1:{port}/live/index.m3u8")
    (tmp_path / "bad.m3u8").write_text("<html>not a playlist</html>")
    (tmp_path / "dead.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nmissing.ts\n")
    origin = HttpOrigin(tmp_path).start()
    try:
        with pytest.raises(InputError, match="HTTP error.*404"):
            open_media(origin.url("nothing.m3u8"))
        with pytest.raises(InputError, match="not an HLS playlist"):
            open_media(origin.url("bad.m3u8"))
        options = SourceOptions(open_timeout_s=1.0, live=LiveOptions(retry_wait_s=0.05))
        with pytest.raises(InputError, match="no segment .* could be fetched in 1 s: segment 0: HTTP 404"):
            open_media(origin.url("dead.m3u8"), options)
    finally:
        origin.close()


# -- DASH -----------------------------------------------------------------------

@pytest.fixture
def dash_origin():
    with DashOrigin() as origin:
        yield origin


def test_dash_live_video_and_audio_stay_on_one_clock_across_a_missing_segment(dash_origin):
    faults = {}

    def inject(media_s: float) -> None:
        if media_s >= 1.0 and not faults:
            faults["missing"] = dash_origin.fail_segment()

    with open_media(dash_origin.url) as reader:
        assert reader.info.format == "dash (mp4)" and reader.info.duration is None
        assert reader.info.video.codec == "h264" and reader.info.audio.codec == "aac"
        run = read(reader, until_media_s=7.0, timeout_s=40, on_video=inject)
    [missing] = run.closed("dash.segment_error")
    assert missing.details["number"] == faults["missing"] and missing.details["reason"] == "HTTP 404"
    assert missing.details["media"] == "video" and missing.duration == pytest.approx(1.2, abs=0.05)
    # Only video lost the segment: it has a hole where the event says, audio has none,
    # and both tracks keep the packager's sync.
    holes = [(a, b) for a, b in zip(run.video, run.video[1:]) if b - a > 0.1]
    assert len(holes) == 1 and holes[0][0] == pytest.approx(missing.start - 0.04, abs=0.05)
    assert holes[0][1] == pytest.approx(missing.end, abs=0.05)
    assert_continuous(run.audio, max_gap_s=0.15)
    assert abs(run.audio[0]) < 0.15
    # At the live edge the audio segment of the newest 1.2 s may not be listed yet.
    assert run.video[-1] - 1.2 - 0.3 < run.audio[-1] < run.video[-1] + 0.3


def test_dash_stale_manifest_is_announced_and_closed(dash_origin):
    with open_media(dash_origin.url) as reader:
        run = read(reader, until_media_s=0.5, timeout_s=30)
        dash_origin.stop_updating()
        stopped = time.monotonic()
        deadline = stopped + 20
        for buffer in reader:
            if (event := _events(buffer)) is not None:
                run.events.append((time.monotonic(), event))
                if event.ongoing:
                    dash_origin.resume_updating()
                else:
                    break
            assert time.monotonic() < deadline
    (announced_at, ongoing), (_, closed) = run.events
    assert ongoing.kind == closed.kind == "dash.stale_manifest" and ongoing.ongoing and not closed.ongoing
    # stale after 3 x 1.2 s with no new segment; the last one came at most one segment before the stop
    assert 3.6 - 1.3 <= announced_at - stopped <= 3.6 + 2.0
    assert closed.start == ongoing.start and closed.details["stalled_s"] >= 3.6


def _static_dash(folder, seconds: float, options: dict[str, str]):
    """A finished DASH presentation written by FFmpeg's dash muxer (type=static)."""
    packager = LivePackager(folder / "manifest.mpd", "dash", options, preroll_s=3600.0)
    packager.scenario.duration_s = seconds
    packager.start()
    packager._thread.join(timeout=60)
    return folder / "manifest.mpd"


def test_dash_static_manifest_with_time_template_reads_to_its_end(tmp_path):
    _static_dash(tmp_path, 3.0, {"seg_duration": "1", "use_template": "1", "use_timeline": "1",
                                 "media_seg_name": "chunk-$RepresentationID$-$Time$.m4s",
                                 "adaptation_sets": "id=0,streams=v id=1,streams=a"})
    assert "$Time$" in (tmp_path / "manifest.mpd").read_text()
    # FFmpeg's dash muxer names the first audio segment by its AAC priming time (-1024)
    # while its timeline says t="0"; a real origin would answer 404 there.
    for primed in tmp_path.glob("chunk-1--*.m4s"):
        primed.rename(tmp_path / "chunk-1-0.m4s")
    origin = HttpOrigin(tmp_path).start()
    try:
        with open_media(origin.url("manifest.mpd")) as reader:
            assert reader.info.duration == pytest.approx(3.0, abs=0.1)
            run = read(reader, until_media_s=1e9, timeout_s=30)
    finally:
        origin.close()
    assert run.ended and not run.events
    assert len(run.video) == 75
    assert_continuous(run.video)
    assert run.audio[-1] == pytest.approx(3.0, abs=0.15)


def test_dash_single_file_representations(tmp_path):
    sink = LivePackager(tmp_path / "movie.mp4", "mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"},
                        preroll_s=3600.0)
    sink.scenario.duration_s = 2.0
    sink.start()
    sink._thread.join(timeout=60)
    (tmp_path / "single.mpd").write_text(
        '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S">'
        '<Period><AdaptationSet contentType="video" mimeType="video/mp4"><Representation id="v" bandwidth="300000">'
        '<BaseURL>movie.mp4</BaseURL><SegmentBase/></Representation></AdaptationSet>'
        '<AdaptationSet contentType="audio" mimeType="audio/mp4"><Representation id="a" bandwidth="64000">'
        '<BaseURL>movie.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>')
    origin = HttpOrigin(tmp_path).start()
    try:
        with open_media(origin.url("single.mpd")) as reader:
            run = read(reader, until_media_s=1e9, timeout_s=30)
    finally:
        origin.close()
    assert run.ended and len(run.video) == 50
    assert_continuous(run.video)
    assert run.audio[0] == pytest.approx(0.0, abs=0.1) and run.audio[-1] == pytest.approx(2.0, abs=0.15)


def test_dead_and_wrong_dash_urls_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="connection refused"):
        open_media(f"http://127.0.0.1:{_closed_port()}/live/manifest.mpd")
    (tmp_path / "bad.mpd").write_text("<html/>")
    (tmp_path / "empty.mpd").write_text('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period/></MPD>')
    origin = HttpOrigin(tmp_path).start()
    try:
        with pytest.raises(InputError, match="HTTP error.*404"):
            open_media(origin.url("none.mpd"))
        with pytest.raises(InputError, match=r"not a DASH manifest .*not <MPD>"):
            open_media(origin.url("bad.mpd"))
        with pytest.raises(InputError, match="no video or audio representation"):
            open_media(origin.url("empty.mpd"))
    finally:
        origin.close()


# -- UDP and looped files -------------------------------------------------------

@pytest.fixture(scope="module")
def small_ts(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("udp") / "clip.ts", seconds=6.0, spec=SMALL_VIDEO)


@pytest.fixture(scope="module")
def udp_ts(tmp_path_factory):
    # Longer than the 4.5 s the test reads: joining a UDP stream (probing) can take 2 s,
    # and what was sent before the reader joined is gone.
    return make_clip(tmp_path_factory.mktemp("udp") / "clip9.ts", seconds=9.0, spec=SMALL_VIDEO)


def test_udp_ts_is_received_at_media_pace_a_stall_is_a_discontinuity_and_silence_a_read_timeout(udp_ts):
    port = _closed_port()
    with UdpTsSender(udp_ts, port) as sender:
        started = time.monotonic()
        with open_media(sender.url, SourceOptions(open_timeout_s=5, read_timeout_s=2)) as reader:
            stalled = {}

            def stall(media_s: float) -> None:
                if media_s >= 1.5 and not stalled:
                    stalled["media"] = media_s
                    sender.stall(1.5)  # 1.5 s of packets lost
                if media_s >= 3.0 and "dead" not in stalled:
                    stalled["dead"] = time.monotonic()
                    sender.stall(100)  # the sender goes silent

            run = read(reader, until_media_s=1e9, timeout_s=20, on_video=stall)
    # Paced: 3 s of media plus the 1.5 s lost cannot come faster than they play.
    assert stalled["dead"] - started >= 3.0 + 1.5 - 0.6
    [jump] = [n for n in run.notes if n.kind == "discontinuity"]
    assert jump.details["jump_s"] == pytest.approx(1.5, abs=0.3)
    assert jump.time == pytest.approx(stalled["media"], abs=0.6)
    assert_continuous(run.video)
    # Silence ends the stream after the read timeout, with the reason; the frames
    # drained after it still have their times.
    assert run.notes[-1].kind == "end"
    [timeout] = [n for n in run.notes if n.kind == "read_error"]
    assert timeout.details["reason"] == "no data for 2 s (read timeout)"
    assert time.monotonic() - stalled["dead"] == pytest.approx(2.0, abs=1.0)


def test_looped_file_plays_on_with_one_continuous_clock(small_ts):
    started = time.monotonic()
    with open_media(f"loop:{small_ts}?speed=4") as reader:
        assert reader.info.duration is None and reader.info.format.startswith("loop")
        run = read(reader, until_media_s=14.0, timeout_s=30)
    assert time.monotonic() - started >= 14.0 / 4 - 0.3  # paced at 4x
    assert_continuous(run.video)
    assert not [n for n in run.notes if n.kind == "discontinuity"]
    seam = run.video.index(min(t for t in run.video if t >= 5.9))
    assert run.video[seam] < 6.1  # the second pass follows the first without a gap

    with open_media(f"loop://{small_ts}?speed=0&passes=2") as reader:
        run = read(reader, until_media_s=1e9, timeout_s=30)
    assert run.ended and run.notes[-1].time == pytest.approx(12.0, abs=0.1)
    assert len(run.video) == 2 * 150


def test_looped_file_at_real_time_and_bad_loop_urls(small_ts):
    started = time.monotonic()
    with open_media(f"loop://{small_ts}") as reader:
        read(reader, until_media_s=1.5, timeout_s=10)
    assert time.monotonic() - started >= 1.3
    # A monitor's watchdog closes the reader from its own thread, in the middle of a pacing wait.
    with open_media(f"loop://{small_ts}") as reader:
        threading.Timer(0.3, reader.close).start()
        started = time.monotonic()
        run = read(reader, until_media_s=1e9, timeout_s=5)
    assert run.ended and time.monotonic() - started < 1.5 and run.video[-1] < 1.0
    with pytest.raises(InputError, match="no such file"):
        open_media("loop:/nonexistent/clip.ts")
    with pytest.raises(InputError, match="bad loop URL"):
        open_media(f"loop:{small_ts}?speed=fast")


# -- RTMP and RTSP servers from the machine's packages --------------------------

@pytest.mark.skipif(rtmp_server.missing() is not None, reason=str(rtmp_server.missing()))
def test_rtmp_stream_published_to_nginx_is_read_live():
    with RtmpServer() as server:
        publisher = LivePackager(server.url("channel"), "flv", {}, preroll_s=0.0)  # PyAV's rtmp output
        publisher.start()
        try:
            started = time.monotonic()
            with open_media(server.url("channel"), SourceOptions(open_timeout_s=10, read_timeout_s=5)) as reader:
                assert reader.info.video.codec == "h264" and reader.info.audio.codec == "aac"
                run = read(reader, until_media_s=2.5, timeout_s=20)
            assert time.monotonic() - started >= 2.5 - 0.5  # live: no faster than it is published
        finally:
            publisher.close()
    assert run.video[0] == 0.0 and len(run.video) >= 60
    assert_continuous(run.video)
    assert run.audio and run.audio[-1] > 2.0


@pytest.mark.skipif(rtsp_server.missing() is not None, reason=str(rtsp_server.missing()))
def test_rtsp_stream_served_by_gst_rtsp_server_is_read_live(small_ts):
    with RtspServer(small_ts) as server:
        started = time.monotonic()
        with open_media(server.url, SourceOptions(open_timeout_s=10, read_timeout_s=5)) as reader:
            assert reader.info.format == "rtsp"
            assert reader.info.video.codec == "h264" and reader.info.audio.codec == "aac"
            run = read(reader, until_media_s=2.5, timeout_s=20)
        assert time.monotonic() - started >= 2.5 - 0.5
    assert run.video[0] == 0.0 and len(run.video) >= 60
    assert_continuous(run.video)
    assert run.audio and run.audio[-1] > 2.0


def test_dead_rtmp_rtsp_and_udp_urls_give_clear_errors():
    port = _closed_port()
    options = SourceOptions(open_timeout_s=1, read_timeout_s=1)
    for url in (f"rtmp://127.0.0.1:{port}/live/none", f"rtsp://127.0.0.1:{port}/none"):
        with pytest.raises(InputError, match=f"connection refused: {url}"):
            open_media(url, options)
    with pytest.raises(InputError, match=f"timed out opening udp://127.0.0.1:{port} after 1 s"):
        open_media(f"udp://127.0.0.1:{port}", options)  # nothing sends there
