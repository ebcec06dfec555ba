"""An RTSP server (GStreamer's gst-rtsp-server, from Debian) as a real process on 127.0.0.1."""

from __future__ import annotations

import pathlib
import subprocess
import time

from peers.rtmp_server import free_port, stop_process

SYSTEM_PYTHON = "/usr/bin/python3"
# What to install where they are missing (Debian):
DEBIAN_PACKAGES = ("python3-gi", "gir1.2-gst-rtsp-server-1.0", "gstreamer1.0-plugins-base",
                   "gstreamer1.0-plugins-good", "gstreamer1.0-plugins-bad")
_SERVE = pathlib.Path(__file__).with_name("rtsp_serve.py")
_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing = [e for e in ('tsdemux', 'h264parse', 'aacparse', 'rtph264pay', 'rtpmp4gpay')"
    " if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
)


def missing() -> str | None:
    """Why the server cannot run here, or None."""
    if not pathlib.Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON} for GStreamer's Python bindings"
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "probing GStreamer timed out"
    if probe.returncode != 0:
        return f"gst-rtsp-server's Python bindings are missing (Debian: apt-get install {' '.join(DEBIAN_PACKAGES)})"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()} (Debian: apt-get install {' '.join(DEBIAN_PACKAGES)})"
    return None


class RtspServer:
    """Serves `path` (MPEG-TS, H.264 + AAC) at `url` = rtsp://127.0.0.1:PORT/stream, paced by
    GStreamer's clock, from a subprocess of the system Python. Use as a context manager."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def start(self, timeout_s: float = 15.0) -> "RtspServer":
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(_SERVE), str(self.port), str(self.path)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout_s
        line = self.process.stdout.readline()  # READY, or nothing when it died
        if line.strip() != "READY" or time.monotonic() > deadline:
            self.close()
            raise RuntimeError(f"gst-rtsp-server did not start: {line.strip()}")
        return self

    def close(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
