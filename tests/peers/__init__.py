"""Real peers for live-input tests: servers and senders on 127.0.0.1, started and stopped by tests.

Import them as `from peers import LiveHlsOrigin` (pytest puts tests/ on the path).
Every one is a context manager; every wait is bounded.

- `LiveHlsOrigin(segment_s=1.2, window=6, preroll_segments=3, seed=1)`: live HLS over HTTP,
  192x108 H.264 + AAC segments encoded in real time. `.url`; faults: `stop_updating()`,
  `resume_updating()`, `fail_segment()`, `long_segment(factor)`, `restart_sequence()`,
  `discontinuity()`, `end()`; `wait_for_sequence(n)`; scheduled defects: `inject(kind,
  in_s, for_s)` (freeze, black, silence) returns the label in programme time, mapped onto
  a client's clock by `segment_start_s(first_fetched())`.
- `DashOrigin(segment_s=1.2, preroll_segments=3, seed=2)`: live DASH (FFmpeg's dash
  packager), video and audio adaptation sets. `.url`; faults: `stop_updating()`,
  `resume_updating()`, `fail_segment()`.
- `HttpOrigin(folder)`: a plain HTTP server of a folder (`.url(path)`, `.fail(path)`,
  `.set_text(path, text)`, `.requests`).
- `UdpTsSender(path, port, loop=False)`: an MPEG-TS file sent to udp://127.0.0.1:port at
  the pace of its PCR. `.url`, `stall(seconds)` (the packets of that time are lost),
  `wait()` (until sent), `started` (when the first datagram was due).
- `RtmpServer()`: nginx with its RTMP module (`.url(name)`: publish and play there).
- `RtspServer(ts_path)`: gst-rtsp-server playing an MPEG-TS file at `.url`.
  `rtmp_server.missing()` / `rtsp_server.missing()` say why one cannot run here
  (then skip); the Debian packages they need are in their DEBIAN_PACKAGES.
- `free_port()`: a free TCP port on 127.0.0.1.
"""

from peers import rtmp_server, rtsp_server
from peers.dash_origin import DashOrigin
from peers.hls_origin import LiveHlsOrigin
from peers.http_origin import HttpOrigin
from peers.rtmp_server import RtmpServer, free_port
from peers.rtsp_server import RtspServer
from peers.udp_sender import UdpTsSender, udp_bound

__all__ = ["DashOrigin", "HttpOrigin", "LiveHlsOrigin", "RtmpServer", "RtspServer", "UdpTsSender", "free_port", "udp_bound",
           "rtmp_server", "rtsp_server"]
