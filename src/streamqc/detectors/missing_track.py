"""stream.missing_track: an expected track is absent, or stops while the others go on.

A channel whose audio PID disappears still plays pictures, so no other detector
notices: silence needs samples to measure. Here a track counts as lost once the
other track has run `lost_after_s` past its last buffer.
"""

from __future__ import annotations

import dataclasses

from streamqc.detectors.base import Detector
from streamqc.errors import ConfigError
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk, StreamNote, VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class MissingTrackOptions:
    # Tracks the input must carry: "video,audio", "video", "audio", or "auto" for the
    # tracks the container declares (a music file need not have pictures). A channel
    # that must always have sound and picture should say "video,audio".
    expect: str = "auto"
    lost_after_s: float = 3.0  # a track silent this long while another track flows is lost


class MissingTrackDetector(Detector):
    name = "missing_track"
    Options = MissingTrackOptions
    accepts = (VideoFrame, AudioChunk, StreamNote)

    def __init__(self, options: MissingTrackOptions | None = None) -> None:
        super().__init__(options)
        self.auto = self.options.expect.strip() == "auto"
        self.expected = set() if self.auto else {t.strip() for t in self.options.expect.split(",") if t.strip()}
        if not self.expected <= {"video", "audio"}:
            raise ConfigError(f"bad value for missing_track.expect: {self.options.expect!r} (use video, audio or video,audio)")
        self._present: set[str] = set()
        self._last_end: dict[str, float] = {}
        self._lost_since: dict[str, float] = {}
        self._now = 0.0

    def feed(self, buffer) -> list[Event]:
        if isinstance(buffer, StreamNote):
            if buffer.kind == "tracks":
                self._present = {t for t in ("video", "audio") if t in buffer.details}
                if self.auto:
                    self.expected = set(self._present)
            return []
        media = "video" if isinstance(buffer, VideoFrame) else "audio"
        events: list[Event] = []
        end = buffer.time + buffer.duration
        if media in self._lost_since:
            if self._now - end > self.options.lost_after_s:
                # A straggler (a decoder emptying its delay line), not the track coming back.
                self._lost_since[media] = max(self._lost_since[media], end)
                return events
            start = self._lost_since.pop(media)
            events.append(self._event(media, start, buffer.time, "lost"))
        self._last_end[media] = max(self._last_end.get(media, end), end)
        self._now = max(self._now, end)
        for other, last in self._last_end.items():
            if other != media and other not in self._lost_since and self._now - last > self.options.lost_after_s:
                self._lost_since[other] = last
                lost = self._event(other, last, self._now, "lost")
                lost.ongoing = True  # announced now; closed when the track returns or the input ends
                events.append(lost)
        return events

    def finish(self, end: float) -> list[Event]:
        events: list[Event] = []
        for media in sorted(self.expected):
            if media not in self._present:
                events.append(self._event(media, 0.0, end, "absent"))
            elif media not in self._last_end:
                events.append(self._event(media, 0.0, end, "never decoded"))
            elif media in self._lost_since:
                events.append(self._event(media, self._lost_since[media], end, "lost"))
            elif end - self._last_end[media] > self.options.lost_after_s:
                events.append(self._event(media, self._last_end[media], end, "lost"))
        return events

    def _event(self, media: str, start: float, end: float, reason: str) -> Event:
        return Event(
            kind="stream.missing_track",
            start=start,
            end=end,
            severity=Severity.MAJOR,
            confidence=1.0,
            details={"track": media, "reason": reason},
        )
