"""The `notify:` and `actions:` sections of the monitor config, validated by pydantic.

```yaml
notify:
  - name: ops-hook                 # the outbox cursor is kept under this name
    type: webhook                  # webhook | slack | pagerduty | stdout
    url: https://hooks.example.com/streamqc
    secret_env: STREAMQC_WEBHOOK_SECRET
    routes:                        # any route that matches sends the event; none: everything
      - kinds: ["video.*", "stream.down"]
        min_severity: major
        tags: {tier: gold}         # the stream's tags must include these
actions:
  - name: switch-to-backup
    kinds: [video.freeze, video.black]
    min_duration_s: 3
    cooldown_s: 60
    max_attempts: 2
    http: {method: POST, url: "http://origin/{stream.id}/switch", json: {to: "{stream.backup_url}"}}
```
Errors name the bad key, e.g. `notify[0].routes[0].min_severity: ...`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from streamqc.errors import ConfigError
from streamqc.events import Event, Severity
from streamqc.sinks.templates import check_template


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamInfo(_Strict):
    """What sinks need to know about a stream: tags for routing, URLs for actions."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    url: str | None = None
    backup_url: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class Match(_Strict):
    """Which events a route or an action rule takes: kinds (globs), severity, stream tags."""

    kinds: list[str] = Field(default_factory=lambda: ["*"])
    min_severity: Severity = Severity.INFO
    tags: dict[str, str] = Field(default_factory=dict)

    @pydantic.field_validator("kinds")
    @classmethod
    def _kinds_not_empty(cls, kinds: list[str]) -> list[str]:
        if not kinds:
            raise ValueError("give at least one kind or glob (e.g. 'video.*', '*')")
        return kinds

    def kind_matches(self, kind: str) -> bool:
        # "video" alone means the whole prefix, as in the journal's kind filter.
        return any(fnmatch.fnmatchcase(kind, k) or kind.startswith(k.rstrip(".") + ".") for k in self.kinds)

    def tags_match(self, tags: Mapping[str, str]) -> bool:
        return all(tags.get(key) == value for key, value in self.tags.items())

    def matches(self, event: Event, tags: Mapping[str, str], check_severity: bool = True) -> bool:
        if check_severity and event.severity.rank < self.min_severity.rank:
            return False
        return self.kind_matches(event.kind) and self.tags_match(tags)


class Retry(_Strict):
    """Exponential backoff with jitter: initial_s, doubled per attempt, capped at max_delay_s."""

    initial_s: float = Field(1.0, gt=0)
    max_delay_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(20, ge=1)
    max_age_s: float = Field(24 * 3600.0, gt=0)  # from the first failed attempt


class _NotifierBase(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    routes: list[Match] = Field(default_factory=list)
    retry: Retry = Retry()
    timeout_s: float = Field(10.0, gt=0)

    def wants(self, event: Event, tags: Mapping[str, str], check_severity: bool = True) -> bool:
        return not self.routes or any(r.matches(event, tags, check_severity) for r in self.routes)


def _from_env(value: str | None, env: str | None, what: str) -> str | None:
    if value:
        return value
    if env:
        found = os.environ.get(env)
        if not found:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return found
    return None


class WebhookConfig(_NotifierBase):
    type: Literal["webhook"]
    url: pydantic.HttpUrl
    secret: str | None = None
    secret_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def resolved_secret(self) -> str | None:
        return _from_env(self.secret, self.secret_env, f"notify {self.name}.secret_env")


class SlackConfig(_NotifierBase):
    type: Literal["slack"]
    url: pydantic.HttpUrl | None = None  # the incoming-webhook URL is a secret: url_env is better
    url_env: str | None = None

    def resolved_url(self) -> str:
        url = _from_env(str(self.url) if self.url else None, self.url_env, f"notify {self.name}.url_env")
        if not url:
            raise ConfigError(f"notify {self.name}: give url or url_env")
        return url


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyConfig(_NotifierBase):
    type: Literal["pagerduty"]
    url: pydantic.HttpUrl = pydantic.HttpUrl(PAGERDUTY_EVENTS_URL)
    routing_key: str | None = None
    routing_key_env: str | None = None
    source: str = "streamqc"

    def resolved_routing_key(self) -> str:
        key = _from_env(self.routing_key, self.routing_key_env, f"notify {self.name}.routing_key_env")
        if not key:
            raise ConfigError(f"notify {self.name}: give routing_key or routing_key_env")
        return key


class StdoutConfig(_NotifierBase):
    type: Literal["stdout"]


NotifierConfig = Annotated[Union[WebhookConfig, SlackConfig, PagerDutyConfig, StdoutConfig],
                           Field(discriminator="type")]


class HttpAction(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    json_body: Any = Field(None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10.0, gt=0)

    @pydantic.model_validator(mode="after")
    def _templates(self) -> "HttpAction":
        for value in [self.url, *self.headers.values(), *_strings(self.json_body)]:
            check_template(value)
        return self


class CommandAction(_Strict):
    argv: list[str] = Field(min_length=1)
    timeout_s: float = Field(30.0, gt=0)

    @pydantic.field_validator("argv")
    @classmethod
    def _templates(cls, argv: list[str]) -> list[str]:
        for value in argv:
            check_template(value)
        return argv


class ActionRule(Match):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    min_duration_s: float = Field(0.0, ge=0)
    cooldown_s: float = Field(60.0, ge=0)
    max_attempts: int = Field(3, ge=1)
    # How long after an attempt the defect must have cleared before the fix counts as failed.
    settle_s: float = Field(10.0, ge=0)
    http: HttpAction | None = None
    command: CommandAction | None = None

    @pydantic.model_validator(mode="after")
    def _one_action(self) -> "ActionRule":
        if (self.http is None) == (self.command is None):
            raise ValueError("give exactly one of 'http' or 'command'")
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


_NOTIFY = pydantic.TypeAdapter(list[NotifierConfig])
_ACTIONS = pydantic.TypeAdapter(list[ActionRule])
_STREAMS = pydantic.TypeAdapter(list[StreamInfo])


def parse_notify(section: Any) -> list[WebhookConfig | SlackConfig | PagerDutyConfig | StdoutConfig]:
    configs = _validate(_NOTIFY, section, "notify")
    _unique([c.name for c in configs], "notify")
    return configs


def parse_actions(section: Any) -> list[ActionRule]:
    rules = _validate(_ACTIONS, section, "actions")
    _unique([r.name for r in rules], "actions")
    return rules


def parse_streams(section: Any) -> dict[str, StreamInfo]:
    return {s.id: s for s in _validate(_STREAMS, section, "streams")}


def _validate(adapter: pydantic.TypeAdapter, section: Any, name: str) -> Any:
    if section is None:
        return []
    try:
        return adapter.validate_python(section)
    except pydantic.ValidationError as err:
        raise ConfigError(describe_error(err, name)) from None


def validate_section(model: type[pydantic.BaseModel], section: Any, name: str) -> Any:
    """One config section as `model`; absent is the defaults; ConfigError names the bad key."""
    if section is None:
        return model()
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(section).__name__}")
    try:
        return model.model_validate(section)
    except pydantic.ValidationError as err:
        raise ConfigError(describe_error(err, name)) from None


def describe_error(err: pydantic.ValidationError, section: str) -> str:
    """`notify[0].routes[1].min_severity: Input should be ...` for the first error."""
    first = err.errors()[0]
    path = section
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("webhook", "slack", "pagerduty", "stdout"):
            continue  # the union's branch name, not a key the user wrote
        else:
            path += f".{part}"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path += ".type"
        message = f"expected one of webhook, slack, pagerduty, stdout, got {first['input'].get('type')!r}" \
            if isinstance(first["input"], dict) else message
    return f"{path}: {message}"


def _unique(names: list[str], section: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{section}[{index}].name: {name!r} is used twice")
        seen.add(name)
