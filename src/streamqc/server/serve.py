"""Serving the API with uvicorn on a thread of the monitor's main process."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from streamqc.errors import ConfigError


class ServerThread:
    """uvicorn on a socket bound before start (port 0 picks a free one: see `port`)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8400) -> None:
        self.app = app
        try:
            self.socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as err:
            raise ConfigError(f"server.listen: cannot listen on {host}:{port}: {err.strerror or err}") from None
        self.host, self.port = host, self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                        name="streamqc-api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.app.state.stopping.set()  # live event streams end; then uvicorn can close
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self.socket.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(section: Any, journal_path: str | Path, control: Any, metrics: Any = None) -> ServerThread:
    """The API for the monitor config's `server:` section, on its own journal connection.

    `metrics`: the `MonitorMetrics` the service's notifiers report to (made here if None).
    """
    from streamqc.server.app import ServerConfig, create_app
    from streamqc.sinks.journal import Journal

    config = ServerConfig.from_section(section)
    if not config.all_tokens():
        print(f"streamqc api: no tokens (server.tokens or ${config.tokens_env}): changes are refused"
              + ("" if config.public_reads else " and so are reads"), file=sys.stderr, flush=True)
    host, port = config.address()
    server = ServerThread(create_app(Journal(journal_path), control, config, metrics), host, port).start()
    print(f"streamqc api: listening on {server.url} (OpenAPI at {server.url}/docs)", file=sys.stderr, flush=True)
    return server
