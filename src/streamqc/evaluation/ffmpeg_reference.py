"""FFmpeg's own detectors, run on a case through PyAV's filter graph: the anchor to beat.

One decoding pass feeds small filter graphs:
  video:  buffer -> freezedetect -> blackdetect                   -> buffersink
  video:  buffer -> blockdetect (only for video.corruption)       -> buffersink
  audio:  abuffer -> silencedetect (n=-60dB d=2)                  -> abuffersink
  audio:  abuffer -> silencedetect (n=-90dB d=0.01), for dropouts -> abuffersink
The dropout detector gets its own graph because two silencedetect instances in one
chain would write the same `lavfi.silence_*` metadata keys over each other;
blockdetect gets its own because it needs a fresh state per frame (see
ReferenceOptions.block_fresh_state).

The filters report through frame metadata (`lavfi.freezedetect.freeze_start`,
`lavfi.black_start`, `lavfi.silence_end`, `lavfi.block`, ...), which PyAV 18 exposes
as `frame.metadata` on the frames pulled from the sink; no log scraping is needed.
Where the metadata differs from what the `ffmpeg` CLI prints, we follow the CLI:
- blackdetect tags every black run, however short; its `d` only gates the log line,
  so runs shorter than `black_min_duration_s` are dropped here.
- no filter tags an interval still open when it is torn down (end of input, or a
  format change that rebuilds the graph); the CLI logs some of them from the
  filter's uninit, and we close them there.
A dropout is a gap inside program audio: silencedetect intervals that open the
audio or run to its end (encoder priming, AAC tail padding) are not dropouts.

Clock: reported times are seconds from the first decoded video frame (the first
audio sample when there is no video), the clock of `streamqc check` and of the
corpus labels. Timestamp jumps and 33-bit MPEG-TS wraps are folded out before the
frames enter the filters (the CLI corrects TS discontinuities too), so a
discontinuity case is scored on the same continuous clock as streamqc.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import av
import av.error

from streamqc.errors import InputError
from streamqc.events import Event, Severity

FREEZE = "video.freeze"
BLACK = "video.black"
SILENCE = "audio.silence"
DROPOUT = "audio.dropout"
CORRUPTION = "video.corruption"

# Which FFmpeg filter stands in for which streamqc kind.
FILTER_FOR_KIND: dict[str, str] = {
    FREEZE: "freezedetect",
    BLACK: "blackdetect",
    SILENCE: "silencedetect",
    DROPOUT: "silencedetect",
    CORRUPTION: "blockdetect",
}


@dataclasses.dataclass(frozen=True, slots=True)
class ReferenceOptions:
    """FFmpeg filter settings; the defaults are FFmpeg's own (or the brief's, for dropouts)."""

    freeze_noise_db: float = -60.0
    freeze_min_duration_s: float = 2.0
    black_min_duration_s: float = 2.0
    black_picture_ratio: float = 0.98  # pic_th
    black_pixel_threshold: float = 0.10  # pix_th
    silence_noise_db: float = -60.0
    silence_min_duration_s: float = 2.0
    dropout_noise_db: float = -90.0
    dropout_min_duration_s: float = 0.01
    # A silence longer than this is not a dropout (it is audio.silence, or a pause).
    dropout_max_duration_s: float = 2.0
    # blockdetect costs ~5x decoding and needs a threshold chosen on another seed:
    # None leaves it out (and video.corruption uncovered by the reference).
    block_threshold: float | None = None
    block_merge_gap_s: float = 0.2  # runs of blocky frames closer than this are one event
    block_min_duration_s: float = 0.0
    # FFmpeg 8's blockdetect never clears the row/column where it sums gradients, so
    # its `lavfi.block` on frame n mixes in every frame before it and a damaged
    # stretch shows as a slow ramp and a long tail. True gives the filter a fresh
    # state per frame (its per-picture measure, as documented); False is the filter
    # as it ships (what `ffmpeg -vf blockdetect` prints).
    block_fresh_state: bool = True
    # Fold timestamp jumps out like streamqc's timeline (forward > 1 s, backward > 0.1 s).
    forward_jump_s: float = 1.0
    backward_jump_s: float = 0.1


def reference_kinds(kinds: Iterable[str] | None = None, options: ReferenceOptions = ReferenceOptions()) -> frozenset[str]:
    """The kinds the reference reports under these options, restricted to `kinds`."""
    covered = {FREEZE, BLACK, SILENCE, DROPOUT}
    if options.block_threshold is not None:
        covered.add(CORRUPTION)
    return frozenset(covered if kinds is None else covered & set(kinds))


@dataclasses.dataclass(slots=True)
class ReferenceResult:
    events: list[Event]
    duration: float  # seconds of media on the reference clock
    origin_s: float  # the stream time (after jump folding) that is 0 on the clock
    kinds: frozenset[str]  # what was looked for: a kind absent here was not judged
    block_scores: list[tuple[float, float]]  # (time, lavfi.block) per frame when blockdetect ran
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 3),
            "kinds": sorted(self.kinds),
            "events": [e.to_dict() for e in self.events],
            "elapsed_s": round(self.elapsed_s, 3),
        }


# --- metadata -> intervals -----------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _IntervalTracker:
    """Pairs the start/end metadata one filter attaches to frames into intervals.

    A frame can carry both keys: either a short interval that began and ended inside
    it (nothing was open before), or the end of the open interval and the start of
    the next one. The state before the frame tells which.
    """

    start_key: str
    end_key: str
    open_start: float | None = None
    closed: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    def feed(self, metadata: dict[str, str]) -> None:
        start = _float(metadata.get(self.start_key))
        end = _float(metadata.get(self.end_key))
        if self.open_start is not None:
            if end is not None:
                self.closed.append((self.open_start, end))
                self.open_start = None
                if start is not None:
                    self.open_start = start
            # A start while open (no end) cannot come from one filter instance: keep the first.
        else:
            if start is not None:
                self.open_start = start
            if end is not None and self.open_start is not None and end >= self.open_start:
                self.closed.append((self.open_start, end))
                self.open_start = None

    def close(self, end_of_media: float) -> None:
        if self.open_start is not None:
            self.closed.append((self.open_start, max(end_of_media, self.open_start)))
            self.open_start = None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# --- filter graphs -------------------------------------------------------------------


class _Chain:
    """One linear filter graph, rebuilt when the frame format changes (as the CLI does).

    A rebuild ends the old filters' state: like the `ffmpeg` CLI, whose filters log an
    interval still open when they are torn down, we close open intervals there
    (`trackers`, at the end of the last frame pushed) rather than bridge them.
    """

    def __init__(
        self,
        media: str,
        filters: list[tuple[str, str]],
        on_frame: Callable[[Any], None],
        trackers: list[_IntervalTracker],
        fresh_each_frame: bool = False,
    ) -> None:
        self.media = media
        self.filters = filters
        self.on_frame = on_frame
        self.trackers = trackers
        self.fresh_each_frame = fresh_each_frame
        self.graph: av.filter.Graph | None = None
        self.signature: tuple[Any, ...] | None = None
        self.last_end = 0.0

    def _build(self, frame: Any) -> None:
        graph = av.filter.Graph()
        if self.media == "video":
            src = graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base
            )
        else:
            src = graph.add_abuffer(
                sample_rate=frame.sample_rate,
                format=frame.format.name,
                layout=frame.layout.name,
                channels=frame.layout.nb_channels,
                time_base=frame.time_base,
            )
        nodes = [src] + [graph.add(name, args) for name, args in self.filters]
        nodes.append(graph.add("buffersink" if self.media == "video" else "abuffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        self.graph = graph

    @staticmethod
    def _signature(frame: Any) -> tuple[Any, ...]:
        if isinstance(frame, av.VideoFrame):
            return (frame.width, frame.height, frame.format.name, frame.time_base)
        return (frame.sample_rate, frame.format.name, frame.layout.name, frame.time_base)

    def push(self, frame: Any, end_s: float) -> None:
        """Push one frame; `end_s` is where it ends on the (folded) stream clock."""
        signature = self._signature(frame)
        if signature != self.signature or self.fresh_each_frame:
            self.flush()
            self._build(frame)
            self.signature = signature
        assert self.graph is not None
        self.graph.push(frame)
        self.last_end = max(self.last_end, end_s)
        self._drain()

    def flush(self) -> None:
        if self.graph is None:
            return
        self.graph.push(None)
        self._drain()
        for tracker in self.trackers:
            tracker.close(self.last_end)
        self.graph = None
        self.signature = None

    def _drain(self) -> None:
        assert self.graph is not None
        while True:
            try:
                out = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            self.on_frame(out)


WRAP_33_BIT_S = 2**33 / 90000.0


def _wrap_shift(first: float | None, origin: float) -> float:
    """Whole 33-bit wraps between a track's first time and the clock's origin."""
    if first is None:
        return 0.0
    return WRAP_33_BIT_S * round((first - origin) / WRAP_33_BIT_S)


@dataclasses.dataclass(slots=True)
class _Continuity:
    """Folds timestamp jumps out of one track (see module docstring)."""

    forward_jump_s: float
    backward_jump_s: float
    offset: float = 0.0
    expected: float | None = None  # raw time where the next buffer should start

    def place(self, raw: float | None, duration: float) -> float:
        if raw is None:
            raw = self.expected if self.expected is not None else 0.0
        if self.expected is not None:
            delta = raw - self.expected
            if abs(abs(delta) - WRAP_33_BIT_S) < 10.0:
                # A 33-bit wrap (or unwrap) that reached us is not a jump in the media.
                wrap = WRAP_33_BIT_S if delta > 0 else -WRAP_33_BIT_S
                self.offset -= wrap
                delta -= wrap
            if delta > self.forward_jump_s or delta < -self.backward_jump_s:
                self.offset -= delta
        self.expected = raw + duration
        return raw + self.offset


def _video_frame_duration(frame: av.VideoFrame, fallback: float) -> float:
    if frame.duration and frame.time_base:
        return float(frame.duration * frame.time_base)
    return fallback


def run_reference(
    path: str | Path,
    kinds: Iterable[str] | None = None,
    options: ReferenceOptions = ReferenceOptions(),
) -> ReferenceResult:
    """Run FFmpeg's detectors over a media file and return their findings as streamqc Events.

    Raises InputError when the file cannot be opened or has neither video nor audio.
    """
    t0 = time.perf_counter()
    wanted = reference_kinds(kinds, options)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise InputError(f"cannot open {path}: {err}") from None

    with container:
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        if vstream is None and astream is None:
            raise InputError(f"{path}: no video or audio track")
        want_video = vstream is not None and bool(wanted & {FREEZE, BLACK, CORRUPTION})
        want_audio = astream is not None and bool(wanted & {SILENCE, DROPOUT})

        freeze = _IntervalTracker("lavfi.freezedetect.freeze_start", "lavfi.freezedetect.freeze_end")
        black = _IntervalTracker("lavfi.black_start", "lavfi.black_end")
        silence = _IntervalTracker("lavfi.silence_start", "lavfi.silence_end")
        dropout = _IntervalTracker("lavfi.silence_start", "lavfi.silence_end")
        block_scores: list[tuple[float, float]] = []

        def on_video(frame: av.VideoFrame) -> None:
            md = dict(frame.metadata)
            if not md:
                return
            freeze.feed(md)
            black.feed(md)
            score = _float(md.get("lavfi.block"))
            if score is not None and frame.pts is not None:
                block_scores.append((float(frame.pts * frame.time_base), score))

        chains: list[tuple[str, _Chain]] = []
        if want_video:
            vfilters: list[tuple[str, str]] = []
            if FREEZE in wanted:
                vfilters.append(
                    ("freezedetect", f"n={options.freeze_noise_db}dB:d={options.freeze_min_duration_s}")
                )
            if BLACK in wanted:
                # d=0: the duration gate is applied below, on metadata that ignores it anyway.
                vfilters.append(
                    (
                        "blackdetect",
                        f"d=0:pic_th={options.black_picture_ratio}:pix_th={options.black_pixel_threshold}",
                    )
                )
            if CORRUPTION in wanted and not options.block_fresh_state:
                vfilters.append(("blockdetect", ""))
            if vfilters:
                chains.append(("video", _Chain("video", vfilters, on_video, [freeze, black])))
            if CORRUPTION in wanted and options.block_fresh_state:
                chains.append(("video", _Chain("video", [("blockdetect", "")], on_video, [], fresh_each_frame=True)))
        audio_runs = (
            (SILENCE, options.silence_noise_db, options.silence_min_duration_s, silence),
            (DROPOUT, options.dropout_noise_db, options.dropout_min_duration_s, dropout),
        )
        for kind, noise_db, min_duration_s, runs in audio_runs:
            # Each silencedetect in a graph of its own: two in one chain overwrite each other's metadata.
            if want_audio and kind in wanted:
                chain = _Chain(
                    "audio",
                    [("silencedetect", f"n={noise_db}dB:d={min_duration_s}")],
                    lambda f, runs=runs: runs.feed(dict(f.metadata)),
                    [runs],
                )
                chains.append(("audio", chain))

        # Audio is decoded only when judged (or when it is the clock); video at least up
        # to its first frame, which is the clock's zero.
        streams = [s for s in (vstream, astream if want_audio or vstream is None else None) if s is not None]
        clocks = {s.index: _Continuity(options.forward_jump_s, options.backward_jump_s) for s in streams}
        fps = float(vstream.average_rate) if vstream is not None and vstream.average_rate else 25.0
        first_video: float | None = None
        first_audio: float | None = None
        end_of_video = 0.0
        end_of_audio = 0.0

        for packet in container.demux(*streams):
            if packet.stream is vstream and not want_video and first_video is not None:
                continue
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError):
                continue  # a damaged packet: FFmpeg's CLI logs it and goes on, so do we
            for frame in frames:
                if frame.time_base is None:
                    continue
                is_video = isinstance(frame, av.VideoFrame)
                if is_video:
                    duration = _video_frame_duration(frame, 1.0 / fps)
                else:
                    duration = frame.samples / frame.sample_rate
                raw = None if frame.pts is None else float(frame.pts * frame.time_base)
                t = clocks[packet.stream.index].place(raw, duration)
                frame.pts = round(t / float(frame.time_base))
                if is_video:
                    if first_video is None:
                        first_video = t
                    end_of_video = max(end_of_video, t + duration)
                else:
                    if first_audio is None:
                        first_audio = t
                    end_of_audio = max(end_of_audio, t + duration)
                for media, chain in chains:
                    if media == ("video" if is_video else "audio"):
                        chain.push(frame, t + duration)
        for _media, chain in chains:
            chain.flush()

    origin = first_video if first_video is not None else first_audio
    if origin is None:
        raise InputError(f"{path}: no frame could be decoded")
    # Each track was made continuous on its own; a track whose timestamps started on
    # the other side of the 33-bit MPEG-TS wrap (e.g. AAC priming at pts -1024 written
    # as 2**33 - 1920 when the video starts at 0) is a whole wrap away from the other.
    shift = {
        "video": _wrap_shift(first_video, origin),
        "audio": _wrap_shift(first_audio, origin),
    }
    ends = [end_of_audio - shift["audio"]] if first_audio is not None else []
    if first_video is not None:
        ends.append(end_of_video - shift["video"])

    def make(kind: str, filter_name: str, spans: Iterable[tuple[float, float]]) -> list[Event]:
        offset = origin + shift["video" if kind.startswith("video.") else "audio"]
        return [
            Event(
                kind=kind,
                start=max(0.0, s - offset),
                end=max(0.0, e - offset),
                severity=Severity.MAJOR,
                details={"source": "ffmpeg", "filter": filter_name},
            )
            for s, e in spans
        ]

    events: list[Event] = []
    if FREEZE in wanted:
        events += make(FREEZE, "freezedetect", freeze.closed)
    if BLACK in wanted:
        long_enough = [(s, e) for s, e in black.closed if e - s >= options.black_min_duration_s - 1e-6]
        events += make(BLACK, "blackdetect", long_enough)
    if SILENCE in wanted:
        events += make(SILENCE, "silencedetect", silence.closed)
    if DROPOUT in wanted:
        # A dropout is a gap *inside* program audio: silence that opens the audio or
        # runs to its end (encoder priming, the AAC tail padding) is not one.
        edge_s = 1e-3
        assert first_audio is not None or not dropout.closed
        short = [
            (s, e)
            for s, e in dropout.closed
            if e - s <= options.dropout_max_duration_s
            and s > (first_audio or 0.0) + edge_s
            and e < end_of_audio - edge_s
        ]
        events += make(DROPOUT, "silencedetect", short)
    relative_scores = [(t - origin - shift["video"], score) for t, score in block_scores]
    if CORRUPTION in wanted and options.block_threshold is not None:
        events += block_events(
            relative_scores,
            options.block_threshold,
            frame_duration_s=1.0 / fps,
            merge_gap_s=options.block_merge_gap_s,
            min_duration_s=options.block_min_duration_s,
        )
    events.sort(key=lambda e: (e.start, e.kind))
    return ReferenceResult(
        events=events,
        duration=max(0.0, max(ends) - origin),
        origin_s=origin,
        kinds=wanted,
        block_scores=relative_scores,
        elapsed_s=time.perf_counter() - t0,
    )


def block_events(
    scores: Iterable[tuple[float, float]],
    threshold: float,
    *,
    frame_duration_s: float = 0.04,
    merge_gap_s: float = 0.2,
    min_duration_s: float = 0.0,
) -> list[Event]:
    """video.corruption events from blockdetect's per-frame scores: runs of frames whose
    score exceeds `threshold`, merged across gaps up to `merge_gap_s`.

    Kept separate from the decoding pass so a threshold sweep (choosing blockdetect's
    best threshold on a tuning seed) needs the expensive filter run only once.
    """
    spans: list[list[float]] = []
    peak: list[float] = []
    for t, score in sorted(scores):
        if score <= threshold:
            continue
        if spans and t - spans[-1][1] <= merge_gap_s:
            spans[-1][1] = t + frame_duration_s
            peak[-1] = max(peak[-1], score)
        else:
            spans.append([t, t + frame_duration_s])
            peak.append(score)
    return [
        Event(
            kind=CORRUPTION,
            start=max(0.0, s),
            end=e,
            severity=Severity.MAJOR,
            details={"source": "ffmpeg", "filter": "blockdetect", "peak_block": round(p, 3)},
        )
        for (s, e), p in zip(spans, peak)
        if e - s >= min_duration_s
    ]
