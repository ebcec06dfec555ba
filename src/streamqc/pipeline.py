"""The detector chain: routes each buffer to the detectors that take its kind.

One chain per stream. It owns no I/O, so the same chain serves `check` on a file and
the live monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamqc.detectors import ALL_DETECTORS, Detector
from streamqc.detectors.base import apply_options
from streamqc.errors import ConfigError
from streamqc.events import Event
from streamqc.media import AudioChunk, Buffer, StreamNote, VideoFrame

DetectorOptions = dict[str, dict[str, Any]]


def build_detectors(options: DetectorOptions | None = None, registry: Iterable[type[Detector]] = ALL_DETECTORS) -> list[Detector]:
    """Instantiate every enabled detector with its options; ConfigError names a bad key."""
    options = dict(options or {})
    known = {d.name: d for d in registry}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown detector {unknown[0]!r} (known: {', '.join(sorted(known))})")
    detectors = []
    for name, detector_type in known.items():
        values = dict(options.get(name) or {})
        if not isinstance(values, dict):
            raise ConfigError(f"options for {name} must be a mapping, got {values!r}")
        enabled = values.pop("enabled", True)
        if str(enabled).lower() in ("0", "false", "no", "off"):
            continue
        detectors.append(detector_type(apply_options(detector_type.Options, values, name)))
    return detectors


class DetectorChain:
    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = detectors
        self._routes: dict[type, list[Detector]] = {
            kind: [d for d in detectors if kind in d.accepts] for kind in (VideoFrame, AudioChunk, StreamNote)
        }

    @classmethod
    def from_options(cls, options: DetectorOptions | None = None) -> "DetectorChain":
        return cls(build_detectors(options))

    def feed(self, buffer: Buffer) -> list[Event]:
        events: list[Event] = []
        for detector in self._routes[type(buffer)]:
            found = detector.feed(buffer)
            if found:
                events.extend(found)
        return events

    def finish(self, end: float) -> list[Event]:
        events: list[Event] = []
        for detector in self.detectors:
            events.extend(detector.finish(end))
        return events
