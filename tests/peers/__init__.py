"""Real peers for live-input tests: servers and senders on 127.0.0.1, started and stopped by tests.

- LiveHlsOrigin: live HLS over HTTP, segments encoded in real time, faults on demand
- DashOrigin: live DASH over HTTP (FFmpeg's dash packager), faults on demand
- UdpTsSender: an MPEG-TS file sent over UDP at media speed, with stalls on demand
- RtmpServer / RtspServer: nginx-rtmp and gst-rtsp-server processes (skip when not installed)
- free_port(): a free 127.0.0.1 port number
"""

from peers.dash_origin import DashOrigin
from peers.hls_origin import LiveHlsOrigin
from peers.http_origin import HttpOrigin
from peers import rtmp_server, rtsp_server
from peers.rtmp_server import RtmpServer, free_port
from peers.rtsp_server import RtspServer
from peers.udp_sender import UdpTsSender

__all__ = ["DashOrigin", "HttpOrigin", "LiveHlsOrigin", "RtmpServer", "RtspServer", "UdpTsSender", "free_port",
           "rtmp_server", "rtsp_server"]
