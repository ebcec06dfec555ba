"""Inputs as users hand them to `check`: broken files, missing tracks, URLs over loopback."""

import functools
import http.server
import json
import socket
import threading
import time

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from streamqc.check import check_input
from streamqc.sources.reader import SourceOptions
from streamqc.cli import app
from streamqc.synth.defects import Black, Freeze

from media import frame, garbled, make_clip


def run_check(*args):
    result = CliRunner().invoke(app, ["check", *map(str, args), "--no-progress"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def assert_unreadable(result, reason):
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamqc: ") and reason in lines[0], result.stderr


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "clip.ts"
    return make_clip(path, seconds=8.0, defects=[Black(frame(3.0), frame(5.5))])


def test_empty_file(tmp_path):
    (tmp_path / "empty.ts").write_bytes(b"")
    assert_unreadable(run_check(tmp_path / "empty.ts"), "empty file")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(range(256)) * 4000)
    assert_unreadable(run_check(path), "not a media stream FFmpeg can read")


def test_missing_path(tmp_path):
    assert_unreadable(run_check(tmp_path / "nowhere.ts"), "no such file")


def test_directory_instead_of_file(tmp_path):
    assert_unreadable(run_check(tmp_path), "is a directory")


def test_truncated_ts_is_checked_up_to_the_cut(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) * 6 // 10 + 77])  # mid-packet, as a dropped download leaves it
    result = run_check(cut, "--json")
    assert result.exit_code in (0, 1)
    report = json.loads(result.stdout)
    assert 3.0 < report["duration"] < 6.5


def test_truncated_mp4_without_index_is_unreadable(tmp_path):
    mp4 = make_clip(tmp_path / "clip.mp4", seconds=3.0, container="mp4")
    data = mp4.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    result = run_check(tmp_path / "cut.mp4")
    # The index (moov) is written last: half a file cannot be demuxed.
    assert_unreadable(result, "cut.mp4")


def test_unsupported_codec_is_named(tmp_path):
    mkv = make_clip(tmp_path / "clip.mkv", seconds=2.0, container="mkv", audio=None)
    data = mkv.read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    (tmp_path / "odd.mkv").write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_STREAMQC/XYZ1"))
    assert_unreadable(run_check(tmp_path / "odd.mkv"), "no decodable audio or video track")


def test_unsupported_video_beside_good_audio_is_a_missing_track(tmp_path):
    mkv = make_clip(tmp_path / "clip.mkv", seconds=3.0, container="mkv")
    (tmp_path / "odd.mkv").write_bytes(mkv.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_STREAMQC/XYZ1"))
    result = run_check(tmp_path / "odd.mkv", "--json", "--set", "missing_track.expect=video,audio")
    assert result.exit_code == 1
    events = json.loads(result.stdout)["events"]
    assert [(e["kind"], e["details"]["track"]) for e in events] == [("stream.missing_track", "video")]


def test_audio_only_input(tmp_path):
    path = make_clip(tmp_path / "audio.ts", seconds=4.0, video=None)
    result = run_check(path, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert "video" not in report["media"] and report["media"]["audio"]["codec"] == "aac"
    assert report["duration"] == pytest.approx(4.0, abs=0.1)
    strict = run_check(path, "--json", "--set", "missing_track.expect=video,audio")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["events"][0]["details"] == {"track": "video", "reason": "absent"}


def sound_first_with_a_garbled_packet(clip, out_path, garbled_packet: int):
    """`clip` remuxed with its pictures 1 s later than its sound (a capture whose audio
    starts first) and its audio packet number `garbled_packet` (0-based) replaced by random bytes."""
    rng = np.random.default_rng(3)
    with av.open(str(clip)) as source, av.open(str(out_path), "w") as out:
        video, audio = source.streams.video[0], source.streams.audio[0]
        copies = {video: out.add_stream_from_template(video), audio: out.add_stream_from_template(audio)}
        delay = int(1 / video.time_base)
        audio_packets = 0
        for packet in source.demux():
            if not packet.size:
                continue
            copy = copies[packet.stream]
            if packet.stream is video:
                packet.pts, packet.dts = packet.pts + delay, packet.dts + delay
            else:
                if audio_packets == garbled_packet:
                    packet = garbled(packet, rng)
                audio_packets += 1
            packet.stream = copy
            out.mux(packet)
    return out_path


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("garbled_packet", [0, 20])  # the first packet; one at 0.48 s
def test_audio_damage_before_the_first_picture(tmp_path, garbled_packet, threads):
    """Sound before the first picture is analysed, so a packet the decoder rejects there is
    damage, whatever the video decoder's thread count (which delays the first picture by a
    packet per thread); a rejected first packet is a cut frame of joining mid-stream."""
    clip = make_clip(tmp_path / "clip.mkv", seconds=4.0, container="mkv", audio="mp2")
    late = sound_first_with_a_garbled_packet(clip, tmp_path / "late.mkv", garbled_packet)
    result = check_input(str(late), source=SourceOptions(threads=threads))
    errors = [e for e in result.events if e.kind == "audio.decode_error"]
    if garbled_packet == 0:
        assert errors == []
    else:
        (error,) = errors
        assert error.start == 0.0 and error.details["count"] == 1
    assert [e.kind for e in result.events if e.kind != "audio.decode_error"] == []


def test_video_only_input(tmp_path):
    path = make_clip(tmp_path / "video.mp4", seconds=5.0, container="mp4", audio=None, defects=[Freeze(frame(1.0), frame(4.0))])
    result = run_check(path, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and "audio" not in report["media"]
    assert [e["kind"] for e in report["events"]] == ["video.freeze"]


def test_dash_manifest_is_refused_with_the_reason(tmp_path):
    """PyAV's FFmpeg has no DASH demuxer (it needs libxml2): say so instead of "invalid data"."""
    source = make_clip(tmp_path / "clip.mp4", seconds=4.0, container="mp4")
    with av.open(str(source)) as src, av.open(str(tmp_path / "manifest.mpd"), "w", format="dash", options={"seg_duration": "2"}) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        for packet in src.demux(*[src.streams[i] for i in mapping]):
            if packet.dts is not None:
                packet.stream = mapping[packet.stream_index]
                out.mux(packet)
    assert_unreadable(run_check(tmp_path / "manifest.mpd"), "no DASH demuxer")


def test_connection_refused_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert_unreadable(run_check(f"http://127.0.0.1:{port}/live.m3u8", "--timeout", "3"), "connection refused")


def test_http_404(http_server):
    assert_unreadable(run_check(f"{http_server}/missing.ts", "--timeout", "3"), "missing.ts")


def test_silent_udp_port_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = run_check(f"udp://127.0.0.1:{port}", "--timeout", "2")
    assert result.exit_code == 2 and result.stderr.startswith("streamqc: ")
    assert time.monotonic() - started < 30


@pytest.fixture(scope="module")
def http_server(clip):
    """A static HTTP server on loopback serving the clip and an HLS rendition of it."""
    folder = clip.parent
    _write_hls(clip, folder / "hls")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _write_hls(source, folder):
    """Remux the clip into 2-second HLS segments with FFmpeg's own HLS muxer."""
    folder.mkdir(exist_ok=True)
    with av.open(str(source)) as src, av.open(
        str(folder / "index.m3u8"), "w", format="hls", options={"hls_time": "2", "hls_list_size": "0", "hls_playlist_type": "vod"}
    ) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        for packet in src.demux(*[src.streams[i] for i in mapping]):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream_index]
            out.mux(packet)


def _black_events(report):
    """The defects of a JSON report (info notes, such as the loudness figures, left out)."""
    return [(e["kind"], round(e["start"], 1), round(e["end"], 1)) for e in report["events"] if e["severity"] != "info"]


def test_http_file_reads_like_the_local_file(http_server, clip):
    local = check_input(str(clip))
    result = run_check(f"{http_server}/clip.ts", "--json")
    assert result.exit_code == 1
    remote = json.loads(result.stdout)
    assert _black_events(remote) == [(e.kind, round(e.start, 1), round(e.end, 1)) for e in local.defects]


def test_hls_playlist_over_http(http_server):
    result = run_check(f"{http_server}/hls/index.m3u8", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["duration"] == pytest.approx(8.0, abs=0.2)
    assert _black_events(report) == [("video.black", 3.0, 5.5)]


def test_udp_mpegts_live_with_duration(clip):
    """A sender paces the TS in real time to a UDP port on loopback; check stops after --duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()
    sender = threading.Thread(target=_send_udp, args=(clip.read_bytes(), port, 8.0, stop), daemon=True)
    sender.start()
    try:
        result = run_check(f"udp://127.0.0.1:{port}?fifo_size=100000&overrun_nonfatal=1", "--json", "--duration", "6", "--timeout", "5")
    finally:
        stop.set()
        sender.join(timeout=5)
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["duration"] == pytest.approx(6.0, abs=0.3)
    (black,) = [e for e in report["events"] if e["kind"] == "video.black"]
    # A receiver that joins late starts at the next keyframe (every 2 s here), and media
    # time counts from its first picture.
    assert any(abs(black["start"] - (3.0 - joined)) < 0.15 for joined in (0.0, 2.0, 4.0)), black
    assert black["end"] - black["start"] == pytest.approx(2.5, abs=0.2)


def _send_udp(data: bytes, port: int, media_seconds: float, stop: threading.Event) -> None:
    packet = 7 * 188
    chunks = [data[i : i + packet] for i in range(0, len(data), packet)]
    interval = media_seconds / len(chunks)
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i, chunk in enumerate(chunks):
            if stop.is_set():
                return
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(chunk, ("127.0.0.1", port))
