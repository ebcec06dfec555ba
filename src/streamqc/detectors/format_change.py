"""stream.format_change: resolution, pixel format, sample rate or channel layout changed.

Downstream players and encoders often fail on such a change, and a channel that
suddenly drops to a lower resolution is a defect operators want to hear about.
"""

from __future__ import annotations

import dataclasses

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk, VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class FormatChangeOptions:
    video: bool = True
    audio: bool = True


class FormatChangeDetector(Detector):
    name = "format_change"
    Options = FormatChangeOptions
    accepts = (VideoFrame, AudioChunk)

    def __init__(self, options: FormatChangeOptions | None = None) -> None:
        super().__init__(options)
        self._last: dict[str, object] = {}

    def feed(self, buffer) -> list[Event]:
        media = "video" if isinstance(buffer, VideoFrame) else "audio"
        if not getattr(self.options, media):
            return []
        current = _signature(buffer)
        previous = self._last.get(media)
        self._last[media] = current
        if previous is None or previous == current:
            return []
        return [
            Event(
                kind="stream.format_change",
                start=buffer.time,
                end=buffer.time,
                severity=Severity.MINOR,
                confidence=1.0,
                details={"track": media, "from": previous, "to": current},
            )
        ]


def _signature(buffer) -> str:
    if isinstance(buffer, VideoFrame):
        f = buffer.format
        return f"{f.width}x{f.height} {f.pix_fmt}"
    return buffer.format.describe()
