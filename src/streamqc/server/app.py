"""The HTTP API: streams at runtime, their status, events (also live, as Server-Sent
Events), health, readiness and Prometheus metrics. OpenAPI at /openapi.json, /docs.

Every endpoint that changes something needs `Authorization: Bearer <token>`; reads
need it too unless `public_reads` is set. /health, /ready and the OpenAPI documents are
always public. Tokens come from `server.tokens` and the environment variable named by
`server.tokens_env` (default STREAMQC_TOKENS, comma-separated); they are compared in
constant time. With no token configured, nothing that needs one is allowed.

The app reads events from the journal (its own connection) and drives the monitor
through the supervisor's control surface (docs/live-architecture.md); without a
supervisor (`control=None`) the stream endpoints answer 503 and the rest works.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from streamqc.errors import ConfigError
from streamqc.monitor.config import StreamConfig
from streamqc.server.metrics import CONTENT_TYPE, MonitorMetrics
from streamqc.sinks.journal import Journal
from streamqc.sinks.config import validate_section
from streamqc.sinks.store import parse_at

SSE_POLL_S = 0.25
SSE_HEARTBEAT_S = 15.0


class ServerConfig(BaseModel):
    """The `server:` section of the monitor config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:8400"
    tokens: list[str] = Field(default_factory=list)
    tokens_env: str = "STREAMQC_TOKENS"
    public_reads: bool = False

    @classmethod
    def from_section(cls, section: Any) -> "ServerConfig":
        return validate_section(cls, section, "server")

    def all_tokens(self) -> list[str]:
        from_env = os.environ.get(self.tokens_env, "") if self.tokens_env else ""
        return [t for t in [*self.tokens, *(p.strip() for p in from_env.split(","))] if t]

    def address(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"server.listen: expected host:port, got {self.listen!r}")
        return host.strip("[]") or "127.0.0.1", int(port)


_BEARER = HTTPBearer(auto_error=False, description="a token from server.tokens or $STREAMQC_TOKENS")


class _Auth:
    """Bearer-token check: 401 without a token, 403 with a wrong one."""

    def __init__(self, tokens: list[str], required: bool) -> None:
        self.tokens = [t.encode() for t in tokens]
        self.required = required

    async def __call__(self, credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER)) -> None:
        if not self.required:
            return
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        given = credentials.credentials.encode()
        # Compare with every token (no early exit), each in constant time.
        matches = [hmac.compare_digest(given, token) for token in self.tokens]
        if not any(matches):
            raise HTTPException(403, "token not accepted")


def _iso_param(value: str | None, name: str) -> str | None:
    """A time filter in the journal's own `at` format (UTC, milliseconds, Z), so strings compare."""
    if value is None:
        return None
    try:
        moment = parse_at(value)
    except ValueError:
        raise HTTPException(422, f"{name}: not an ISO 8601 time: {value!r}") from None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_app(journal: Journal, control: Any = None, config: ServerConfig | None = None,
               metrics: MonitorMetrics | None = None) -> FastAPI:
    config = config or ServerConfig()
    tokens = config.all_tokens()
    write = Depends(_Auth(tokens, required=True))
    read = Depends(_Auth(tokens, required=not config.public_reads))
    metrics = metrics or MonitorMetrics(journal, control)
    app = FastAPI(title="streamqc", summary="Live stream quality monitor: streams, events, metrics",
                  version="0.1.0")
    app.state.stopping = threading.Event()  # set by ServerThread.stop: live streams end

    def supervisor() -> Any:
        if control is None:
            raise HTTPException(503, "no monitor attached to this server")
        return control

    def status_of(stream_id: str) -> dict[str, Any]:
        for status in supervisor().streams():
            if status.id == stream_id:
                return status.to_dict()
        raise HTTPException(404, f"no stream {stream_id!r}")

    def act(method: str, stream_id: str) -> dict[str, Any]:
        try:
            getattr(supervisor(), method)(stream_id)
        except KeyError:
            raise HTTPException(404, f"no stream {stream_id!r}") from None
        return {"id": stream_id, "done": method.removesuffix("_stream")}

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    def ready(response: Response) -> dict[str, Any]:
        """The journal can be read and every worker process is alive (503 otherwise)."""
        problems = []
        try:
            journal.last_seq()
        except Exception as err:  # any failure to read the journal makes the service unready
            problems.append(f"journal: {err}")
        if control is not None and hasattr(control, "workers"):
            dead = [w["index"] for w in control.workers() if not w["alive"]]
            if dead:
                problems.append(f"workers not alive: {dead}")
        if problems:
            response.status_code = 503
        return {"ready": not problems, "problems": problems}

    @app.get("/streams", tags=["streams"], dependencies=[read])
    def list_streams() -> list[dict[str, Any]]:
        """Every monitored stream with its state and counters."""
        return [s.to_dict() for s in supervisor().streams()]

    @app.post("/streams", tags=["streams"], status_code=201, dependencies=[write])
    def add_stream(stream: StreamConfig) -> dict[str, Any]:
        """Start monitoring a stream (409 if the id is taken, 422 for a bad option)."""
        control = supervisor()
        if any(s.id == stream.id for s in control.streams()):
            raise HTTPException(409, f"stream {stream.id!r} is already monitored")
        try:
            control.add_stream(stream)
        except ConfigError as err:  # a bad detector option (or the same id, added meanwhile)
            raise HTTPException(422, str(err)) from None
        return status_of(stream.id)

    @app.get("/streams/{stream_id}", tags=["streams"], dependencies=[read])
    def stream_status(stream_id: str) -> dict[str, Any]:
        """A stream's state and counters, with the defects still going on."""
        status = status_of(stream_id)
        status["open_defects"] = [r.to_dict() for r in journal.open_defects(stream_id)]
        return status

    @app.delete("/streams/{stream_id}", tags=["streams"], dependencies=[write])
    def remove_stream(stream_id: str) -> dict[str, Any]:
        return act("remove_stream", stream_id)

    @app.post("/streams/{stream_id}/pause", tags=["streams"], dependencies=[write])
    def pause_stream(stream_id: str) -> dict[str, Any]:
        return act("pause_stream", stream_id)

    @app.post("/streams/{stream_id}/resume", tags=["streams"], dependencies=[write])
    def resume_stream(stream_id: str) -> dict[str, Any]:
        return act("resume_stream", stream_id)

    @app.get("/events", tags=["events"], dependencies=[read])
    def events(stream: str | None = None, kind: str | None = Query(None, description="a kind or a prefix: video."),
               since: str | None = Query(None, description="ISO 8601, inclusive"),
               until: str | None = Query(None, description="ISO 8601, exclusive"),
               after: int = Query(0, ge=0, description="only records after this seq (paging)"),
               limit: int = Query(500, ge=1, le=5000)) -> dict[str, Any]:
        """Journaled events (both records of a live defect: phase open, then closed), oldest first."""
        records = journal.read(after_seq=after, limit=limit, stream=stream, kind=kind,
                               since=_iso_param(since, "since"), until=_iso_param(until, "until"))
        return {"events": [r.to_dict() for r in records], "next_after": records[-1].seq if records else after}

    @app.get("/events/stream", tags=["events"], dependencies=[read],
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def event_stream(request: Request, stream: str | None = None, kind: str | None = None,
                           after: int | None = Query(None, ge=0, description="default: from now on"),
                           ) -> StreamingResponse:
        """New events as Server-Sent Events (`id` = seq; reconnect with Last-Event-ID to resume)."""
        resume = request.headers.get("last-event-id")
        start = after if after is not None else int(resume) if resume and resume.isdigit() else None
        if start is None:
            start = await asyncio.to_thread(journal.last_seq)
        return StreamingResponse(_sse(request, journal, start, stream, kind), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/metrics", tags=["service"], dependencies=[read], response_class=Response)
    def prometheus() -> Response:
        """Prometheus text format."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.exception_handler(ConfigError)
    async def config_error(_: Request, err: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    app.state.metrics = metrics
    return app


async def _sse(request: Request, journal: Journal, after: int, stream: str | None,
               kind: str | None) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield b": streamqc events\n\n"  # lets the client see the stream is open before the first event
    stopping: threading.Event = request.app.state.stopping
    while not stopping.is_set() and not await request.is_disconnected():
        records = await asyncio.to_thread(journal.read, after, 200, stream, kind)
        for record in records:
            yield f"id: {record.seq}\ndata: {json.dumps(record.to_dict())}\n\n".encode()
            after = record.seq
        if records:
            last_sent = loop.time()
            continue
        if loop.time() - last_sent > SSE_HEARTBEAT_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()
        await asyncio.sleep(SSE_POLL_S)
