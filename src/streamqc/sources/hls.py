"""Live HLS, read by a client of our own: playlist polling, segment fetching, delivery checks.

FFmpeg's HLS demuxer hides delivery: a 404 segment, a playlist that stops moving or a
segment longer than the target duration all look like a pause in the media, if
anything. Here the playlist is polled with httpx, each segment is fetched (with
retries) and its bytes go on into one PyAV demuxer, so decoding stays in-process and
timestamps stay continuous across segments, and what went wrong with delivery comes
out as `hls.*` events:

- hls.stale_playlist: no new segment for `stale_target_durations` x EXT-X-TARGETDURATION
  (announced ongoing at that moment, closed when segments come again)
- hls.segment_error: a segment that could not be fetched (HTTP error, timeout) after retries
- hls.target_duration: a segment whose EXTINF, rounded, exceeds EXT-X-TARGETDURATION
- hls.sequence_reset: EXT-X-MEDIA-SEQUENCE went backwards (the origin restarted)
- hls.segments_skipped: segments left the playlist before we could fetch them
- hls.discontinuity (info): an EXT-X-DISCONTINUITY tag

Event times are media seconds, counted by the segments' EXTINF from the first segment
fed (which is where media time 0, the first picture, lies).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import av
import httpx

from streamqc.errors import InputError
from streamqc.events import Event, Severity
from streamqc.media import StreamNote
from streamqc.sources.live import BytePipe, Fetcher, LiveReader, delivery_event
from streamqc.sources.live_options import LiveOptions
from streamqc.sources.playlist import Playlist, PlaylistError, Segment, parse_playlist
from streamqc.sources.reader import MediaReader, SourceOptions, _decoder_log

T = TypeVar("T")


def is_hls_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and url.split("?", 1)[0].split("#", 1)[0].lower().endswith(".m3u8")


def http_client(options: SourceOptions) -> httpx.Client:
    timeout = httpx.Timeout(options.read_timeout_s, connect=options.open_timeout_s)
    return httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": "streamqc"})


def fetch_text(client: httpx.Client, url: str) -> str:
    """GET `url`; raise InputError with a one-line reason on failure."""
    try:
        response = client.get(url)
    except httpx.ConnectError:
        raise InputError(f"connection refused: {url}") from None
    except httpx.TimeoutException:
        raise InputError(f"timed out opening {url}") from None
    except httpx.HTTPError as err:
        raise InputError(f"cannot open {url}: {err}") from None
    if response.status_code != 200:
        raise InputError(f"HTTP error opening {url}: {response.status_code} {response.reason_phrase}")
    return response.text


def reload_text(client: httpx.Client, url: str, parse: Callable[[str, str], T], what: str,
                errors: tuple[type[Exception], ...]) -> tuple[T | None, str]:
    """A live manifest fetched again and parsed, or None and why (the reader keeps polling)."""
    try:
        response = client.get(url)
        if response.status_code != 200:
            return None, f"{what}: HTTP {response.status_code}"
        return parse(response.text, url), ""
    except (httpx.HTTPError, *errors) as err:
        return None, f"{what}: {type(err).__name__} {err}".strip()


def get_bytes(client: httpx.Client, url: str, retries: int, wait_s: float, stop: threading.Event,
              headers: dict[str, str] | None = None) -> tuple[bytes | None, str]:
    """The body of `url`, or None and the last reason after 1 + `retries` attempts."""
    reason = ""
    for attempt in range(retries + 1):
        if attempt and stop.wait(wait_s * attempt):
            break
        try:
            response = client.get(url, headers=headers)
        except httpx.TimeoutException:
            reason = "timed out"
            continue
        except httpx.HTTPError as err:
            reason = type(err).__name__ + (f": {err}" if str(err) else "")
            continue
        if response.status_code in (200, 206):
            return response.content, ""
        reason = f"HTTP {response.status_code}"
    return None, reason


def _choose_variant(playlist: Playlist, how: str):
    ranked = sorted(playlist.variants, key=lambda v: v.bandwidth)
    return ranked[0] if how == "lowest" else ranked[-1]


def load_media_playlist(client: httpx.Client, url: str, options: SourceOptions) -> tuple[str, Playlist]:
    """The media playlist at `url`, following a master playlist to one variant."""
    for _ in range(3):  # master -> media; more levels are not HLS
        text = fetch_text(client, url)
        try:
            playlist = parse_playlist(text, url)
        except PlaylistError as err:
            raise InputError(f"not an HLS playlist ({err}): {url}") from None
        if not playlist.is_master:
            return url, playlist
        url = _choose_variant(playlist, options.live.variant).uri
    raise InputError(f"master playlists nest too deep: {url}")


class HlsFetcher(Fetcher):
    def __init__(self, client: httpx.Client, url: str, first: Playlist, options: SourceOptions) -> None:
        super().__init__()
        self.client = client
        self.url = url
        self.live: LiveOptions = options.live
        self.pipe = BytePipe(self.live.pipe_limit_bytes)
        self.first = first
        self.position_s = 0.0  # media seconds fed so far (sum of EXTINF)
        self.segments_fed = 0
        self.last_error = ""
        self._next_sequence: int | None = None
        self._media_sequence: int | None = None
        self._map_uri: str | None = None
        self._last_new = time.monotonic()
        self._stale: Event | None = None
        self._target_s = first.target_duration_s
        self.timeline_jump_s = options.timeline.forward_jump_s

    def close_pipes(self, discard: bool = False) -> None:
        self.pipe.close(discard)

    def shutdown(self) -> None:
        super().shutdown()
        self.client.close()

    @property
    def uses_fmp4(self) -> bool:
        return any(s.map_uri for s in self.first.segments)

    def run(self) -> None:
        playlist: Playlist | None = self.first
        while not self.stop.is_set():
            changed = False
            if playlist is not None:
                changed = self._follow(playlist)
                if playlist.ended and self._next_sequence is not None and self._next_sequence > playlist.last_sequence:
                    return  # the whole stream was fed: end of file for the demuxer
            if self._check_stale():
                return
            wait = self._target_s if changed else self._target_s / 2
            if self.stop.wait(max(0.1, wait)):
                return
            playlist = self._reload()

    def _reload(self) -> Playlist | None:
        playlist, error = reload_text(self.client, self.url, parse_playlist, "playlist", (PlaylistError,))
        self.last_error = error or self.last_error
        return playlist

    def _follow(self, playlist: Playlist) -> bool:
        """Fetch the playlist's new segments; True if there were any."""
        if playlist.target_duration_s > 0:
            self._target_s = playlist.target_duration_s
        went_back = self._media_sequence is not None and playlist.media_sequence < self._media_sequence
        # A restarted packager may begin again at the sequence number it had reached
        # (0 while its window was still filling): then the newest segment is older than
        # what was already fed.
        behind = bool(playlist.segments) and self._next_sequence is not None and \
            playlist.last_sequence < self._next_sequence - 1
        if went_back or behind:
            self.emit(delivery_event("hls.sequence_reset", self.position_s, self.position_s,
                                     previous=self._next_sequence - 1 if self._next_sequence else self._media_sequence,
                                     now=playlist.last_sequence))
            self._next_sequence = None
        self._media_sequence = playlist.media_sequence
        if self._next_sequence is None:
            live_start = 0 if playlist.ended else max(0, len(playlist.segments) - self.live.live_start_segments)
            self._next_sequence = playlist.media_sequence + live_start
        elif self._next_sequence < playlist.media_sequence:
            missed = playlist.media_sequence - self._next_sequence
            self.emit(delivery_event("hls.segments_skipped", self.position_s, self.position_s + missed * self._target_s,
                                     segments=missed, first=self._next_sequence))
            self._next_sequence = playlist.media_sequence
        new = [s for s in playlist.segments if s.sequence >= self._next_sequence]
        for segment in new:
            if self.stop.is_set():
                break
            self._feed(segment, playlist.target_duration_s)
            self._next_sequence = segment.sequence + 1
        return bool(new)

    def _feed(self, segment: Segment, target_s: float) -> None:
        start, end = self.position_s, self.position_s + segment.duration_s
        self._close_stale()
        self._last_new = time.monotonic()
        if segment.discontinuity and self.segments_fed:
            self.emit(delivery_event("hls.discontinuity", start, start, Severity.INFO, sequence=segment.sequence))
        if target_s > 0 and math.floor(segment.duration_s + 0.5) > target_s:  # RFC 8216: rounded half up
            self.emit(delivery_event("hls.target_duration", start, end, Severity.MINOR, sequence=segment.sequence,
                                     duration_s=segment.duration_s, target_duration_s=target_s))
        if segment.map_uri and segment.map_uri != self._map_uri:
            init, reason = get_bytes(self.client, segment.map_uri, self.live.segment_retries, self.live.retry_wait_s, self.stop)
            if init is None:
                self.emit(delivery_event("hls.segment_error", start, end, sequence=segment.sequence,
                                         uri=segment.map_uri, reason=f"init segment: {reason}"))
                self.position_s = end if segment.duration_s <= self.timeline_jump_s else start
                return
            self.pipe.write(init, self.stop)
            self._map_uri = segment.map_uri
        data, reason = get_bytes(self.client, segment.uri, self.live.segment_retries, self.live.retry_wait_s, self.stop)
        if data is None:
            self.last_error = f"segment {segment.sequence}: {reason}"
            self.emit(delivery_event("hls.segment_error", start, end, sequence=segment.sequence,
                                     uri=segment.uri, reason=reason))
            if segment.duration_s > self.timeline_jump_s:
                return  # the reader's clock folds the hole out: media time does not move on
        else:
            self.pipe.write(data, self.stop)
            self.segments_fed += 1
        self.position_s = end

    def _check_stale(self) -> bool:
        """Announce a stale playlist; True when it has been stale long enough to give up."""
        stale_after = self.live.stale_target_durations * self._target_s
        waited = time.monotonic() - self._last_new
        if waited >= stale_after and self._stale is None:
            self._stale = delivery_event("hls.stale_playlist", self.position_s, self.position_s + waited,
                                         ongoing=True, target_duration_s=self._target_s)
            if self.last_error:
                self._stale.details["last_error"] = self.last_error
            self.emit(self._stale)
        if waited >= stale_after + self.live.give_up_after_stale_s:
            self._close_stale()
            reason = f"no new segment in {waited:.1f} s" + (f" ({self.last_error})" if self.last_error else "")
            self.note(StreamNote("read_error", float("nan"), "container", {"reason": reason}))
            return True
        return False

    def _close_stale(self) -> None:
        if self._stale is None:
            return
        waited = time.monotonic() - self._last_new
        closed = delivery_event("hls.stale_playlist", self._stale.start, self._stale.start + waited,
                                stalled_s=round(waited, 3), **{k: v for k, v in self._stale.details.items()})
        self._stale = None
        self.emit(closed)

    def finish(self) -> list[Event]:
        if self._stale is None:
            return []
        waited = time.monotonic() - self._last_new
        closed = delivery_event("hls.stale_playlist", self._stale.start, self._stale.start + waited,
                                stalled_s=round(waited, 3), **self._stale.details)
        self._stale = None
        return [closed]


def container_format(head: bytes, fmp4: bool) -> str | None:
    if fmp4:
        return "mp4"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    return None  # let FFmpeg probe (packed audio, ...)


def open_live_container(pipe: BytePipe, fmt: str | None, url: str, what: str):
    _decoder_log()
    try:
        return av.open(pipe.read_end(), format=fmt, metadata_errors="replace")
    except (av.error.FFmpegError, OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise InputError(f"the {what} of {url} are not media FFmpeg can read: {reason}") from None


def open_hls(url: str, options: SourceOptions) -> LiveReader:
    client = http_client(options)
    try:
        playlist_url, playlist = load_media_playlist(client, url, options)
        if not playlist.segments and playlist.ended:
            raise InputError(f"the HLS playlist has no segments: {url}")
    except InputError:
        client.close()
        raise
    fetcher = HlsFetcher(client, playlist_url, playlist, options)
    fetcher.start()
    try:
        if not fetcher.pipe.wait_for_data(options.open_timeout_s):
            why = f": {fetcher.last_error}" if fetcher.last_error else ""
            raise InputError(f"no segment of {url} could be fetched in {options.open_timeout_s:g} s{why}")
        fmt = container_format(fetcher.pipe.peek(376), fetcher.uses_fmp4)
        container = open_live_container(fetcher.pipe, fmt, url, "segments")
        try:
            part = MediaReader(url, container, options)
        except InputError:
            container.close()
            raise
    except InputError:
        fetcher.shutdown()
        client.close()
        raise
    info = part.info
    info.input, info.format = url, f"hls ({container.format.name})"
    info.duration = sum(s.duration_s for s in playlist.segments) if playlist.ended else None
    return LiveReader(url, info, [part], fetcher)
