"""stream.discontinuity: the timestamps jumped (a splice, a restarted encoder, lost data).

The conversion layer folds the jump out of the media clock and tells us by a note;
this detector turns the note into an event at the point where the jump happened.
"""

from __future__ import annotations

import dataclasses

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import StreamNote


@dataclasses.dataclass(frozen=True, slots=True)
class DiscontinuityOptions:
    min_jump_s: float = 0.0  # ignore jumps smaller than this (the clock already ignores < 1 s forward)


class DiscontinuityDetector(Detector):
    name = "discontinuity"
    Options = DiscontinuityOptions
    accepts = (StreamNote,)

    def feed(self, note: StreamNote) -> list[Event]:
        if note.kind != "discontinuity":
            return []
        jump = float(note.details.get("jump_s", 0.0))
        if abs(jump) < self.options.min_jump_s:
            return []
        return [
            Event(
                kind="stream.discontinuity",
                start=note.time,
                end=note.time,
                severity=Severity.MINOR,
                confidence=1.0,
                details={"jump_s": jump, "track": note.media},
            )
        ]
