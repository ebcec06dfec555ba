"""HLS playlists (RFC 8216): the tags a monitoring client needs, nothing more."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urljoin

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


class PlaylistError(ValueError):
    """The text is not an HLS playlist we can follow."""


@dataclasses.dataclass(slots=True)
class Variant:
    uri: str
    bandwidth: int
    resolution: str | None = None


@dataclasses.dataclass(slots=True)
class Segment:
    sequence: int
    uri: str
    duration_s: float
    discontinuity: bool = False
    map_uri: str | None = None  # EXT-X-MAP: the init segment of fMP4 segments


@dataclasses.dataclass(slots=True)
class Playlist:
    variants: list[Variant]
    target_duration_s: float = 0.0
    media_sequence: int = 0
    discontinuity_sequence: int = 0
    ended: bool = False
    segments: list[Segment] = dataclasses.field(default_factory=list)

    @property
    def is_master(self) -> bool:
        return bool(self.variants)

    @property
    def last_sequence(self) -> int:
        return self.media_sequence + len(self.segments) - 1


def attributes(text: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(text)}


def parse_playlist(text: str, base_url: str) -> Playlist:
    """Parse a master or media playlist; URIs come back absolute."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#EXTM3U"):
        raise PlaylistError("no #EXTM3U header")
    playlist = Playlist(variants=[])
    pending_variant: dict[str, str] | None = None
    duration: float | None = None
    discontinuity = False
    map_uri: str | None = None
    sequence = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending_variant = attributes(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            playlist.target_duration_s = _number(line, float)
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            playlist.media_sequence = _number(line, int)
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            playlist.discontinuity_sequence = _number(line, int)
        elif line.startswith("#EXT-X-ENDLIST"):
            playlist.ended = True
        elif line.startswith("#EXTINF:"):
            duration = _number(line.split(",", 1)[0], float)
        elif line.startswith("#EXT-X-DISCONTINUITY") and not line.startswith("#EXT-X-DISCONTINUITY-"):
            discontinuity = True
        elif line.startswith("#EXT-X-MAP:"):
            uri = attributes(line.split(":", 1)[1]).get("URI")
            map_uri = urljoin(base_url, uri) if uri else None
        elif line.startswith("#"):
            continue
        elif pending_variant is not None:
            bandwidth = int(pending_variant.get("BANDWIDTH", "0") or 0)
            playlist.variants.append(Variant(urljoin(base_url, line), bandwidth, pending_variant.get("RESOLUTION")))
            pending_variant = None
        elif duration is not None:
            if sequence is None:
                sequence = playlist.media_sequence
            playlist.segments.append(Segment(sequence, urljoin(base_url, line), duration, discontinuity, map_uri))
            sequence += 1
            duration, discontinuity = None, False
    if not playlist.variants and playlist.target_duration_s <= 0:
        raise PlaylistError("no #EXT-X-TARGETDURATION and no variant streams")
    return playlist


def _number(line: str, kind):
    try:
        return kind(line.split(":", 1)[1].strip())
    except ValueError:
        raise PlaylistError(f"bad number in {line!r}") from None
