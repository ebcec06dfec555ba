"""video.decode_error / audio.decode_error: the decoder reported damage.

Damage comes in bursts (one lost packet spoils every frame until the next keyframe),
so reports closer than `merge_gap_s` make one event, with a count and the first
messages FFmpeg logged as evidence.

The count is of packets the decoder rejected and frames it marked corrupt. What FFmpeg
only logged counts when nothing else was reported: a frame-threaded decoder logs a
rejected packet from its worker thread, apart from the rejection, and more or less
often with its thread count, which must not change the figure or the severity.
"""

from __future__ import annotations

import dataclasses
import math

from streamqc.detectors.base import Detector
from streamqc.events import Event, Severity
from streamqc.media import AudioChunk, StreamNote, VideoFrame


@dataclasses.dataclass(frozen=True, slots=True)
class DecodeErrorOptions:
    merge_gap_s: float = 1.0  # reports closer than this belong to one event
    major_after_count: int = 5  # damaged frames/packets in one event before it is major


@dataclasses.dataclass(slots=True)
class _Burst:
    start: float
    end: float
    count: int = 0  # rejected packets and corrupt frames
    logged: int = 0  # reports of log messages only
    corrupt_frames: int = 0
    messages: list[str] = dataclasses.field(default_factory=list)


class DecodeErrorDetector(Detector):
    name = "decode_error"
    Options = DecodeErrorOptions
    accepts = (VideoFrame, AudioChunk, StreamNote)

    def __init__(self, options: DecodeErrorOptions | None = None) -> None:
        super().__init__(options)
        self._bursts: dict[str, _Burst] = {}
        self._now = {"video": 0.0, "audio": 0.0}
        self._step = {"video": 0.04, "audio": 0.02}

    def feed(self, buffer) -> list[Event]:
        if isinstance(buffer, VideoFrame):
            return self._advance("video", buffer.time, buffer.duration)
        if isinstance(buffer, AudioChunk):
            return self._advance("audio", buffer.time, buffer.duration)
        if buffer.kind != "decode_error" or buffer.media not in self._now:
            return []
        media = buffer.media
        time = buffer.time if not math.isnan(buffer.time) else self._now[media]
        events: list[Event] = []
        burst = self._bursts.get(media)
        if burst is not None and time - burst.end > self.options.merge_gap_s:
            events.append(self._event(media, self._bursts.pop(media)))
            burst = None
        if burst is None:
            burst = self._bursts[media] = _Burst(start=time, end=time)
        burst.start = min(burst.start, time)
        burst.end = max(burst.end, time + self._step[media])
        corrupt = bool(buffer.details.get("corrupt_frame"))
        if corrupt or "reason" in buffer.details:
            burst.count += 1
        else:
            burst.logged += 1
        burst.corrupt_frames += int(corrupt)
        for message in buffer.details.get("messages", []) or [buffer.details.get("reason")]:
            if message and len(burst.messages) < 5 and message not in burst.messages:
                burst.messages.append(message)
        return events

    def _advance(self, media: str, time: float, duration: float) -> list[Event]:
        self._now[media] = time
        self._step[media] = duration or self._step[media]
        burst = self._bursts.get(media)
        if burst is not None and time - burst.end > self.options.merge_gap_s:
            return [self._event(media, self._bursts.pop(media))]
        return []

    def finish(self, end: float) -> list[Event]:
        events = [self._event(media, burst) for media, burst in self._bursts.items()]
        self._bursts.clear()
        return events

    def _event(self, media: str, burst: _Burst) -> Event:
        count = burst.count or burst.logged
        major = count >= self.options.major_after_count
        return Event(
            kind=f"{media}.decode_error",
            start=burst.start,
            end=max(burst.end, burst.start),
            severity=Severity.MAJOR if major else Severity.MINOR,
            confidence=1.0,
            details={"count": count, "corrupt_frames": burst.corrupt_frames, "messages": burst.messages},
        )
