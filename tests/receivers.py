"""Real HTTP receivers on 127.0.0.1 for the notifier and action tests (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any]], tuple[int, bytes]]


class Receiver:
    """Records every request; `respond(request) -> (status, body)` decides the answer (default 200).

    `stop()` closes the socket (senders get "connection refused"); `start()` opens it again
    on the same port.
    """

    def __init__(self, respond: Respond | None = None, port: int = 0) -> None:
        self.respond = respond or (lambda request: (200, b"ok"))
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                           "body": body, "received": time.monotonic(), "wall": time.time()}
                with receiver.lock:
                    receiver.requests.append(request)
                status, answer = receiver.respond(request)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

    def json_bodies(self) -> list[Any]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return True
            time.sleep(0.02)
        return False
