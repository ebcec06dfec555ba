"""False alarms per hour on content known to be free of defects (`streamqc eval --clean DIR`).

Precision on a labelled corpus says how often an alarm is right on that corpus; an
operator asks how often a clean channel pages them. So every media file under a clean
folder is checked as `check` would, and each event of severity minor or worse is a false
alarm, counted per kind and per hour of content. One exception is reported apart, not
counted: a silence that spans the whole input is the track itself (a camera with no
microphone, a muted time-lapse), which saying so is right on a clip known to be clean.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamqc.errors import StreamQCError
from streamqc.events import Event

MEDIA_SUFFIXES = {".ts", ".mp4", ".m4a", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2ts", ".mxf",
                  ".wav", ".ogg", ".oga", ".mp3", ".flac", ".gsm", ".aiff", ".aif", ".opus", ".ac3", ".eac3"}
_WHOLE_INPUT_SLACK_S = 0.1


@dataclasses.dataclass(slots=True)
class CleanClip:
    path: str
    duration: float
    events: list[Event]  # severity minor or worse, silent tracks excluded
    silent_track: bool  # a silence spanning the whole input (reported apart)
    error: str | None = None


@dataclasses.dataclass(slots=True)
class CleanReport:
    folders: list[str]
    clips: list[CleanClip]
    elapsed_s: float

    @property
    def hours(self) -> float:
        return sum(c.duration for c in self.clips) / 3600.0

    @property
    def false_alarms(self) -> int:
        return sum(len(c.events) for c in self.clips)

    def by_kind(self) -> Counter:
        return Counter(e.kind for c in self.clips for e in c.events)

    def per_hour(self, kind: str | None = None) -> float | None:
        if self.hours <= 0:
            return None
        return (self.false_alarms if kind is None else self.by_kind()[kind]) / self.hours

    def to_dict(self) -> dict[str, Any]:
        return {
            "folders": self.folders,
            "clips": len(self.clips),
            "hours": round(self.hours, 4),
            "false_alarms": self.false_alarms,
            "false_alarms_per_hour": None if self.per_hour() is None else round(self.per_hour(), 2),
            "by_kind": {k: {"count": n, "per_hour": round(n / self.hours, 2)} for k, n in sorted(self.by_kind().items())},
            "silent_tracks": [c.path for c in self.clips if c.silent_track],
            "errors": {c.path: c.error for c in self.clips if c.error},
            "events": {c.path: [e.to_dict() for e in c.events] for c in self.clips if c.events},
        }


def media_files(folders: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(path, name to show: the folder's name and the path inside it) of every media file."""
    files: list[tuple[Path, str]] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise StreamQCError(f"{root}: not a folder of clean clips")
        found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        files.extend((p, str(Path(root.resolve().name) / p.relative_to(root))) for p in found)
    if not files:
        raise StreamQCError(f"no media files under {', '.join(map(str, folders))}")
    return files


def _check_clean(job: tuple[str, str, dict | None]) -> CleanClip:
    from streamqc.check import check_input  # the worker's import, not the parent's

    path, name, options = job
    try:
        result = check_input(path, options=options)
    except StreamQCError as err:
        return CleanClip(name, 0.0, [], False, error=str(err))
    silent = False
    alarms = []
    for event in result.events:
        if not event.is_defect:
            continue
        whole = event.start <= _WHOLE_INPUT_SLACK_S and event.end >= result.duration - _WHOLE_INPUT_SLACK_S
        if event.kind == "audio.silence" and whole:
            silent = True
            continue
        alarms.append(event)
    return CleanClip(name, result.duration, alarms, silent)


def evaluate_clean(folders: list[str | Path], options: dict | None = None, jobs: int = 2) -> CleanReport:
    from streamqc.evaluation.runner import _map_jobs

    t0 = time.perf_counter()
    jobs_list = [(str(path), name, options) for path, name in media_files(folders)]
    clips = _map_jobs(jobs_list, jobs, _check_clean, None)
    return CleanReport([str(f) for f in folders], clips, time.perf_counter() - t0)
