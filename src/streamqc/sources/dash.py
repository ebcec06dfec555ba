"""DASH, read by a client of our own (PyAV's FFmpeg has no DASH demuxer).

The manifest is polled with httpx (mpd.py says which segments exist); for the chosen
video and audio representations the init segment and then each media segment are
fetched and written, in order, into one pipe per representation; each pipe is one
PyAV (fragmented MP4) container, decoded on its own thread, and LiveReader puts the
two on one clock using the timestamps the packager gave them. Delivery problems come
out as `dash.*` events:

- dash.stale_manifest: no new segment for `stale_target_durations` x the segment
  duration (announced ongoing, closed when segments come again)
- dash.segment_error: a segment that could not be fetched after retries
- dash.segments_skipped: segments left the manifest before we could fetch them
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import httpx

from streamqc.errors import InputError
from streamqc.events import Event
from streamqc.media import StreamNote
from streamqc.sources.hls import fetch_text, get_bytes, http_client, open_live_container, reload_text
from streamqc.sources.live import BytePipe, Fetcher, LiveReader, delivery_event
from streamqc.sources.mpd import Manifest, ManifestError, Representation, SegmentRef, parse_manifest
from streamqc.sources.reader import MediaInfo, MediaReader, SourceOptions

_EPSILON_S = 1e-3


@dataclasses.dataclass(slots=True)
class _Track:
    kind: str
    representation: Representation
    pipe: BytePipe
    next_start_s: float | None = None  # start of the next segment we want
    init_fed: str | None = None
    done: bool = False


class DashFetcher(Fetcher):
    def __init__(self, client: httpx.Client, url: str, manifest: Manifest, options: SourceOptions) -> None:
        super().__init__()
        self.client = client
        self.url = url
        self.live = options.live
        self.timeline_jump_s = options.timeline.forward_jump_s
        self.manifest = manifest
        self.tracks: dict[str, _Track] = {}
        for kind, wanted in (("video", options.video), ("audio", options.audio)):
            rep = manifest.choose(kind, self.live.variant) if wanted else None
            if rep is not None:
                self.tracks[kind] = _Track(kind, rep, BytePipe(self.live.pipe_limit_bytes))
        self.origin_s: float | None = None  # presentation time of media time 0
        self.last_error = ""
        self._last_new = time.monotonic()
        self._stale: Event | None = None
        self.segment_s = manifest.max_segment_duration_s or self._guess_segment_s(manifest)

    @staticmethod
    def _guess_segment_s(manifest: Manifest) -> float:
        durations = [s.duration_s for reps in manifest.representations.values() for r in reps for s in r.segments[-3:]]
        return max(durations) if durations else 2.0

    def close_pipes(self, discard: bool = False) -> None:
        for track in self.tracks.values():
            track.pipe.close(discard)

    def shutdown(self) -> None:
        super().shutdown()
        self.client.close()

    def position(self, start_s: float) -> float:
        return start_s - (self.origin_s or 0.0)

    def run(self) -> None:
        manifest: Manifest | None = self.manifest
        while not self.stop.is_set():
            changed = False
            if manifest is not None:
                self._update_representations(manifest)
                changed = self._follow()
                if not manifest.dynamic and all(t.done for t in self.tracks.values()):
                    return
            if self._check_stale():
                return
            period = (manifest.minimum_update_period_s if manifest is not None else None) or self.segment_s
            wait = min(max(period if changed else period / 2, 0.1), 5.0)
            if self.stop.wait(wait):
                return
            manifest = self._reload()

    def _reload(self) -> Manifest | None:
        manifest, error = reload_text(self.client, self.url, parse_manifest, "manifest", (ManifestError,))
        self.last_error = error or self.last_error
        return manifest

    def _update_representations(self, manifest: Manifest) -> None:
        for track in self.tracks.values():
            same = [r for r in manifest.representations.get(track.kind, []) if r.id == track.representation.id]
            if same:
                track.representation = same[0]
        self.manifest = manifest

    def _follow(self) -> bool:
        fed_any = False
        reference = self.tracks.get("video") or next(iter(self.tracks.values()))
        if reference.next_start_s is None:
            self._choose_start(reference)
        for track in self.tracks.values():
            if track.next_start_s is None:
                self._choose_start(track, align_to=self.origin_s)
            fed_any |= self._feed_new(track)
        return fed_any

    def _choose_start(self, track: _Track, align_to: float | None = None) -> None:
        segments = track.representation.segments
        if not segments:
            return
        if align_to is not None:
            starting = [s for s in segments if s.start_s <= align_to + _EPSILON_S]
            first = starting[-1] if starting else segments[0]
        elif self.manifest.dynamic:
            first = segments[max(0, len(segments) - self.live.live_start_segments)]
        else:
            first = segments[0]
        track.next_start_s = first.start_s
        if self.origin_s is None:
            self.origin_s = first.start_s

    def _feed_new(self, track: _Track) -> bool:
        rep = track.representation
        if track.done or track.next_start_s is None:
            return False
        segments = rep.segments
        if segments and segments[0].start_s > track.next_start_s + _EPSILON_S and track.init_fed is not None:
            gap = segments[0].start_s - track.next_start_s
            self.emit(delivery_event("dash.segments_skipped", self.position(track.next_start_s),
                                     self.position(track.next_start_s) + gap, representation=rep.id,
                                     media=track.kind, seconds=round(gap, 3)))
        new = [s for s in segments if s.start_s >= track.next_start_s - _EPSILON_S]
        for segment in new:
            if self.stop.is_set():
                return True
            if not self._feed(track, segment):
                break
            track.next_start_s = segment.start_s + segment.duration_s
        if not self.manifest.dynamic and (not segments or track.next_start_s >= segments[-1].start_s + segments[-1].duration_s - _EPSILON_S):
            track.done = True
            track.pipe.close()
        return bool(new)

    def _feed(self, track: _Track, segment: SegmentRef) -> bool:
        rep = track.representation
        self._close_stale()
        self._last_new = time.monotonic()
        start = self.position(segment.start_s)
        if rep.init_url and rep.init_url != track.init_fed:
            init, reason = get_bytes(self.client, rep.init_url, self.live.segment_retries, self.live.retry_wait_s, self.stop)
            if init is None:
                self.last_error = f"init segment of {rep.id}: {reason}"
                self.emit(delivery_event("dash.segment_error", start, start + segment.duration_s, representation=rep.id,
                                         media=track.kind, url=rep.init_url, reason=f"init segment: {reason}"))
                return False
            track.pipe.write(init, self.stop)
            track.init_fed = rep.init_url
        data, reason = get_bytes(self.client, segment.url, self.live.segment_retries, self.live.retry_wait_s, self.stop)
        if data is None:
            self.last_error = f"segment {segment.url}: {reason}"
            self.emit(delivery_event("dash.segment_error", start, start + segment.duration_s, representation=rep.id,
                                     media=track.kind, number=segment.number, url=segment.url, reason=reason))
        else:
            track.pipe.write(data, self.stop)
            track.init_fed = track.init_fed or "whole file"
        return True

    def _check_stale(self) -> bool:
        stale_after = self.live.stale_target_durations * self.segment_s
        waited = time.monotonic() - self._last_new
        if not self.manifest.dynamic:
            return False
        position = max((self.position(t.next_start_s) for t in self.tracks.values() if t.next_start_s is not None), default=0.0)
        if waited >= stale_after and self._stale is None:
            self._stale = delivery_event("dash.stale_manifest", position, position + waited, ongoing=True,
                                         segment_duration_s=round(self.segment_s, 3))
            if self.last_error:
                self._stale.details["last_error"] = self.last_error
            self.emit(self._stale)
        if waited >= stale_after + self.live.give_up_after_stale_s:
            self._close_stale()
            reason = f"no new segment in {waited:.1f} s" + (f" ({self.last_error})" if self.last_error else "")
            self.note(StreamNote("read_error", float("nan"), "container", {"reason": reason}))
            return True
        return False

    def _closed_stale(self) -> Event | None:
        if self._stale is None:
            return None
        waited = time.monotonic() - self._last_new
        closed = delivery_event("dash.stale_manifest", self._stale.start, self._stale.start + waited,
                                stalled_s=round(waited, 3), **self._stale.details)
        self._stale = None
        return closed

    def _close_stale(self) -> None:
        closed = self._closed_stale()
        if closed is not None:
            self.emit(closed)

    def finish(self) -> list[Event]:
        closed = self._closed_stale()
        return [closed] if closed is not None else []


def _container_format(rep: Representation) -> str:
    return "matroska" if "webm" in rep.mime_type else "mp4"


def open_dash(url: str, options: SourceOptions) -> LiveReader:
    client = http_client(options)
    try:
        text = fetch_text(client, url)
        try:
            manifest = parse_manifest(text, url, dt.datetime.now(dt.timezone.utc))
        except ManifestError as err:
            raise InputError(f"not a DASH manifest we can read ({err}): {url}") from None
        fetcher = DashFetcher(client, url, manifest, options)
        if not fetcher.tracks:
            raise InputError(f"no {'video or audio' if options.video and options.audio else 'wanted'} representation in {url}")
    except InputError:
        client.close()
        raise
    fetcher.start()
    parts: list[MediaReader] = []
    try:
        for kind in ("video", "audio"):
            track = fetcher.tracks.get(kind)
            if track is None:
                continue
            if not track.pipe.wait_for_data(options.open_timeout_s):
                why = f": {fetcher.last_error}" if fetcher.last_error else ""
                raise InputError(f"no {kind} segment of {url} could be fetched in {options.open_timeout_s:g} s{why}")
            container = open_live_container(track.pipe, _container_format(track.representation), url, f"{kind} segments")
            # Video and audio come in separate files: a segment lost in one is a hole in
            # that track only. Folding the hole out of one track's clock (as for a jump
            # in a muxed stream) would shift it against the other, so holes up to a few
            # segments stay holes, where the packager's timestamps put them.
            timeline = dataclasses.replace(options.timeline, forward_jump_s=max(
                options.timeline.forward_jump_s, 5 * fetcher.segment_s))
            try:
                parts.append(MediaReader(url, container, dataclasses.replace(
                    options, video=kind == "video", audio=kind == "audio", timeline=timeline)))
            except InputError:
                container.close()
                raise
    except InputError:
        fetcher.shutdown()
        for part in parts:
            part.close()
        raise
    video = parts[0].info.video if "video" in fetcher.tracks else None
    audio = parts[-1].info.audio if "audio" in fetcher.tracks else None
    counts = {kind: 1 for kind in fetcher.tracks}
    duration = None
    if not manifest.dynamic:
        reference = next(iter(fetcher.tracks.values())).representation.segments
        duration = sum(s.duration_s for s in reference) or None
    info = MediaInfo(url, f"dash ({parts[0].info.format})", duration, video, audio, counts)
    return LiveReader(url, info, parts, fetcher)
