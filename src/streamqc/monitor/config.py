"""The monitor's configuration (`streams.yaml`), validated by pydantic.

Errors name the bad key with its path (`streams[1].url: field required`). The issue-5
sections (`notify`, `actions`, `store`, `server`) are declared here but kept opaque:
the parts that use them validate their own contents.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from streamqc.errors import ConfigError
from streamqc.pipeline import build_detectors

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def usable_cores(cgroup_root: pathlib.Path = pathlib.Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, capped by the container's CPU
    quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), rounded up. os.cpu_count()
    counts the host's: a pod limited to 2 cores on a 64-core node would start 64 workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def _cgroup_quota(root: pathlib.Path) -> float | None:
    """CPU quota in cores, or None where there is none (or no cgroup file to read)."""
    try:
        if (root / "cpu.max").is_file():
            limit, period = (root / "cpu.max").read_text().split()[:2]
            return None if limit == "max" else int(limit) / int(period)
        v1 = root / "cpu"
        if (v1 / "cpu.cfs_quota_us").is_file():
            limit = int((v1 / "cpu.cfs_quota_us").read_text())
            return None if limit <= 0 else limit / int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        pass  # unreadable or odd: the affinity alone decides
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamConfig(_Strict):
    """One monitored stream."""

    id: str
    url: str
    backup_url: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)  # overrides of the global options
    enabled: bool = True

    @pydantic.field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @pydantic.field_validator("url", "backup_url")
    @classmethod
    def _url_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value


class ReconnectConfig(_Strict):
    initial_s: float = Field(1.0, gt=0)  # first retry after about this long
    max_s: float = Field(30.0, gt=0)  # the backoff doubles up to this
    jitter: float = Field(0.5, ge=0, le=1)  # each delay is cut by up to this fraction, at random
    # a session that delivered media this long resets the backoff to initial_s
    reset_after_s: float = Field(10.0, ge=0)


class MonitorConfig(_Strict):
    state_dir: str = "./streamqc-state"
    workers: int | None = Field(None, ge=1, le=256)  # None: the cores this process may use (usable_cores)
    stall_timeout_s: float = Field(5.0, gt=0)
    # processing more than this behind real time sheds picture analysis until it catches up
    max_lag_s: float = Field(2.0, gt=0)
    # a stream whose loop makes no progress this long while its input delivers is restarted
    hang_timeout_s: float = Field(20.0, gt=0)
    decoder_threads: int = Field(1, ge=0)  # per stream; 1 keeps many streams per core predictable
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    streams: list[StreamConfig] = Field(default_factory=list)
    # Issue-5 sections, filled in by the notifier, action, store and server parts.
    notify: Any = None
    actions: Any = None
    store: Any = None
    server: Any = None

    @pydantic.model_validator(mode="after")
    def _ids_unique(self) -> "MonitorConfig":
        seen: set[str] = set()
        for index, stream in enumerate(self.streams):
            if stream.id in seen:
                raise ValueError(f"streams[{index}].id: duplicate stream id {stream.id!r}")
            seen.add(stream.id)
        return self

    @property
    def worker_count(self) -> int:
        return self.workers or usable_cores()

    @property
    def journal_path(self) -> pathlib.Path:
        return pathlib.Path(self.state_dir) / "journal.db"

    def detector_options(self, stream: StreamConfig) -> dict[str, dict[str, Any]]:
        """Global options with the stream's overrides on top, detector by detector."""
        merged = {name: dict(values or {}) for name, values in self.detectors.items()}
        for name, values in stream.detectors.items():
            merged.setdefault(name, {}).update(values or {})
        return merged


def parse_config(data: Any, origin: str = "config") -> MonitorConfig:
    """Validate a parsed document; ConfigError names the first bad key and says why."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings, got {type(data).__name__}")
    try:
        config = MonitorConfig.model_validate(data)
    except pydantic.ValidationError as err:
        raise ConfigError(f"{origin}: {_describe(err)}") from None
    for stream in config.streams:
        try:
            build_detectors(config.detector_options(stream))
        except ConfigError as err:
            raise ConfigError(f"{origin}: streams[{stream.id}].detectors: {err}") from None
    return config


def load_config(path: str | pathlib.Path) -> MonitorConfig:
    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: cannot parse: {str(err).splitlines()[0]}") from None
    return parse_config(data, str(path))


def _describe(err: pydantic.ValidationError) -> str:
    problems = []
    for item in err.errors():
        where = _path(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            problems.append(f"unknown key {where!r}")
        elif kind == "missing":
            problems.append(f"{where}: required key missing")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
