"""Defect events: the output contract that other tools rely on (see README, "Event kinds")."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from enum import Enum
from typing import Any


class Severity(str, Enum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


@dataclasses.dataclass(slots=True)
class Event:
    """One defect over an interval of media time (seconds, 0 = first decoded video frame)."""

    kind: str
    start: float
    end: float
    severity: Severity = Severity.MAJOR
    confidence: float = 1.0
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    stream: str | None = None
    at: str | None = None
    # A defect still going on, announced once it has lasted its minimum duration so a
    # live monitor can alert before it ends; the closing event (same kind and start)
    # follows with the real end. `check` reports only closed events.
    ongoing: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def is_defect(self) -> bool:
        """Informational notes (a cadence, a recovery) do not fail a check."""
        return self.severity.rank >= Severity.MINOR.rank

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "severity": self.severity.value,
            "confidence": round(self.confidence, 3),
            "details": self.details,
        }
        if self.stream is not None:
            out["stream"] = self.stream
        if self.at is not None:
            out["at"] = self.at
        if self.ongoing:
            out["ongoing"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Event":
        return cls(
            kind=data["kind"],
            start=float(data["start"]),
            end=float(data["end"]),
            severity=Severity(data.get("severity", "major")),
            confidence=float(data.get("confidence", 1.0)),
            details=dict(data.get("details", {})),
            stream=data.get("stream"),
            at=data.get("at"),
            ongoing=bool(data.get("ongoing", False)),
        )


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
