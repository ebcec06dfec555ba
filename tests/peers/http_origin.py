"""A real HTTP server on 127.0.0.1 that serves a folder, with hooks for delivery faults."""

from __future__ import annotations

import http.server
import pathlib
import threading
from collections.abc import Callable

_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mpd": "application/dash+xml",
          ".m4s": "video/iso.segment", ".mp4": "video/mp4"}


class HttpOrigin:
    """Serve `root` at http://127.0.0.1:<free port>/.

    `texts` are served from memory before the folder (a playlist the peer composes);
    paths in `failing` answer 404, as an origin that lost a segment.
    """

    def __init__(self, root: pathlib.Path) -> None:
        self.root = pathlib.Path(root)
        self.texts: dict[str, bytes] = {}
        self.failing: set[str] = set()
        self.requests: list[tuple[str, int]] = []  # (path, status), for tests that check what was asked
        self.hook: Callable[[str], tuple[int, bytes] | None] | None = None
        self._lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0].lstrip("/")
                status, body = origin.respond(path)
                with origin._lock:
                    origin.requests.append((path, status))
                self.send_response(status)
                self.send_header("Content-Type", _TYPES.get(pathlib.PurePath(path).suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def respond(self, path: str) -> tuple[int, bytes]:
        if self.hook is not None:
            answer = self.hook(path)
            if answer is not None:
                return answer
        with self._lock:
            if path in self.failing:
                return 404, b"not found"
            if path in self.texts:
                return 200, self.texts[path]
        file = (self.root / path).resolve()
        if self.root.resolve() not in file.parents or not file.is_file():
            return 404, b"not found"
        return 200, file.read_bytes()

    def set_text(self, path: str, text: str | bytes) -> None:
        with self._lock:
            self.texts[path] = text.encode() if isinstance(text, str) else text

    def fail(self, path: str) -> None:
        with self._lock:
            self.failing.add(path)

    def start(self) -> "HttpOrigin":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
