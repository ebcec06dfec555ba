"""Templates for corrective actions: `{stream.id}`, `{stream.backup_url}`, `{event.kind}` ...

A placeholder is replaced by one value and nothing else happens: no expressions, no
format specs, no shell. A template that is a single placeholder becomes the value itself
(typed, for JSON bodies); inside a longer string the value is inserted as text (and
percent-encoded inside a URL, so a stream id cannot add a path or a query).
"""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Mapping
from typing import Any

_FORMATTER = string.Formatter()
_NAMES = {"stream.id", "stream.url", "stream.backup_url", "event.id", "event.kind", "event.severity",
          "event.start", "event.end", "event.stream", "rule.name", "attempt"}
_PREFIXES = ("stream.tags.",)


class MissingValue(Exception):
    """A placeholder whose value this stream or event does not have (e.g. no backup_url)."""


def _fields(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pieces; raises ValueError on bad syntax."""
    pieces = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is not None and (spec or conversion):
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        tag = name is not None and name.startswith(_PREFIXES) and len(name) > len(_PREFIXES[0])
        if name is not None and name not in _NAMES and not tag:
            raise ValueError(f"unknown placeholder {{{name}}} (known: {', '.join(sorted(_NAMES))}, stream.tags.<key>)")
        pieces.append((literal, name))
    return pieces


def check_template(template: str) -> None:
    try:
        _fields(template)
    except ValueError as err:
        raise ValueError(f"{template!r}: {err}") from None


def render(template: str, values: Mapping[str, Any], url: bool = False) -> Any:
    """Substitute placeholders; a lone placeholder returns its value unchanged in type."""
    pieces = _fields(template)
    if len(pieces) == 1 and pieces[0][0] == "" and pieces[0][1] is not None:
        return _value(values, pieces[0][1])
    out = []
    for literal, name in pieces:
        out.append(literal)
        if name is not None:
            text = str(_value(values, name))
            out.append(urllib.parse.quote(text, safe="") if url else text)
    return "".join(out)


def render_json(body: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(body, str):
        return render(body, values)
    if isinstance(body, dict):
        return {key: render_json(value, values) for key, value in body.items()}
    if isinstance(body, list):
        return [render_json(value, values) for value in body]
    return body


def _value(values: Mapping[str, Any], name: str) -> Any:
    value = values.get(name)
    if value is None:
        raise MissingValue(name)
    return value


def template_values(stream: Mapping[str, Any], event: Mapping[str, Any], rule: str, attempt: int) -> dict[str, Any]:
    values: dict[str, Any] = {f"stream.{k}": v for k, v in stream.items() if k != "tags"}
    values.update({f"stream.tags.{k}": v for k, v in (stream.get("tags") or {}).items()})
    values.update({f"event.{k}": v for k, v in event.items()})
    values["rule.name"] = rule
    values["attempt"] = attempt
    return values

