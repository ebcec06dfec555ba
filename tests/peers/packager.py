"""Synthetic programme encoded in real time into FFmpeg's own live packagers (hls, dash)."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable
from fractions import Fraction

from streamqc.synth.audio import programme
from streamqc.synth.content import MovingObjects
from streamqc.synth.encode import AudioCodec, EncoderSink, VideoCodec
from streamqc.synth.defects import Black, Defect, Freeze, Silence
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

# Small pictures keep a real-time encoder at ~20 % of one core.
SMALL_VIDEO = VideoSpec(192, 108, Fraction(25))
AUDIO = AudioSpec(48000, 2)


class LivePackager:
    """Encode `Scenario` ticks paced at media speed into `target` (format `fmt`).

    The first `preroll_s` seconds are written at once, as if the channel had been on
    the air before the test; the rest at the pace of the media. A keyframe starts every
    `segment_s` (the packager cuts there); `long_segment(factor)` withholds keyframes
    so the next segment lasts `factor` segments; `inject(kind, in_s, for_s)` schedules
    a defect into the programme still to be encoded.
    """

    def __init__(self, target: pathlib.Path, fmt: str, format_options: dict[str, str], segment_s: float = 1.2,
                 seed: int = 1, video: VideoSpec = SMALL_VIDEO, preroll_s: float = 3.0,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.segment_frames = max(1, round(segment_s * float(video.fps)))
        self.video = video
        self.preroll_s = preroll_s
        self.on_tick = on_tick
        # The scenario reads its defect list frame by frame: defects added later apply
        # to the frames not encoded yet.
        self._defects: list[Defect] = []
        self.scenario = Scenario(MovingObjects(video, seed), programme(AUDIO, seed, "music"), duration_s=3600.0,
                                 defects=self._defects)
        self._sink = EncoderSink(target, fmt, (video, VideoCodec("h264", 300_000, gop_frames=100_000)),
                                 (AUDIO, AudioCodec("aac", 64_000)), format_options=format_options)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._long: tuple[int, int] = (-1, -1)  # (first frame, frame after) of a long segment
        self._last_key = 0
        self.frames_written = 0
        self.keyframes_written = 0  # the segment being encoded now is number keyframes_written - 1
        self._thread = threading.Thread(target=self._run, name="packager", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def long_segment(self, factor: float = 3.0) -> int:
        """Make the next segment `factor` segments long; returns its number."""
        with self._lock:
            start = self._next_key()
            self._long = (start, start + round(factor * self.segment_frames))
            return self.keyframes_written

    def inject(self, kind: str, in_s: float, for_s: float) -> dict:
        """A defect (video.freeze | video.black | audio.silence) from `in_s` seconds past the
        frame being encoded now, lasting `for_s`; returns its label in programme time."""
        with self._lock:
            start = self.video.time_of(self.frames_written) + in_s
            end = start + for_s
            if kind == "video.freeze":
                defect: Defect = Freeze(self.video.index_at(start), self.video.index_at(end))
            elif kind == "video.black":
                defect = Black(self.video.index_at(start), self.video.index_at(end))
            elif kind == "audio.silence":
                defect = Silence(AUDIO.sample_at(start), AUDIO.sample_at(end))
            else:
                raise ValueError(f"cannot inject {kind}")
            [label] = defect.annotate(self.video, AUDIO).labels
            self._defects.append(defect)
        return {"kind": label.kind, "start": label.start_s, "end": label.end_s}

    @property
    def current_segment(self) -> int:
        return max(0, self.keyframes_written - 1)

    def _next_key(self) -> int:
        return self._last_key + self.segment_frames

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            for tick in self.scenario.ticks():
                delay = t0 + tick.time_s - self.preroll_s - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if self._stop.is_set():
                    break
                with self._lock:
                    first, after = self._long
                    key = tick.index == 0 or (tick.index >= self._next_key() and not first < tick.index < after)
                    if key:
                        self._last_key = tick.index
                        self.keyframes_written += 1
                self._sink.write_audio(tick.audio_start, tick.audio)
                self._sink.write_video(tick.index, tick.picture, keyframe=key)
                self.frames_written = tick.index + 1
                if self.on_tick is not None and tick.index % 5 == 0:
                    self.on_tick()
        finally:
            self._sink.close()
            if self.on_tick is not None:
                self.on_tick()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
