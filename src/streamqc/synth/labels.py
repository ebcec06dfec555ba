"""What a case says about itself: labels, hard negatives and ignore zones (docs/corpus-format.md)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(slots=True)
class Label:
    """A defect present in the decoded output, in media seconds from the first video frame."""

    kind: str
    start_s: float
    end_s: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    # "video" or "audio": which clock the interval was computed on, so the audio ones
    # can be moved by the offset measured on the encoded file.
    clock: str = "video"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": round(self.start_s, 4), "end": round(self.end_s, 4),
                "details": self.details}


@dataclasses.dataclass(slots=True)
class HardNegative:
    what: str
    start_s: float
    end_s: float
    clock: str = "video"

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "start": round(self.start_s, 4), "end": round(self.end_s, 4)}


@dataclasses.dataclass(slots=True)
class Ignore:
    kind: str
    start_s: float
    end_s: float
    clock: str = "video"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": round(self.start_s, 4), "end": round(self.end_s, 4)}


@dataclasses.dataclass(slots=True)
class Annotations:
    labels: list[Label] = dataclasses.field(default_factory=list)
    hard_negatives: list[HardNegative] = dataclasses.field(default_factory=list)
    ignore: list[Ignore] = dataclasses.field(default_factory=list)

    def extend(self, other: Annotations) -> None:
        self.labels += other.labels
        self.hard_negatives += other.hard_negatives
        self.ignore += other.ignore

    def shifted(self, clock: str, offset_s: float) -> Annotations:
        """Move every interval on `clock` by offset_s (an encoder delay measured afterwards)."""

        def move(items: list[Any]) -> list[Any]:
            out = []
            for it in items:
                if it.clock == clock and offset_s:
                    it = dataclasses.replace(it, start_s=it.start_s + offset_s, end_s=it.end_s + offset_s)
                out.append(it)
            return out

        return Annotations(move(self.labels), move(self.hard_negatives), move(self.ignore))

    def clipped(self, end_s: float) -> Annotations:
        """Drop what starts after the end of the media and trim what runs past it."""

        def clip(items: list[Any]) -> list[Any]:
            out = []
            for it in items:
                if it.start_s > end_s + 1e-6:
                    continue
                if it.end_s > end_s:
                    it = dataclasses.replace(it, end_s=end_s)
                out.append(it)
            return out

        return Annotations(clip(self.labels), clip(self.hard_negatives), clip(self.ignore))

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        key = lambda d: (d["start"], d.get("kind", d.get("what", "")))  # noqa: E731
        return {
            "labels": sorted((x.to_json() for x in self.labels), key=key),
            "hard_negatives": sorted((x.to_json() for x in self.hard_negatives), key=key),
            "ignore": sorted((x.to_json() for x in self.ignore), key=key),
        }
