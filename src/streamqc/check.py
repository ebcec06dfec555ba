"""`streamqc check`: run every detector over one input and collect the events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from streamqc.events import Event
from streamqc.fail_policy import FailPolicy
from streamqc.media import StreamNote
from streamqc.pipeline import DetectorChain, DetectorOptions
from streamqc.sources import SourceOptions, open_media


@dataclasses.dataclass(slots=True)
class CheckResult:
    input: str
    duration: float
    media: dict[str, Any]
    events: list[Event]
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. "read error: ..."
    fail_policy: FailPolicy = dataclasses.field(default_factory=lambda: FailPolicy.parse(None))

    @property
    def defects(self) -> list[Event]:
        return [e for e in self.events if e.is_defect]

    @property
    def failing(self) -> list[Event]:
        """The events that fail the check under its `--fail-on` rules."""
        return self.fail_policy.failing(self.events)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "input": self.input,
            "duration": round(self.duration, 3),
            "media": self.media,
            "events": [e.to_dict() for e in self.events],
            "fail_on": self.fail_policy.spec,
            "failed": bool(self.failing),
        }
        if self.notes:
            out["notes"] = self.notes
        return out


def check_input(
    url: str,
    options: DetectorOptions | None = None,
    duration: float | None = None,
    progress: Callable[[float, float | None], None] | None = None,
    source: SourceOptions = SourceOptions(),
) -> CheckResult:
    """Decode `url` and run the detectors. Raises InputError/ConfigError with a one-line reason.

    `duration` stops after that many seconds of media (for live URLs); `progress` is
    called with (media seconds done, expected total or None) about twice a second.
    """
    chain = DetectorChain.from_options(options)  # before opening: a bad option fails fast
    events: list[Event] = []
    notes: list[str] = []
    end = 0.0
    next_report = 0.0
    with open_media(url, source) as reader:
        total = duration or reader.info.duration
        for buffer in reader:
            if isinstance(buffer, StreamNote):
                if buffer.kind == "end":
                    end = max(end, buffer.time)
                    continue
                if buffer.kind == "read_error":
                    notes.append(f"read error at {buffer.time:.2f} s: {buffer.details.get('reason')}")
                if buffer.kind == "event":  # delivery problems a live source saw (hls.*, dash.*)
                    event = buffer.details["event"]
                    if not event.ongoing and (duration is None or event.start < duration):
                        events.append(event)
                    continue
            else:
                end = max(end, buffer.time + buffer.duration)
                if duration is not None and buffer.time >= duration:
                    break
            events.extend(e for e in chain.feed(buffer) if not e.ongoing)
            if progress is not None and end >= next_report:
                progress(end, total)
                next_report = end + 0.5
        media = reader.info.to_dict()
    if duration is not None:
        end = min(end, duration)
    events.extend(e for e in chain.finish(end) if not e.ongoing)
    for event in events:
        event.start = max(0.0, event.start)
        event.end = max(event.start, event.end)
    events.sort(key=lambda e: (e.start, e.kind))
    return CheckResult(input=url, duration=end, media=media, events=events, notes=notes)
