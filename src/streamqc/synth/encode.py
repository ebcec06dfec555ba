"""Encoder sink: pictures and sample blocks in, a muxed file or live output out (PyAV).

Timestamps are exactly the programme clock: video frame i has pts i (time base 1/fps),
audio sample n has pts n (time base 1/sample_rate). Whatever the encoder and muxer add
on top (AAC priming, B-frame reorder delay, the TS start offset) applies to both tracks
alike, and verify.py measures what actually came out.

Stream-level defects are done here, where the packets are: a format change switches to
a second encoder on the same stream; an audio loss stops muxing audio packets.
Timestamp jumps are rewritten afterwards in the TS bytes (tspackets.py), because a
muxer refuses to write timestamps that go backwards.
"""

from __future__ import annotations

import dataclasses
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import av
import numpy as np

from streamqc.synth.defects import AudioLoss, Defect, FormatChange
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

ENCODERS = {"h264": "libx264", "hevc": "libx265", "mpeg2video": "mpeg2video",
            "aac": "aac", "mp2": "mp2", "ac3": "ac3"}
CONTAINERS = {"ts": "mpegts", "mp4": "mp4", "mkv": "matroska"}

# x264/x265 print per-file statistics on stderr; the corpus build prints its own progress.
logging.getLogger("libav").setLevel(logging.ERROR)
av.logging.set_level(av.logging.ERROR)


@dataclasses.dataclass(frozen=True, slots=True)
class VideoCodec:
    name: str  # h264 | hevc | mpeg2video
    bitrate_bps: int = 3_000_000
    gop_frames: int = 50
    bframes: int = 0
    preset: str = "ultrafast"
    threads: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class AudioCodec:
    name: str  # aac | mp2 | ac3
    bitrate_bps: int = 192_000


def _configure_video(ctx: Any, spec: VideoSpec, codec: VideoCodec, width: int, height: int) -> None:
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1) / spec.fps
    ctx.framerate = spec.fps
    ctx.bit_rate = codec.bitrate_bps
    ctx.gop_size = codec.gop_frames
    ctx.thread_count = codec.threads
    if codec.name == "h264":
        ctx.options = {"preset": codec.preset,
                       "x264-params": f"bframes={codec.bframes}:keyint={codec.gop_frames}:scenecut=0",
                       "tune": "zerolatency" if codec.bframes == 0 else "film"}
    elif codec.name == "hevc":
        ctx.options = {"preset": codec.preset, "x265-params":
                       f"log-level=error:bframes={codec.bframes}:keyint={codec.gop_frames}:pools={codec.threads}:frame-threads=1:scenecut=0"}
    elif codec.name == "mpeg2video":
        ctx.max_b_frames = codec.bframes
        # A VBV buffer keeps the muxer from warning about rate control on TS.
        ctx.options = {"bufsize": str(codec.bitrate_bps), "maxrate": str(int(codec.bitrate_bps * 1.5))}


class EncoderSink:
    """Encode a scenario's ticks into `target` (a file path or a URL such as udp://...)."""

    def __init__(self, target: str | Path, container: str,
                 video: tuple[VideoSpec, VideoCodec] | None,
                 audio: tuple[AudioSpec, AudioCodec] | None,
                 events: Sequence[Defect] = (), ts_offset_s: float = 1.4,
                 format_options: dict[str, str] | None = None) -> None:
        fmt = CONTAINERS.get(container, container)
        # bitexact: no random Matroska segment UID or version strings, so a seed gives
        # byte-identical files.
        options = {"fflags": "+bitexact"}
        if fmt == "mpegts":
            options["output_ts_offset"] = f"{ts_offset_s:.6f}"
        options.update(format_options or {})  # e.g. a live packager's (hls, dash) settings
        self.out = av.open(str(target), "w", format=fmt, options=options)
        self.vstream = self.astream = None
        self._events = list(events)
        self._format_changes = sorted((e for e in events if isinstance(e, FormatChange)), key=lambda e: e.frame)
        loss = [e for e in events if isinstance(e, AudioLoss)]
        self._audio_stop = loss[0].from_sample if loss else None
        if video is not None:
            self.vspec, self.vcodec = video
            self.vstream = self.out.add_stream(ENCODERS[self.vcodec.name], rate=self.vspec.fps)
            _configure_video(self.vstream.codec_context, self.vspec, self.vcodec, self.vspec.width, self.vspec.height)
            self._venc: Any = self.vstream.codec_context
            self._vsize = (self.vspec.width, self.vspec.height)
            self._vtb = Fraction(1) / self.vspec.fps
        if audio is not None:
            self.aspec, self.acodec = audio
            self.astream = self.out.add_stream(ENCODERS[self.acodec.name], rate=self.aspec.sample_rate)
            ctx = self.astream.codec_context
            ctx.layout = "stereo" if self.aspec.channels == 2 else "mono"
            ctx.bit_rate = self.acodec.bitrate_bps
            ctx.format = ctx.codec.audio_formats[0].name if self.acodec.name != "aac" else "fltp"
            self._afmt = av.AudioFormat(ctx.format.name)
            self._pending = np.zeros((0, self.aspec.channels), np.float32)
            self._pending_start = 0
            self._frame_size = 0
            self._atb = Fraction(1, self.aspec.sample_rate)

    # --- video -----------------------------------------------------------------------

    def write_video(self, index: int, pic: np.ndarray, keyframe: bool = False) -> None:
        for fc in self._format_changes:
            if fc.frame == index:
                self._switch_video(fc.width, fc.height)
        h, w = pic.shape[0] * 2 // 3, pic.shape[1]
        if (w, h) != self._vsize:
            pic = _resize(pic, *self._vsize)
        frame = av.VideoFrame.from_ndarray(pic, format="yuv420p")
        frame.pts = index
        frame.time_base = self._vtb
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        self._mux_video(self._venc.encode(frame))

    def _switch_video(self, width: int, height: int) -> None:
        # Flush the old encoder first: its packets all precede the new encoder's.
        self._mux_video(self._venc.encode(None))
        ctx = av.CodecContext.create(ENCODERS[self.vcodec.name], "w")
        _configure_video(ctx, self.vspec, dataclasses.replace(self.vcodec, bframes=0), width, height)
        ctx.open()
        self._venc = ctx
        self._vsize = (width, height)

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for p in packets:
            p.stream = self.vstream
            self.out.mux(p)

    # --- audio -----------------------------------------------------------------------

    def write_audio(self, start: int, block: np.ndarray) -> None:
        """Queue samples [start, start + len(block)); encoded in the codec's frame size."""
        if len(self._pending) == 0:
            self._pending_start = start
        elif self._pending_start + len(self._pending) != start:
            raise ValueError(f"audio block at {start} does not follow {self._pending_start + len(self._pending)}")
        self._pending = np.concatenate([self._pending, block.astype(np.float32)])
        self._drain_audio(final=False)

    def _drain_audio(self, final: bool) -> None:
        ctx = self.astream.codec_context
        if not self._frame_size:
            if not ctx.is_open:
                ctx.open()
            self._frame_size = ctx.frame_size or 1152
        fs = self._frame_size
        while len(self._pending) >= fs or (final and len(self._pending)):
            chunk = self._pending[:fs]
            if len(chunk) < fs:  # encoders with a fixed frame size need a full last frame
                chunk = np.concatenate([chunk, np.zeros((fs - len(chunk), chunk.shape[1]), np.float32)])
            self._encode_audio(self._pending_start, chunk)
            self._pending = self._pending[fs:]
            self._pending_start += fs

    def _encode_audio(self, start: int, chunk: np.ndarray) -> None:
        if self._afmt.is_planar:
            arr = np.ascontiguousarray(chunk.T)
        else:
            arr = chunk.reshape(1, -1)
        if self._afmt.name.startswith("s16"):
            arr = np.clip(np.round(arr * 32767), -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(arr, format=self._afmt.name, layout=self.astream.codec_context.layout.name)
        frame.sample_rate = self.aspec.sample_rate
        frame.pts = start
        frame.time_base = self._atb
        self._mux_audio(self.astream.encode(frame))

    def _mux_audio(self, packets: list[av.Packet]) -> None:
        for p in packets:
            if self._audio_stop is not None and p.pts is not None:
                # A packet that would start at or after the loss point is never sent.
                if p.pts * p.time_base * self.aspec.sample_rate >= self._audio_stop:
                    continue
            self.out.mux(p)

    # --- whole scenarios -------------------------------------------------------------

    def close(self) -> None:
        if self.astream is not None:
            self._drain_audio(final=True)
            self._mux_audio(self.astream.encode(None))
        if self.vstream is not None:
            self._mux_video(self._venc.encode(None))
        self.out.close()


def _resize(pic: np.ndarray, width: int, height: int) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(pic, format="yuv420p").reformat(width=width, height=height)
    return frame.to_ndarray()


def encode_scenario(scenario: Scenario, target: str | Path, container: str,
                    video_codec: VideoCodec | None, audio_codec: AudioCodec | None,
                    ts_offset_s: float = 1.4, keyframes: Sequence[int] = ()) -> np.ndarray | None:
    """Render every frame and sample of `scenario` into `target`, interleaved by time.

    Returns the programme audio as encoded (float32 (n, channels)), for verify.py.
    """
    vspec, aspec = scenario.video_spec, scenario.audio_spec
    sink = EncoderSink(
        target, container,
        (vspec, video_codec) if vspec is not None and video_codec is not None else None,
        (aspec, audio_codec) if aspec is not None and audio_codec is not None else None,
        scenario.stream_events(), ts_offset_s,
    )
    key = set(keyframes)
    blocks: list[np.ndarray] = []
    try:
        if vspec is not None and video_codec is not None:
            for tick in scenario.ticks():
                if tick.audio is not None and sink.astream is not None:
                    sink.write_audio(tick.audio_start, tick.audio)
                    blocks.append(tick.audio)
                sink.write_video(tick.index, tick.picture, keyframe=tick.index in key)
        elif aspec is not None:
            step = 4800
            for s in range(0, scenario.sample_count, step):
                block = scenario.audio_block(s, min(step, scenario.sample_count - s))
                sink.write_audio(s, block)
                blocks.append(block)
    finally:
        sink.close()
    return np.concatenate(blocks) if blocks else None
