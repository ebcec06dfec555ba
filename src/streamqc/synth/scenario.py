"""A programme with its schedule of defects, produced frame by frame and block by block.

`Scenario` is finite (a corpus case); `Channel` chains scenarios forever for a live demo.
Both only produce pictures, sample blocks and annotations: where they go (a file, a UDP
socket) is the sink's business (encode.py).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from collections.abc import Iterator, Sequence

import numpy as np

from streamqc.synth.audio import AudioContent
from streamqc.synth.content import VideoContent
from streamqc.synth.defects import AudioLoss, Defect, Discontinuity, FormatChange
from streamqc.synth.labels import Annotations
from streamqc.synth.spec import AudioSpec, VideoSpec, blank_picture


@dataclasses.dataclass
class Scenario:
    video: VideoContent | None
    audio: AudioContent | None
    duration_s: float
    defects: Sequence[Defect] = ()

    @property
    def video_spec(self) -> VideoSpec | None:
        return self.video.spec if self.video is not None else None

    @property
    def audio_spec(self) -> AudioSpec | None:
        return self.audio.spec if self.audio is not None else None

    @property
    def frame_count(self) -> int:
        return self.video.spec.frames_in(self.duration_s) if self.video else 0

    @property
    def sample_count(self) -> int:
        return self.audio.spec.sample_at(self.duration_s) if self.audio else 0

    def picture(self, index: int) -> np.ndarray:
        """Output frame `index` with every defect applied; call in increasing order."""
        assert self.video is not None
        if any(d.replaces(index) for d in self.defects):
            pic = blank_picture(self.video.spec)
        else:
            k = index
            for d in self.defects:
                k = d.content_index(index, k)
            pic = self.video.render(k)
        for d in self.defects:
            pic = d.video(index, pic)
        return pic

    def audio_block(self, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of programme audio with every defect applied."""
        assert self.audio is not None
        delay = sum(d.audio_delay() for d in self.defects)
        block = np.array(self.audio.render(start - delay, n), np.float32, copy=True)
        for d in self.defects:
            block = d.audio(start, block)
        return block

    def stream_events(self) -> list[Defect]:
        return [d for d in self.defects if isinstance(d, (Discontinuity, FormatChange, AudioLoss))]

    def annotations(self) -> Annotations:
        ann = Annotations()
        for d in self.defects:
            ann.extend(d.annotate(self.video_spec, self.audio_spec))
        return ann.clipped(self.duration_s)

    def ticks(self) -> Iterator[Tick]:
        """One tick per video frame: the picture and the audio that plays during it."""
        v, a = self.video_spec, self.audio_spec
        if v is None:
            raise ValueError("ticks() paces by video frames; this scenario has none")
        for i in range(self.frame_count):
            pic = self.picture(i)
            samples = None
            if a is not None:
                s0 = a.sample_at(v.time_of(i))
                s1 = a.sample_at(v.time_of(i + 1))
                samples = self.audio_block(s0, s1 - s0)
                yield Tick(i, v.time_of(i), pic, s0, samples)
            else:
                yield Tick(i, v.time_of(i), pic, 0, samples)


@dataclasses.dataclass(slots=True)
class Tick:
    index: int
    time_s: float
    picture: np.ndarray
    audio_start: int
    audio: np.ndarray | None


class Channel:
    """An endless programme for live demos: scenario after scenario, labels as they come.

    `Channel(seed).ticks()` yields (picture, audio) per frame at the channel's format; feed
    them to an `EncoderSink` opened on e.g. ``udp://127.0.0.1:1234`` (format mpegts) and
    pace by `tick.time_s`. `labels` accumulates annotations with times on the channel's
    continuous clock, for a demo that shows what was injected next to what was detected.
    """

    def __init__(self, seed: int, video: VideoSpec | None = None, audio: AudioSpec | None = None,
                 segment_s: float = 30.0) -> None:
        self.seed = seed
        self.video_spec = video or VideoSpec(1280, 720, Fraction(25))
        self.audio_spec = audio or AudioSpec(48000, 2)
        self.segment_s = max(segment_s, 10.0)  # recipes need room for a defect and its gaps
        self.labels = Annotations()

    def segments(self) -> Iterator[Scenario]:
        from streamqc.synth.recipes import live_segment  # recipes import this module

        n = 0
        while True:
            yield live_segment(self.seed, n, self.video_spec, self.audio_spec, self.segment_s)
            n += 1

    def ticks(self) -> Iterator[Tick]:
        v, a = self.video_spec, self.audio_spec
        frame0 = 0
        for seg in self.segments():
            offset_s = v.time_of(frame0)
            seg_sample0 = a.sample_at(offset_s)
            ann = seg.annotations()
            self.labels.extend(ann.shifted("video", offset_s).shifted("audio", offset_s))
            for k in range(seg.frame_count):
                i = frame0 + k
                # Audio on the channel's own sample grid, so blocks join without a gap.
                s0, s1 = a.sample_at(v.time_of(i)), a.sample_at(v.time_of(i + 1))
                samples = seg.audio_block(s0 - seg_sample0, s1 - s0)
                yield Tick(i, v.time_of(i), seg.picture(k), s0, samples)
            frame0 += seg.frame_count
