"""Match detector events to corpus labels and count hits, misses and false alarms.

The rules are the scoring contract in docs/corpus-format.md:
- an event matches a label of the same kind when their intervals overlap, with
  `slack_s` (0.1 s) of tolerance at either end;
- a point label (start == end, e.g. `stream.discontinuity`) matches an event whose
  interval comes within `point_tolerance_s` (0.5 s) of the point;
- a label and an event that both name a `channel` in their details (per-channel
  kinds: `audio.clipping`) match only when it is the same channel;
- each label and each event is matched at most once, greedily, largest overlap first;
- an unmatched event that overlaps an `ignore` interval of its kind counts as nothing.

Everything here is pure: no media, no I/O beyond reading a label file, so the rules
can be tested on hand-written events.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streamqc.events import Event, Severity

SLACK_S = 0.1
POINT_TOLERANCE_S = 0.5
ANY_KIND = "*"


@dataclasses.dataclass(frozen=True, slots=True)
class Label:
    """A defect present in a case (ground truth)."""

    kind: str
    start: float
    end: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)

    @property
    def is_point(self) -> bool:
        return self.end <= self.start

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Label":
        start = float(data["start"])
        return cls(
            kind=str(data["kind"]),
            start=start,
            end=float(data.get("end", start)),
            details=dict(data.get("details") or {}),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class IgnoreZone:
    """Where events of `kind` count neither as hits nor as false alarms (`*` = every kind)."""

    kind: str
    start: float
    end: float

    def covers(self, event: Event, slack_s: float = SLACK_S) -> bool:
        if self.kind not in (ANY_KIND, event.kind):
            return False
        return _gap(event.start, event.end, self.start, self.end) <= slack_s


@dataclasses.dataclass(slots=True)
class CaseLabels:
    """One `<id>.json` of a labelled corpus."""

    id: str
    file: str
    labels: list[Label]
    ignore: list[IgnoreZone] = dataclasses.field(default_factory=list)
    hard_negatives: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    duration: float | None = None
    seed: int | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    content: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaseLabels":
        return cls(
            id=str(data["id"]),
            file=str(data["file"]),
            labels=[Label.from_dict(d) for d in data.get("labels", [])],
            ignore=[
                IgnoreZone(str(d.get("kind", ANY_KIND)), float(d["start"]), float(d["end"]))
                for d in data.get("ignore", [])
            ],
            hard_negatives=list(data.get("hard_negatives", [])),
            options=dict(data.get("options") or {}),
            duration=None if data.get("duration") is None else float(data["duration"]),
            seed=data.get("seed"),
            video=data.get("video"),
            audio=data.get("audio"),
            content=str(data.get("content", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> "CaseLabels":
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    label: Label
    event: Event
    overlap_s: float  # negative: the gap bridged by the slack / point tolerance

    @property
    def onset_error_s(self) -> float:
        return abs(self.event.start - self.label.start)

    @property
    def offset_error_ms(self) -> float | None:
        """|measured - true| A/V offset, for labels that carry one (av.sync), else None."""
        truth, measured = self.label.details.get("offset_ms"), self.event.details.get("offset_ms")
        if not isinstance(truth, (int, float)) or not isinstance(measured, (int, float)):
            return None
        return abs(float(measured) - float(truth))


@dataclasses.dataclass(slots=True)
class CaseScore:
    """The outcome of matching one system's events against one case's labels."""

    case_id: str
    matches: list[Match]
    misses: list[Label]
    false_alarms: list[Event]
    ignored: list[Event]


def _gap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Distance between two intervals: <= 0 when they overlap (minus the overlap length)."""
    return max(a_start, b_start) - min(a_end, b_end)


def _candidate_overlap(label: Label, event: Event, slack_s: float, point_tolerance_s: float) -> float | None:
    """The overlap that ranks this pair in the greedy match, or None when they cannot match."""
    label_channel, event_channel = label.details.get("channel"), event.details.get("channel")
    if label_channel is not None and event_channel is not None and label_channel != event_channel:
        return None
    gap = _gap(label.start, label.end, event.start, event.end)
    tolerance = point_tolerance_s if label.is_point else slack_s
    if gap > tolerance + 1e-9:
        return None
    return -gap


def match_case(
    events: Iterable[Event],
    labels: Iterable[Label],
    ignore: Iterable[IgnoreZone] = (),
    *,
    case_id: str = "",
    kinds: Iterable[str] | None = None,
    slack_s: float = SLACK_S,
    point_tolerance_s: float = POINT_TOLERANCE_S,
    include_info: bool = False,
) -> CaseScore:
    """Match one system's events to one case's labels (see module docstring for the rules).

    `kinds` restricts scoring to those kinds (events and labels of other kinds are
    dropped, not counted). Informational events (severity `info`) are notes, not
    defect claims, so they are dropped unless `include_info`.
    """
    wanted = None if kinds is None else set(kinds)
    evs = [
        e
        for e in events
        if (wanted is None or e.kind in wanted) and (include_info or e.severity != Severity.INFO)
    ]
    labs = [lab for lab in labels if wanted is None or lab.kind in wanted]
    zones = list(ignore)

    pairs: list[tuple[float, float, int, int]] = []
    for li, lab in enumerate(labs):
        for ei, ev in enumerate(evs):
            if ev.kind != lab.kind:
                continue
            overlap = _candidate_overlap(lab, ev, slack_s, point_tolerance_s)
            if overlap is not None:
                # Largest overlap first; on a tie the closer onset, then input order,
                # so the result does not depend on dict/set ordering.
                pairs.append((-overlap, abs(ev.start - lab.start), li, ei))
    pairs.sort()

    label_used = [False] * len(labs)
    event_used = [False] * len(evs)
    matches: list[Match] = []
    for neg_overlap, _onset, li, ei in pairs:
        if label_used[li] or event_used[ei]:
            continue
        label_used[li] = event_used[ei] = True
        matches.append(Match(label=labs[li], event=evs[ei], overlap_s=-neg_overlap))

    misses = [lab for li, lab in enumerate(labs) if not label_used[li]]
    false_alarms: list[Event] = []
    ignored: list[Event] = []
    for ei, ev in enumerate(evs):
        if event_used[ei]:
            continue
        if any(zone.covers(ev, slack_s) for zone in zones):
            ignored.append(ev)
        else:
            false_alarms.append(ev)
    matches.sort(key=lambda m: (m.label.start, m.label.kind))
    return CaseScore(case_id=case_id, matches=matches, misses=misses, false_alarms=false_alarms, ignored=ignored)


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclasses.dataclass(slots=True)
class KindScore:
    """Counts and rates for one kind, summed over cases."""

    kind: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0
    onset_errors_s: list[float] = dataclasses.field(default_factory=list)
    offset_errors_ms: list[float] = dataclasses.field(default_factory=list)  # av.sync: |offset_ms error| per hit
    cases: int = 0  # cases that carry at least one label of this kind
    # |event area - label area| over hits whose label carries `details.area` (fraction of
    # the picture, video.corruption); `area_missing` counts such hits whose event has none
    area_errors: list[float] = dataclasses.field(default_factory=list)
    area_missing: int = 0

    @property
    def precision(self) -> float | None:
        """None when the system raised no event of this kind (nothing to be precise about)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """None when the corpus has no label of this kind."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        # 2TP / (2TP + FP + FN): defined (0) when one of P/R is undefined but the
        # other side has errors; undefined only when there is nothing at all.
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else None

    @property
    def onset_median_s(self) -> float | None:
        return statistics.median(self.onset_errors_s) if self.onset_errors_s else None

    @property
    def onset_p90_s(self) -> float | None:
        return _quantile(self.onset_errors_s, 0.9)

    @property
    def area_median_error(self) -> float | None:
        return statistics.median(self.area_errors) if self.area_errors else None

    @property
    def offset_median_ms(self) -> float | None:
        return statistics.median(self.offset_errors_ms) if self.offset_errors_ms else None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "kind": self.kind,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "ignored": self.ignored,
            "cases": self.cases,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "f1": r(self.f1),
            "onset_median_s": r(self.onset_median_s),
            "onset_p90_s": r(self.onset_p90_s),
            **({"area_median_abs_error": r(self.area_median_error), "area_hits": len(self.area_errors),
                "area_missing": self.area_missing} if self.area_errors or self.area_missing else {}),
            "offset_median_ms": r(self.offset_median_ms),
        }


def aggregate(
    scores: Iterable[CaseScore],
    kinds: Iterable[str] | None = None,
    case_labels: Iterable[CaseLabels] | None = None,
) -> dict[str, KindScore]:
    """Sum case scores per kind. `kinds` adds rows even when nothing of that kind occurred;
    `case_labels` fills the per-kind case counts."""
    table: dict[str, KindScore] = {k: KindScore(k) for k in (kinds or ())}

    def row(kind: str) -> KindScore:
        return table.setdefault(kind, KindScore(kind))

    for score in scores:
        for m in score.matches:
            s = row(m.label.kind)
            s.tp += 1
            s.onset_errors_s.append(m.onset_error_s)
            labelled = m.label.details.get("area")
            if isinstance(labelled, (int, float)):
                reported = m.event.details.get("area")
                if isinstance(reported, (int, float)):
                    s.area_errors.append(abs(float(reported) - float(labelled)))
                else:
                    s.area_missing += 1
            if m.offset_error_ms is not None:
                s.offset_errors_ms.append(m.offset_error_ms)
        for lab in score.misses:
            row(lab.kind).fn += 1
        for ev in score.false_alarms:
            row(ev.kind).fp += 1
        for ev in score.ignored:
            row(ev.kind).ignored += 1
    for case in case_labels or ():
        for kind in {lab.kind for lab in case.labels}:
            if kind in table:
                table[kind].cases += 1
    return dict(sorted(table.items()))


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A miss or a false alarm, with enough to go and look at it."""

    system: str  # "streamqc" | "ffmpeg"
    case_id: str
    what: str  # "miss" | "false_alarm"
    kind: str
    start: float
    end: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "case": self.case_id,
            "what": self.what,
            "kind": self.kind,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "details": self.details,
        }


def findings(score: CaseScore, system: str) -> list[Finding]:
    """Misses and false alarms of one case score, in time order."""
    out = [
        Finding(system, score.case_id, "miss", lab.kind, lab.start, lab.end, dict(lab.details))
        for lab in score.misses
    ]
    out += [
        Finding(system, score.case_id, "false_alarm", ev.kind, ev.start, ev.end, dict(ev.details))
        for ev in score.false_alarms
    ]
    out.sort(key=lambda f: (f.start, f.kind, f.what))
    return out
