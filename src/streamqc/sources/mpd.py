"""DASH manifests (ISO/IEC 23009-1): which segments a representation has, by URL and time.

Covered: static and dynamic MPDs; SegmentTemplate with $Number$ / $Time$ /
$RepresentationID$ / $Bandwidth$ (with %0Nd widths), with a SegmentTimeline or a fixed
@duration (live: numbered from availabilityStartTime by the wall clock); SegmentList;
SegmentBase or a bare BaseURL (one file). One Period: the first of a static MPD, the
last of a dynamic one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

_NS = re.compile(r"^\{[^}]*\}")
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_IDENTIFIER = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth)(%0(\d+)d)?\$")


class ManifestError(ValueError):
    """The text is not a DASH manifest we can follow."""


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentRef:
    key: float  # orders segments: start time in seconds (presentation time)
    url: str
    start_s: float
    duration_s: float
    number: int | None = None


@dataclasses.dataclass(slots=True)
class Representation:
    id: str
    kind: str  # video | audio
    bandwidth: int
    mime_type: str
    init_url: str | None
    segments: list[SegmentRef]
    whole_file: bool = False  # SegmentBase / bare BaseURL: one file holds everything


@dataclasses.dataclass(slots=True)
class Manifest:
    dynamic: bool
    minimum_update_period_s: float | None
    max_segment_duration_s: float | None
    representations: dict[str, list[Representation]]  # kind -> representations

    def choose(self, kind: str, how: str) -> Representation | None:
        found = sorted(self.representations.get(kind, []), key=lambda r: r.bandwidth)
        if not found:
            return None
        return found[0] if how == "lowest" else found[-1]


def parse_duration(text: str | None) -> float | None:
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if not match:
        raise ManifestError(f"bad duration {text!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_datetime(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ManifestError(f"bad date {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _strip(element: ET.Element) -> None:
    for node in element.iter():
        node.tag = _NS.sub("", node.tag)


def _fill(template: str, rep_id: str, bandwidth: int, number: int | None = None, time: int | None = None) -> str:
    def value(match: re.Match) -> str:
        name, width = match.group(1), match.group(3)
        raw = {"RepresentationID": rep_id, "Bandwidth": bandwidth, "Number": number, "Time": time}[name]
        if raw is None:
            raise ManifestError(f"${name}$ in {template!r} has no value here")
        return f"{int(raw):0{int(width)}d}" if width else str(raw)

    return _IDENTIFIER.sub(value, template).replace("$$", "$")


def _base(url: str, element: ET.Element) -> str:
    node = element.find("BaseURL")
    return urljoin(url, node.text.strip()) if node is not None and node.text else url


def _inherited(name: str, *elements: ET.Element | None) -> ET.Element | None:
    for element in elements:
        if element is not None and element.find(name) is not None:
            return element.find(name)
    return None


def parse_manifest(text: str, url: str, now: dt.datetime | None = None) -> Manifest:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ManifestError(f"not XML: {err}") from None
    _strip(root)
    if root.tag != "MPD":
        raise ManifestError(f"root element is <{root.tag}>, not <MPD>")
    dynamic = root.get("type", "static") == "dynamic"
    periods = root.findall("Period")
    if not periods:
        raise ManifestError("no Period")
    period = periods[-1] if dynamic else periods[0]
    base = _base(_base(url, root), period)
    clock = _Clock(
        dynamic=dynamic,
        availability_start=parse_datetime(root.get("availabilityStartTime")),
        period_start_s=parse_duration(period.get("start")) or 0.0,
        period_duration_s=parse_duration(period.get("duration")) or parse_duration(root.get("mediaPresentationDuration")),
        time_shift_s=parse_duration(root.get("timeShiftBufferDepth")),
        now=now or dt.datetime.now(dt.timezone.utc),
    )
    representations: dict[str, list[Representation]] = {}
    for adaptation in period.findall("AdaptationSet"):
        set_base = _base(base, adaptation)
        for rep in adaptation.findall("Representation"):
            mime = rep.get("mimeType") or adaptation.get("mimeType") or ""
            kind = adaptation.get("contentType") or rep.get("contentType") or mime.split("/", 1)[0]
            if kind not in ("video", "audio"):
                continue
            parsed = _representation(rep, adaptation, period, _base(set_base, rep), kind, mime, clock)
            representations.setdefault(kind, []).append(parsed)
    if not representations:
        raise ManifestError("no video or audio representation")
    return Manifest(dynamic, parse_duration(root.get("minimumUpdatePeriod")),
                    parse_duration(root.get("maxSegmentDuration")), representations)


@dataclasses.dataclass(slots=True)
class _Clock:
    dynamic: bool
    availability_start: dt.datetime | None
    period_start_s: float
    period_duration_s: float | None
    time_shift_s: float | None
    now: dt.datetime


def _representation(rep, adaptation, period, base: str, kind: str, mime: str, clock: _Clock) -> Representation:
    rep_id = rep.get("id", "")
    bandwidth = int(rep.get("bandwidth", "0") or 0)
    template = _inherited("SegmentTemplate", rep, adaptation, period)
    if template is not None:
        init = template.get("initialization")
        init_url = urljoin(base, _fill(init, rep_id, bandwidth)) if init else None
        segments = _template_segments(template, rep_id, bandwidth, base, clock)
        return Representation(rep_id, kind, bandwidth, mime, init_url, segments)
    listing = _inherited("SegmentList", rep, adaptation, period)
    if listing is not None:
        timescale = int(listing.get("timescale", "1"))
        duration = int(listing.get("duration", "0")) / timescale
        init = listing.find("Initialization")
        init_url = urljoin(base, init.get("sourceURL")) if init is not None and init.get("sourceURL") else None
        segments = [SegmentRef(k * duration, urljoin(base, s.get("media", "")), k * duration, duration, k)
                    for k, s in enumerate(listing.findall("SegmentURL"))]
        return Representation(rep_id, kind, bandwidth, mime, init_url, segments)
    # SegmentBase or a bare BaseURL: the whole representation is one file.
    length = clock.period_duration_s or 0.0
    return Representation(rep_id, kind, bandwidth, mime, None, [SegmentRef(0.0, base, 0.0, length, 0)], whole_file=True)


def _template_segments(template, rep_id: str, bandwidth: int, base: str, clock: _Clock) -> list[SegmentRef]:
    media = template.get("media")
    if not media:
        raise ManifestError(f"SegmentTemplate of representation {rep_id!r} has no @media")
    timescale = int(template.get("timescale", "1"))
    start_number = int(template.get("startNumber", "1"))
    offset = int(template.get("presentationTimeOffset", "0"))
    timeline = template.find("SegmentTimeline")
    out: list[SegmentRef] = []
    if timeline is not None:
        time_ticks = 0
        number = start_number
        entries = timeline.findall("S")
        for k, entry in enumerate(entries):
            if entry.get("t") is not None:
                time_ticks = int(entry.get("t"))
            duration = int(entry.get("d"))
            repeat = int(entry.get("r", "0"))
            if repeat < 0:  # up to the next entry's start, or the period's end / now
                if k + 1 < len(entries) and entries[k + 1].get("t") is not None:
                    until = int(entries[k + 1].get("t"))
                else:
                    until = offset + _period_elapsed_s(clock) * timescale
                repeat = max(0, math.ceil((until - time_ticks) / duration) - 1)
            for _ in range(repeat + 1):
                url = urljoin(base, _fill(media, rep_id, bandwidth, number, time_ticks))
                start_s = (time_ticks - offset) / timescale
                out.append(SegmentRef(start_s, url, start_s, duration / timescale, number))
                time_ticks += duration
                number += 1
        return out
    duration_ticks = int(template.get("duration", "0"))
    if duration_ticks <= 0:
        raise ManifestError(f"SegmentTemplate of representation {rep_id!r} has neither a timeline nor @duration")
    duration_s = duration_ticks / timescale
    if clock.dynamic:
        # Numbered by the wall clock: the newest segment is the last one complete by now.
        available = math.floor(_period_elapsed_s(clock) / duration_s)
        oldest = max(0, available - math.ceil((clock.time_shift_s or 5 * duration_s) / duration_s))
        indexes = range(oldest, available)
    else:
        count = math.ceil((clock.period_duration_s or 0.0) / duration_s - 1e-9)
        indexes = range(count)
    for k in indexes:
        number = start_number + k
        url = urljoin(base, _fill(media, rep_id, bandwidth, number, k * duration_ticks + offset))
        out.append(SegmentRef(k * duration_s, url, k * duration_s, duration_s, number))
    return out


def _period_elapsed_s(clock: _Clock) -> float:
    if not clock.dynamic:
        return clock.period_duration_s or 0.0
    if clock.availability_start is None:
        raise ManifestError("dynamic MPD without availabilityStartTime")
    return (clock.now - clock.availability_start).total_seconds() - clock.period_start_s
