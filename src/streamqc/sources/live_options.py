"""Options of the live readers of our own (HLS, DASH), part of SourceOptions."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class LiveOptions:
    """Options of the HLS and DASH readers of our own."""

    # a playlist / manifest with no new segment for this many target durations is stale
    stale_target_durations: float = 3.0
    # after being stale this much longer, the reader gives up (a read error ends it)
    give_up_after_stale_s: float = 10.0
    segment_retries: int = 2  # extra attempts at a segment before it is reported missing
    retry_wait_s: float = 0.25
    # a live stream starts this many segments behind the live edge (HLS spec: 3)
    live_start_segments: int = 3
    variant: str = "highest"  # HLS master playlist / DASH representation: highest | lowest bandwidth
    # bytes that may wait in a pipe for the demuxer; the fetcher waits beyond this
    pipe_limit_bytes: int = 64 * 1024 * 1024
