"""audio.silence: the programme is below `noise_db` dBFS for at least `min_duration_s`.

Measured as RMS over short windows, loudest channel first: one live channel is
enough for the programme to be present. RMS rather than peak so that a hiss floor
with a stray tick still counts as silence, and quiet but present audio (speech at
-45 dBFS) does not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamqc.detectors.base import AudioWindows, Detector, RunTracker, dbfs, duration_event
from streamqc.events import Event
from streamqc.media import AudioChunk


@dataclasses.dataclass(frozen=True, slots=True)
class SilenceOptions:
    noise_db: float = -60.0  # windows quieter than this (RMS, dBFS) are silent
    min_duration_s: float = 2.0
    window_s: float = 0.02
    major_after_s: float = 5.0
    critical_after_s: float = 30.0


class SilenceDetector(Detector):
    name = "silence"
    Options = SilenceOptions
    accepts = (AudioChunk,)

    def __init__(self, options: SilenceOptions | None = None) -> None:
        super().__init__(options)
        self._windows = AudioWindows(self.options.window_s)
        self._run = RunTracker(self.options.min_duration_s)
        self._quietest_db = 0.0
        # loudest-channel window powers summed since the last measure(): the level over that span
        self._power_sum = 0.0
        self._power_windows = 0

    def feed(self, chunk: AudioChunk) -> list[Event]:
        events: list[Event] = []
        for start, windows, rate in self._windows.push(chunk):
            rms = np.sqrt(np.mean(np.square(windows), axis=1)).max(axis=1)
            level = dbfs(rms)
            self._power_sum += float(np.square(rms).sum())
            self._power_windows += rms.size
            silent = level < self.options.noise_db
            step = windows.shape[1] / rate
            # Only the windows where the state flips matter; jump between them.
            flips = np.flatnonzero(np.diff(silent.astype(np.int8))) + 1
            for index in np.concatenate(([0], flips)):
                time = start + index * step
                closed = self._run.update(time, bool(silent[index]), time + step)
                if closed:
                    events.append(self._event(*closed))
            if silent[-1]:
                self._run.last_end = start + len(silent) * step
        reached = self._run.reached()
        if reached:
            events.append(duration_event("audio.silence", *reached, self.options, ongoing=True,
                                         threshold_db=self.options.noise_db))
        return events

    def measure(self) -> dict[str, float]:
        """Audio level (RMS dBFS, loudest channel per window) since the last call."""
        if not self._power_windows:
            return {}
        level = float(dbfs(np.sqrt(self._power_sum / self._power_windows)))
        self._power_sum, self._power_windows = 0.0, 0
        return {"audio_level_dbfs": round(level, 2)}

    def finish(self, end: float) -> list[Event]:
        closed = self._run.finish(end)
        return [self._event(*closed)] if closed else []

    def _event(self, start: float, end: float) -> Event:
        return duration_event("audio.silence", start, end, self.options, threshold_db=self.options.noise_db)
