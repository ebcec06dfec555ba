"""Run by the system Python (GStreamer's bindings live there): serve an MPEG-TS file over RTSP.

    /usr/bin/python3 rtsp_serve.py PORT FILE.ts   -> rtsp://127.0.0.1:PORT/stream
Prints READY once listening; stops on SIGTERM.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{path}" ! tsdemux name=d '
        "d. ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 "
        "d. ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    GLib.timeout_add(200, lambda: True)  # lets Python see SIGTERM while GLib waits
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
