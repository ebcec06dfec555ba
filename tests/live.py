"""Helpers for the monitor's live tests: labelled clips, free ports, a monitor process.

The peers that feed it (UDP sender, HLS origin ...) are in tests/peers.

Everything binds or sends to 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction

from streamqc.synth import AudioCodec, AudioSpec, Scenario, VideoCodec, VideoSpec, encode_scenario
from streamqc.synth import audio as programme_audio
from streamqc.synth.content import TexturePan
from streamqc.synth.defects import Black, Freeze, Silence

TS_OFFSET_S = 1.4  # EncoderSink's default: programme time t has PTS t + 1.4 s
VIDEO = VideoSpec(320, 180, Fraction(25))
AUDIO = AudioSpec(48000, 2)


def make_clip(path: pathlib.Path, seconds: float, defects: list[tuple[str, float, float]], seed: int = 1,
              video: VideoSpec = VIDEO, bitrate_bps: int = 300_000) -> list[dict]:
    """Encode a TS clip of moving texture + music with defects (kind, start_s, end_s); return its labels."""
    made = []
    for kind, start, end in defects:
        if kind == "video.freeze":
            made.append(Freeze(video.index_at(start), video.index_at(end)))
        elif kind == "video.black":
            made.append(Black(video.index_at(start), video.index_at(end)))
        elif kind == "audio.silence":
            made.append(Silence(AUDIO.sample_at(start), AUDIO.sample_at(end)))
        else:
            raise ValueError(kind)
    scenario = Scenario(TexturePan(video, seed), programme_audio.programme(AUDIO, seed, "music", 6.0), seconds, made)
    encode_scenario(scenario, path, "ts", VideoCodec("h264", bitrate_bps, gop_frames=25),
                    AudioCodec("aac", 96_000), ts_offset_s=TS_OFFSET_S)
    return [{"kind": label.kind, "start": label.start_s, "end": label.end_s}
            for label in scenario.annotations().labels]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def wait_for(condition, timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return bool(condition())


class MonitorProcess:
    """`streamqc monitor ... --json` as a real process; JSON lines collected as they come."""

    def __init__(self, args: list[str], cwd: pathlib.Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "streamqc", "monitor", "--json", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     start_new_session=True)
        self.lines: list[dict] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                self.lines.append(json.loads(line))

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def events(self, stream: str | None = None, kind: str | None = None) -> list[dict]:
        return [e for e in list(self.lines) if (stream is None or e.get("stream") == stream)
                and (kind is None or e["kind"] == kind)]

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        """kill -9 of the whole service: the supervisor and its workers."""
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
