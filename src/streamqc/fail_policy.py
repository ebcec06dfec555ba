"""Which events fail `streamqc check` (`--fail-on`), the way a linter picks its rules.

A rule is `SEVERITY` (any kind at that severity or worse), `KIND` (that kind at minor or
worse) or `KIND:SEVERITY`; KIND may be a glob (`audio.*`). An event fails the check when
some rule matches it. `none` fails on nothing (report only). Info notes (a cadence, a
loudness measurement without a target) never fail a check.

The default, `viewer`, fails on what a viewer would notice: every picture, sound and
sync defect and a dead or missing track at minor or worse; transport, delivery and
timestamp indicators (`ts.*`, `hls.*`, `dash.*`, `stream.discontinuity`,
`stream.format_change`), which a player often rides through, only when major or worse.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable

from streamqc.errors import ConfigError
from streamqc.events import Event, Severity

NAMED: dict[str, tuple[str, ...]] = {
    "viewer": ("video.*:minor", "audio.*:minor", "av.*:minor", "stream.down:minor",
               "stream.missing_track:minor", "*:major"),
    "none": (),
}
DEFAULT = "viewer"
PREFIXES = ("video.", "audio.", "av.", "stream.", "ts.", "hls.", "dash.", "action.")
_RANKED = [s for s in Severity if s is not Severity.INFO]


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    kinds: str  # a glob over event kinds
    severity: Severity  # the least severity that fails

    def matches(self, event: Event) -> bool:
        return event.severity.rank >= self.severity.rank and fnmatch.fnmatchcase(event.kind, self.kinds)

    def __str__(self) -> str:
        return f"{self.kinds}:{self.severity.value}"


@dataclasses.dataclass(frozen=True, slots=True)
class FailPolicy:
    rules: tuple[Rule, ...]
    spec: str  # as the user wrote it, for the report

    @classmethod
    def parse(cls, specs: Iterable[str] | None) -> "FailPolicy":
        """Rules from `--fail-on` values (repeatable, comma-separated); none given: the default."""
        items = [item.strip() for spec in (specs or [DEFAULT]) for item in spec.split(",") if item.strip()]
        if not items:
            raise ConfigError(f"--fail-on needs a rule (e.g. major, video.*, audio.click:minor) or one of {', '.join(NAMED)}")
        rules: list[Rule] = []
        for item in items:
            if item in NAMED:
                rules.extend(_rule(r) for r in NAMED[item])
            else:
                rules.append(_rule(item))
        return cls(tuple(rules), ",".join(items))

    def fails(self, event: Event) -> bool:
        return event.severity is not Severity.INFO and any(rule.matches(event) for rule in self.rules)

    def failing(self, events: Iterable[Event]) -> list[Event]:
        return [e for e in events if self.fails(e)]


def _rule(text: str) -> Rule:
    kinds, sep, severity = text.partition(":")
    kinds, severity = kinds.strip(), severity.strip()
    if not sep and kinds in {s.value for s in _RANKED}:
        return Rule("*", Severity(kinds))
    if not kinds or any(c.isspace() for c in kinds):
        raise ConfigError(f"--fail-on: bad rule {text!r} (expected SEVERITY, KIND or KIND:SEVERITY)")
    if kinds != "*" and not kinds.startswith(PREFIXES):
        raise ConfigError(f"--fail-on: {kinds!r} names no event kind (kinds start with {', '.join(PREFIXES)})")
    if not sep:
        return Rule(kinds, Severity.MINOR)
    if severity not in {s.value for s in _RANKED}:
        known = ", ".join(s.value for s in _RANKED)
        raise ConfigError(f"--fail-on: unknown severity {severity!r} in {text!r} (known: {known})")
    return Rule(kinds, Severity(severity))
