"""Open any input PyAV opens and turn it into a stream of buffers on one media clock.

The loop is: demux a packet -> decode it -> wrap each frame as a numpy view -> place
it on the continuous clock (timeline.py) -> yield. Decoder damage (corrupt frames,
rejected packets, errors the decoder logs) becomes StreamNote("decode_error") data;
nothing the input does raises past this module except InputError at open time.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import av
import av.logging
import numpy as np

from streamqc.errors import InputError
from streamqc.media import AudioChunk, AudioFormat, Buffer, StreamNote, VideoFormat, VideoFrame
from streamqc.sources.audio_convert import to_float32
from streamqc.sources.live_options import LiveOptions
from streamqc.sources.timeline import Timeline, TimelineOptions

NETWORK_SCHEMES = ("http://", "https://", "udp://", "rtp://", "rtmp://", "rtmps://", "rtsp://", "tcp://", "srt://")

# Pixel formats whose plane 0 is the luma we can view directly, with their bit depth.
_LUMA_FORMATS = {
    "yuv420p": 8, "yuvj420p": 8, "yuv422p": 8, "yuvj422p": 8, "yuv444p": 8, "yuvj444p": 8,
    "nv12": 8, "nv21": 8, "gray": 8, "yuv411p": 8, "yuv410p": 8, "yuv440p": 8,
    "yuv420p10le": 10, "yuv422p10le": 10, "yuv444p10le": 10, "p010le": 16,
    "yuv420p12le": 12, "yuv422p12le": 12, "gray10le": 10, "gray12le": 12,
}


@dataclasses.dataclass(frozen=True, slots=True)
class SourceOptions:
    threads: int = 0  # decoder threads; 0 lets FFmpeg choose
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    video: bool = True
    audio: bool = True
    # which track to decode, by stream index as ffprobe lists it; None: FFmpeg's best
    video_track: int | None = None
    audio_track: int | None = None
    keep_av_frame: bool = False  # keep PyAV frames on VideoFrame (chroma detectors need them)
    # audio arriving before any video frame waits this long for the clock's origin
    origin_wait_s: float = 3.0
    # decoded audio frames (often 21 ms) are joined into chunks of about this length:
    # detectors pay their per-call cost ~5x less often, for 0.1 s of added latency
    audio_chunk_s: float = 0.1
    timeline: TimelineOptions = TimelineOptions()
    live: LiveOptions = LiveOptions()  # our HLS and DASH readers


@dataclasses.dataclass(slots=True)
class TrackInfo:
    codec: str
    details: dict[str, Any]


@dataclasses.dataclass(slots=True)
class MediaInfo:
    input: str
    format: str
    duration: float | None  # container's estimate; None for live
    video: TrackInfo | None
    audio: TrackInfo | None
    tracks_in_container: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("video", "audio"):
            track = getattr(self, name)
            if track is not None:
                out[name] = {"codec": track.codec, **track.details}
        return out


class _DecoderLog(logging.Handler):
    """Collects the errors FFmpeg's decoders log, per decoder name.

    FFmpeg reports much damage only in its log (e.g. concealed macroblocks), so the
    log is evidence too. Records are attributed by decoder name: in a process that
    reads several inputs with the same codec the messages may mix, and only the
    messages (not the counts of corrupt frames) are affected.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: dict[str, collections.deque[str]] = collections.defaultdict(lambda: collections.deque(maxlen=64))

    def emit(self, record: logging.LogRecord) -> None:
        self.records[record.name.removeprefix("libav.")].append(record.getMessage().strip())

    def drain(self, decoder: str) -> list[str]:
        queue = self.records.get(decoder)
        if not queue:
            return []
        out = list(queue)
        queue.clear()
        return out


_LOG_LOCK = threading.Lock()
_DECODER_LOG: _DecoderLog | None = None


def _decoder_log() -> _DecoderLog:
    global _DECODER_LOG
    with _LOG_LOCK:
        if _DECODER_LOG is None:
            handler = _DecoderLog()
            logger = logging.getLogger("libav")
            logger.addHandler(handler)
            logger.propagate = False  # FFmpeg's chatter must not reach the user's stderr
            av.logging.set_level(av.logging.ERROR)
            _DECODER_LOG = handler
        return _DECODER_LOG


def open_media(url: str, options: SourceOptions = SourceOptions()) -> "MediaReader":
    """Open `url` (a path or a network URL); raise InputError with a one-line reason.

    Live inputs with readers of our own (see README, "Live inputs"): http(s) URLs of
    .m3u8 playlists (HLS) and .mpd manifests (DASH), and `loop:PATH` (a file played
    in a loop in real time). `ffmpeg:URL` opens URL with FFmpeg's own demuxers instead.
    """
    own = _own_reader(url)
    if own is not None:
        return own(url, options)
    url = url.removeprefix("ffmpeg:")
    is_network = url.startswith(NETWORK_SCHEMES) or "://" in url and not url.startswith("file:")
    if not is_network:
        path = url.removeprefix("file:")
        if not os.path.exists(path):
            raise InputError(f"no such file: {path}")
        if os.path.isdir(path):
            raise InputError(f"is a directory, not a media file: {path}")
        if os.path.getsize(path) == 0:
            raise InputError(f"empty file: {path}")
    _decoder_log()
    try:
        container = av.open(
            url,
            metadata_errors="replace",
            timeout=(options.open_timeout_s, options.read_timeout_s),
        )
    except av.error.FileNotFoundError:
        raise InputError(f"no such file or resource: {url}") from None
    except av.error.InvalidDataError:
        if url.split("?", 1)[0].lower().endswith(".mpd"):
            raise InputError(
                f"a local DASH manifest cannot be read: the FFmpeg in PyAV's wheels has no DASH demuxer "
                f"and streamqc's own DASH reader follows http(s) URLs; serve the folder over HTTP: {url}"
            ) from None
        raise InputError(f"not a media stream FFmpeg can read: {url}") from None
    except (av.error.ConnectionRefusedError, av.error.ConnectionResetError):
        raise InputError(f"connection refused: {url}") from None
    except (av.error.HTTPError, av.error.HTTPNotFoundError, av.error.HTTPForbiddenError) as err:
        raise InputError(f"HTTP error opening {url}: {_reason(err)}") from None
    except av.error.ExitError:
        raise InputError(f"timed out opening {url} after {options.open_timeout_s:g} s") from None
    except (av.error.FFmpegError, OSError, UnicodeError) as err:
        raise InputError(f"cannot open {url}: {_reason(err)}") from None
    try:
        return MediaReader(url, container, options)
    except InputError:
        container.close()
        raise


def _own_reader(url: str):
    """The opener of a live reader of our own for `url`, if one handles it."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    if url.startswith(("http://", "https://")):
        if path.endswith(".m3u8"):
            from streamqc.sources.hls import open_hls
            return open_hls
        if path.endswith(".mpd"):
            from streamqc.sources.dash import open_dash
            return open_dash
    if url.startswith("loop:"):
        from streamqc.sources.loop import open_loop
        return open_loop
    return None


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0]


def _end_of(buffer: Buffer, end_time: float) -> float:
    if isinstance(buffer, StreamNote):
        return end_time
    return max(end_time, buffer.time + buffer.duration)


def _codec_name(ctx) -> str:
    """The codec's name (mp3), not the decoder's (mp3float)."""
    return getattr(ctx.codec, "canonical_name", None) or ctx.name


def _frame_time(frame, stream) -> float | None:
    """The frame's timestamp in seconds.

    Frames a decoder gives back while it is drained after an interrupted read (a live
    input's read timeout) carry a pts but no time base, so PyAV's `frame.time` is NaN.
    """
    raw = frame.time
    if raw is not None and raw != raw:
        raw = float(frame.pts * stream.time_base) if frame.pts is not None and stream.time_base else None
    return raw


def _decodable(stream) -> bool:
    ctx = stream.codec_context
    return ctx is not None and ctx.codec is not None and ctx.codec.is_decoder


class MediaReader:
    """Iterate decoded buffers of one input. Use as a context manager."""

    def __init__(self, url: str, container, options: SourceOptions) -> None:
        self.url = url
        self.options = options
        self._container = container
        self._log = _decoder_log()
        self._timeline = Timeline(options.timeline)
        self._origin: float | None = None
        self._waiting_audio: list[AudioChunk] = []
        self._joining: list[AudioChunk] = []
        self._video_started = False
        self._unstarted_errors: list[StreamNote] = []  # rejected packets before any picture
        self._audio_decoded = False  # a sound came out: later rejected audio packets are damage
        self._early_audio_notes: list[StreamNote] = []  # audio damage while the origin is not known yet
        self.leading_frames_skipped = 0
        self.video_stream = self._pick("video") if options.video else None
        self.audio_stream = self._pick("audio") if options.audio else None
        if self.video_stream is None and self.audio_stream is None:
            raise InputError(self._why_no_tracks())
        for stream in (self.video_stream, self.audio_stream):
            if stream is not None:
                stream.codec_context.thread_type = "AUTO" if options.threads != 1 else "SLICE"
                stream.codec_context.thread_count = options.threads
        self.info = self._describe()
        # Fractions are slow in the per-frame path: convert once.
        if self.video_stream is not None:
            rate = self.video_stream.average_rate or self.video_stream.guessed_rate
            self._fps = float(rate) if rate else None
            self._video_time_base = float(self.video_stream.time_base)

    # -- set-up -------------------------------------------------------------
    def _pick(self, kind: str):
        candidates = [s for s in self._container.streams if s.type == kind and _decodable(s)]
        wanted = self.options.video_track if kind == "video" else self.options.audio_track
        if wanted is not None:
            chosen = [s for s in candidates if s.index == wanted]
            if not chosen:
                found = ", ".join(str(s.index) for s in candidates) or "none"
                raise InputError(f"no decodable {kind} track #{wanted} in {self.url} ({kind} tracks: {found})")
            return chosen[0]
        if not candidates:
            return None
        related = self.video_stream if kind == "audio" else None
        try:
            best = self._container.streams.best(kind, related) if related is not None else self._container.streams.best(kind)
        except (av.error.FFmpegError, TypeError):
            best = None
        return best if best in candidates else candidates[0]

    def _why_no_tracks(self) -> str:
        found = [f"{s.type}:{s.codec_context.name if s.codec_context else 'unknown'}" for s in self._container.streams]
        if not found:
            return f"no audio or video track in {self.url}"
        return f"no decodable audio or video track in {self.url} (found {', '.join(found)})"

    def _describe(self) -> MediaInfo:
        video = audio = None
        if self.video_stream is not None:
            ctx = self.video_stream.codec_context
            rate = self.video_stream.average_rate or self.video_stream.guessed_rate
            video = TrackInfo(_codec_name(ctx), {"width": ctx.width, "height": ctx.height, "fps": round(float(rate), 3) if rate else None})
            if len(self._container.streams.video) > 1:
                video.details["track"] = self.video_stream.index
        if self.audio_stream is not None:
            ctx = self.audio_stream.codec_context
            audio = TrackInfo(_codec_name(ctx), {"sample_rate": ctx.sample_rate, "channels": ctx.channels})
            if len(self._container.streams.audio) > 1:
                audio.details["track"] = self.audio_stream.index
        counts = collections.Counter(s.type for s in self._container.streams)
        duration = self._container.duration / 1_000_000 if self._container.duration else None
        return MediaInfo(self.url, self._container.format.name, duration, video, audio, dict(counts))

    @property
    def origin(self) -> float | None:
        """The raw timestamp (s) that became media time 0; None until it is known."""
        return self._origin

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "MediaReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------
    def __iter__(self) -> Iterator[Buffer]:
        streams = [s for s in (self.video_stream, self.audio_stream) if s is not None]
        end_time = 0.0
        yield StreamNote("tracks", 0.0, "container", self.info.to_dict())
        try:
            packets = self._container.demux(streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.EOFError:
                    break
                except av.error.ExitError:  # FFmpeg's interrupt: the read timeout ran out
                    reason = f"no data for {self.options.read_timeout_s:g} s (read timeout)"
                    yield StreamNote("read_error", end_time, "container", {"reason": reason})
                    break
                except (av.error.FFmpegError, OSError) as err:
                    yield StreamNote("read_error", end_time, "container", {"reason": _reason(err)})
                    break
                for buffer in self._decode(packet.stream, packet):
                    end_time = _end_of(buffer, end_time)
                    yield buffer
            for stream in streams:
                for buffer in self._decode(stream, None):  # drain the decoder's delay
                    end_time = _end_of(buffer, end_time)
                    yield buffer
            for chunk in self._release_audio(force=True):
                end_time = _end_of(chunk, end_time)
                yield chunk
            yield from self._out([])  # audio damage held for an origin that came last
            if self.video_stream is not None and not self._video_started and self._unstarted_errors:
                # The decoder never produced a picture: its errors are the whole story.
                origin = self._origin if self._origin is not None else self._unstarted_errors[0].time
                for note in self._unstarted_errors:
                    note.time -= origin
                    end_time = max(end_time, note.time)
                    yield note
        finally:
            self.close()
        yield StreamNote("end", end_time, "container")

    def _decode(self, stream, packet) -> Iterator[Buffer]:
        """Decode one packet (None: flush) of the video or the audio track."""
        if stream is self.video_stream:
            yield from self._video(packet)
        else:
            yield from self._audio(packet)

    def _decode_frames(self, stream, packet, media: str) -> tuple[list, list[StreamNote]]:
        # A packet the demuxer flags corrupt (PES length mismatch, CC gap) is not reported
        # by itself: TS-level checks own that, and what counts here is whether the
        # decoder could not rebuild the picture or sound.
        notes: list[StreamNote] = []
        try:
            frames = stream.codec_context.decode(packet)
        except av.error.EOFError:
            frames = []
        except (av.error.FFmpegError, ValueError) as err:
            frames = []
            notes.append(self._packet_note(stream, packet, media, _reason(err)))
        return frames, notes

    def _packet_note(self, stream, packet, media: str, reason: str) -> StreamNote:
        time = float("nan")
        if packet is not None and packet.pts is not None:
            time = self._timeline.peek(media, float(packet.pts * stream.time_base))
        return StreamNote("decode_error", time, media, {"reason": reason})

    def _video(self, packet) -> Iterator[Buffer]:
        stream = self.video_stream
        frames, notes = self._decode_frames(stream, packet, "video")
        decoder = stream.codec_context.name
        for frame in frames:
            if not self._video_started and frame.is_corrupt and not frame.key_frame:
                # Decoding began mid-GOP: pictures before the first clean one are not damage.
                self.leading_frames_skipped += 1
                continue
            video, jump = self._wrap_video(frame, stream)
            if video is None:
                continue
            if not self._video_started:
                self._video_started = True
                self._origin = video.time if self._origin is None else self._origin
                notes = []  # rejected packets before the first picture: joining mid-stream
                self._unstarted_errors = []
                self._log.drain(decoder)
            if jump is not None and jump.new_report:
                notes.append(StreamNote("discontinuity", video.time, "video", {"jump_s": round(jump.raw_delta_s, 3)}))
            messages = self._log.drain(decoder)
            if video.corrupt or messages:
                notes.append(StreamNote("decode_error", video.time, "video", {"corrupt_frame": video.corrupt, "messages": messages[:5]}))
            if self._joining and video.time > self._joining[-1].time + self.options.audio_chunk_s:
                self._waiting_audio.append(self._joined())  # audio stopped coming: don't sit on it
            yield from self._release_audio()
            yield from self._out(notes)
            notes = []
            yield self._shift(video)
        if not self._video_started:
            self._log.drain(decoder)
            if len(self._unstarted_errors) < 1000:
                self._unstarted_errors.extend(n for n in notes if n.time == n.time)
            return
        messages = self._log.drain(decoder)
        if messages and not notes:
            notes.append(StreamNote("decode_error", float("nan"), "video", {"messages": messages[:5]}))
        yield from self._out(notes)

    def _wrap_video(self, frame, stream):
        fmt_name = frame.format.name
        depth = _LUMA_FORMATS.get(fmt_name)
        if depth is None:
            # Rare formats (RGB, palettes): one conversion is cheaper than a second code path.
            frame = frame.reformat(format="gray")
            depth = 8
        plane = frame.planes[0]
        dtype = np.uint8 if depth == 8 else np.uint16
        itemsize = np.dtype(dtype).itemsize
        luma = np.frombuffer(plane, dtype).reshape(frame.height, plane.line_size // itemsize)[:, : frame.width]
        # The decoder still predicts later pictures from this memory: look, never touch.
        luma.flags.writeable = False
        raw = _frame_time(frame, stream)
        if raw is None:
            return None, None
        fps = self._fps
        if frame.duration:
            duration = frame.duration * self._video_time_base
        else:
            duration = 1.0 / fps if fps else 0.04
        time, jump = self._timeline.place("video", "video", raw, duration)
        video = VideoFrame(
            time=time,
            duration=duration,
            luma=luma,
            bit_depth=depth,
            full_range=fmt_name.startswith("yuvj") or frame.color_range == 2,
            format=VideoFormat(frame.width, frame.height, fmt_name, round(fps, 3) if fps else None),
            key=bool(frame.key_frame),
            corrupt=bool(frame.is_corrupt),
            av_frame=frame if self.options.keep_av_frame else None,
        )
        return video, jump

    def _audio(self, packet) -> Iterator[Buffer]:
        stream = self.audio_stream
        frames, notes = self._decode_frames(stream, packet, "audio")
        messages = self._log.drain(stream.codec_context.name)
        if messages and not notes:
            notes.append(StreamNote("decode_error", float("nan"), "audio", {"messages": messages[:5]}))
        for frame in frames:
            samples = to_float32(frame)
            raw = _frame_time(frame, stream)
            if samples.shape[0] == 0 or raw is None:
                continue
            rate = frame.sample_rate
            time, jump = self._timeline.place("audio", "audio", raw, samples.shape[0] / rate)
            if jump is not None and jump.new_report:
                notes.append(StreamNote("discontinuity", time, "audio", {"jump_s": round(jump.raw_delta_s, 3)}))
            chunk = AudioChunk(
                time=time,
                samples=samples,
                sample_rate=rate,
                format=AudioFormat(rate, samples.shape[1], frame.layout.name),
                corrupt=bool(frame.is_corrupt),
            )
            for joined in self._join_audio(chunk):
                self._waiting_audio.append(joined)
        if packet is None and self._joining:
            self._waiting_audio.append(self._joined())
        yield from self._release_audio()
        if self._origin is not None:
            yield from self._out(notes)
        elif self._audio_decoded and len(self._early_audio_notes) < 1000:
            # The sound before the first picture is analysed too, so its damage counts; it
            # waits for the origin, which comes later the more frame threads the video
            # decoder has (each one delays the first picture by a packet).
            self._early_audio_notes.extend(n for n in notes if n.kind == "decode_error")
        # (rejected packets before any sound are joining mid-stream: a cut frame, not damage)
        self._audio_decoded = self._audio_decoded or bool(frames)

    def _join_audio(self, chunk: AudioChunk) -> Iterator[AudioChunk]:
        """Collect contiguous chunks of one format; give them back joined, about audio_chunk_s long."""
        if self._joining:
            last = self._joining[-1]
            contiguous = abs(chunk.time - (last.time + last.duration)) < 0.002 and chunk.format == last.format
            if not contiguous:
                yield self._joined()
        self._joining.append(chunk)
        if sum(c.samples.shape[0] for c in self._joining) >= self.options.audio_chunk_s * chunk.sample_rate:
            yield self._joined()

    def _joined(self) -> AudioChunk:
        parts, self._joining = self._joining, []
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        samples = np.concatenate([p.samples for p in parts])
        return AudioChunk(first.time, samples, first.sample_rate, first.format, any(p.corrupt for p in parts))

    def _release_audio(self, force: bool = False) -> Iterator[AudioChunk]:
        if not self._waiting_audio:
            return
        if self._origin is None:
            waited = self._waiting_audio[-1].time - self._waiting_audio[0].time
            if not force and self.video_stream is not None and waited < self.options.origin_wait_s:
                return
            self._origin = self._waiting_audio[0].time
        for chunk in self._waiting_audio:
            yield self._shift(chunk)
        self._waiting_audio = []

    def _shift(self, buffer):
        """Continuous time -> media time (0 = the first picture, or first sound without video)."""
        buffer.time -= self._origin
        return buffer

    def _out(self, notes: list[StreamNote]) -> Iterator[StreamNote]:
        if self._early_audio_notes and self._origin is not None:
            notes, self._early_audio_notes = self._early_audio_notes + notes, []
        for note in notes:
            yield self._shift(note)
