"""Real block corruption: damage the video packets of an encoded TS, label from the pixels.

Damage is what a lossy network or a bad tuner does: runs of TS packets of the video PID
lost, or bits flipped in their payload. Where it shows is not guessed: clean and damaged
files are decoded side by side and every frame compared. Errors propagate through
prediction until the next keyframe, so the labels follow what the decoder actually
produced.

Only damage a viewer can see is labelled. Much of what a decoder conceals differs from
the clean decode without looking wrong: stale film grain, or a whole region predicted from
the right content a few pixels off (a pan concealed with a guessed motion vector). So a
16x16 block counts as damaged (`details.area`, the largest share of the picture damaged at
once) only where, with grain and coding noise blurred away, the damaged picture is not
the clean one moved by a smooth optical flow: smears, flat or garbage blocks, stale
objects, and the seams where differently displaced regions meet. Blocks that differ but
pass that test make ignore zones: a detector may flag them, and need not.

`video.decode_error` covers the frames whose packets were damaged (from those packets'
PES timestamps). A "baked" case re-encodes the damaged pictures cleanly: the corruption
is still in the pixels, but the bitstream is whole and no decoder complains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from collections.abc import Callable, Iterator

import av
import cv2
import numpy as np

from streamqc.synth import tspackets as tsp
from streamqc.synth.labels import Annotations, Ignore, Label

BLOCK = 16
BLOCK_DIFF = 8.0  # mean abs luma difference of a block that differs from the clean decode at all
# mean abs luma difference, after a 1.5-pixel blur at half size, of a block the clean
# picture moved by its optical flow does not explain: visibly damaged
VISIBLE_DIFF = 6.0
VISIBLE_AREA = 0.004  # share of blocks: at or above, the frame is labelled corrupt
MIN_EPISODE_AREA = 0.01  # an episode whose largest damaged share stays under this is too faint to label
MERGE_GAP_S = 0.5  # visibly damaged frames closer than this are one episode (one hit's damage flickers)
TS_CLOCK = 90000


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """One damage event: `packets` video TS packets from time `at_s`, dropped or bit-flipped."""

    at_s: float
    mode: str  # "drop" | "flip"
    packets: int


@dataclasses.dataclass(slots=True)
class DamageReport:
    damaged_pts: list[list[int]]  # per hit: PES PTS (90 kHz, container clock) of frames hit
    dropped_packets: int
    flipped_packets: int


def damage_ts(data: bytes, hits: list[Hit], origin_s: float, seed: int) -> tuple[bytes, DamageReport]:
    """Apply `hits` (times on the check clock, 0 = first video frame at `origin_s`)."""
    rng = np.random.default_rng([seed, 60])
    pk = tsp.packets(data)
    vpid = tsp.elementary_pids(pk)["video"]
    owner, headers = tsp.pes_map(pk, vpid)
    video_idx = np.flatnonzero(tsp.pids(pk) == vpid)
    starts = tsp.unit_starts(pk)
    offs = tsp.payload_offsets(pk)
    keep = np.ones(len(pk), bool)
    report = DamageReport([], 0, 0)
    pes_pts = np.array([h.pts if h.pts is not None else -1 for h in headers], np.int64)
    for hit in hits:
        target = int(round((origin_s + hit.at_s) * TS_CLOCK))
        # The PES of the frame shown at that time, then a packet somewhere inside it.
        pes = int(np.argmin(np.abs(pes_pts - target)))
        members = video_idx[owner[video_idx] == pes]
        if len(members) < 2:
            continue
        first = int(rng.integers(1, len(members)))  # keep the PES header packet itself
        pos = int(np.searchsorted(video_idx, members[first]))
        run = video_idx[pos : pos + hit.packets]
        touched = sorted({int(pes_pts[owner[i]]) for i in run if owner[i] >= 0})
        if hit.mode == "drop":
            keep[run] = False
            report.dropped_packets += len(run)
        else:
            for i in run:
                if starts[i]:
                    continue  # leave PES headers (and so timestamps) intact
                lo = int(offs[i])
                if lo >= tsp.PACKET - 1:
                    continue
                where = rng.integers(lo, tsp.PACKET, size=int(rng.integers(4, 17)))
                pk[i, where] ^= rng.integers(1, 256, size=len(where)).astype(np.uint8)
                report.flipped_packets += 1
        report.damaged_pts.append(touched)
    return pk[keep].tobytes(), report


# --- decoding side by side -------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class DecodedFrame:
    pts_s: float  # container clock
    frame: av.VideoFrame
    corrupt: bool


def decode_frames(path: Path, errors: list[float] | None = None) -> Iterator[DecodedFrame]:
    """Every decodable video frame, surviving decoder errors (recorded in `errors`)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        last = 0.0
        for packet in c.demux(vs):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                if errors is not None:
                    errors.append(float(packet.pts * packet.time_base) if packet.pts is not None else last)
                continue
            for f in frames:
                last = float(f.pts * f.time_base) if f.pts is not None else last
                yield DecodedFrame(last, f, bool(f.is_corrupt))


def luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]


def _block_means(x: np.ndarray, size: int) -> np.ndarray:
    h, w = (x.shape[0] // size) * size, (x.shape[1] // size) * size
    return x[:h, :w].reshape(h // size, size, w // size, size).mean(axis=(1, 3))


def damaged_blocks(clean: np.ndarray, damaged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 16x16 block: (differs by more than BLOCK_DIFF, visibly damaged)."""
    h, w = (clean.shape[0] // BLOCK) * BLOCK, (clean.shape[1] // BLOCK) * BLOCK
    if clean.shape != damaged.shape:
        every = np.ones((h // BLOCK, w // BLOCK), bool)
        return every, every
    a, b = clean[:h, :w], damaged[:h, :w]
    d = np.maximum(a, b) - np.minimum(a, b)  # |a - b| without leaving uint8
    sums = d.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum(axis=(1, 3), dtype=np.uint32)
    differs = sums > BLOCK_DIFF * BLOCK * BLOCK
    if not differs.any():
        return differs, differs
    return differs, differs & unexplained_blocks(a, b)


def unexplained_blocks(clean: np.ndarray, damaged: np.ndarray) -> np.ndarray:
    """Per 16x16 block: the damaged picture is not the clean one moved by a smooth flow."""
    # Half size (a quarter above 1280 wide) keeps the flow cheap; blocks stay whole.
    factor = 2 if clean.shape[1] <= 1280 else 4
    size = (clean.shape[1] // factor, clean.shape[0] // factor)

    def small(x: np.ndarray) -> np.ndarray:
        return cv2.resize(cv2.GaussianBlur(x.astype(np.float32), (0, 0), 1.5), size, interpolation=cv2.INTER_AREA)

    c, d = small(clean), small(damaged)
    # Five pyramid levels follow a concealed pan of tens of pixels.
    flow = cv2.calcOpticalFlowFarneback(d.round().astype(np.uint8), c.round().astype(np.uint8), None,
                                        0.5, 5, 15, 3, 5, 1.2, 0)
    gy, gx = np.mgrid[0 : c.shape[0], 0 : c.shape[1]].astype(np.float32)
    sx, sy = gx + flow[..., 0], gy + flow[..., 1]
    moved = cv2.remap(c, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    residual = _block_means(np.abs(d - moved), BLOCK // factor)
    # Where the flow reaches outside the clean picture there is nothing to compare with
    # (content a pan brought in): not judged, so at most an ignore zone.
    outside = (sx < -1) | (sy < -1) | (sx > c.shape[1]) | (sy > c.shape[0])
    judged = _block_means(outside.astype(np.float32), BLOCK // factor) == 0
    out = np.zeros((clean.shape[0] // BLOCK, clean.shape[1] // BLOCK), bool)
    out[: residual.shape[0], : residual.shape[1]] = (residual > VISIBLE_DIFF) & judged
    return out


@dataclasses.dataclass(slots=True)
class Comparison:
    areas: np.ndarray  # per clean frame index: visibly damaged area, NaN where the frame was lost
    differing: np.ndarray  # per clean frame index: area that differs at all, NaN where lost
    corrupt_flags: np.ndarray  # per clean frame index: decoder marked the frame corrupt
    decode_errors_s: list[float]  # check-clock times of packets the decoder rejected


def compare(clean: Path, damaged: Path, fps: float, frames: int,
            sink: Callable[[int, np.ndarray], None] | None = None,
            masks: dict[int, np.ndarray] | None = None) -> Comparison:
    """Decode both files in step; frame i of the clean decode is matched by pts.

    `sink(i, picture)` receives the damaged decode as packed yuv420p for every frame index
    (the previous picture standing in for a lost one): what a baked case re-encodes.
    `masks`, when given, receives per frame index the visibly damaged blocks of frames
    that differ at all (what a per-block model is trained on).
    """
    # The decoder's complaints about the damage are expected; keep them off the console.
    # local=False: frame-threaded decoders log from their own threads.
    with av.logging.Capture(local=False):
        return _compare(clean, damaged, fps, frames, sink, masks)


def _compare(clean: Path, damaged: Path, fps: float, frames: int,
             sink: Callable[[int, np.ndarray], None] | None, masks: dict[int, np.ndarray] | None) -> Comparison:
    areas = np.full(frames, np.nan)
    differing = np.full(frames, np.nan)
    flags = np.zeros(frames, bool)
    errors: list[float] = []
    clean_it = decode_frames(clean)
    dmg_it = decode_frames(damaged, errors)
    origin: float | None = None
    pending: DecodedFrame | None = None
    last_pic: np.ndarray | None = None
    for i, cf in enumerate(clean_it):
        if i >= frames:
            break
        if origin is None:
            origin = cf.pts_s
        # Advance the damaged decode to this frame's time (frames it lost are skipped).
        match = None
        while True:
            if pending is None:
                pending = next(dmg_it, None)
                if pending is None:
                    break
            if pending.pts_s < cf.pts_s - 0.25 / fps:
                pending = None  # a frame with no clean twin (should not happen)
                continue
            if abs(pending.pts_s - cf.pts_s) <= 0.25 / fps:
                match, pending = pending, None
            break
        if match is not None:
            differs, visible = damaged_blocks(luma(cf.frame), luma(match.frame))
            differing[i], areas[i] = float(differs.mean()), float(visible.mean())
            if masks is not None and differs.any():
                masks[i] = visible
            flags[i] = match.corrupt
            if sink is not None:
                last_pic = match.frame.to_ndarray(format="yuv420p")
        if sink is not None:
            sink(i, last_pic if last_pic is not None else cf.frame.to_ndarray(format="yuv420p"))
    o = origin or 0.0
    return Comparison(areas, differing, flags, [t - o for t in errors])


def runs(mask: np.ndarray, gap: int = 0) -> list[tuple[int, int]]:
    """[first, end) index runs of True, merging runs separated by <= gap False values."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    out = [[int(idx[0]), int(idx[0]) + 1]]
    for i in idx[1:]:
        if i - out[-1][1] <= gap:
            out[-1][1] = int(i) + 1
        else:
            out.append([int(i), int(i) + 1])
    return [(a, b) for a, b in out]


def corruption_annotations(cmp: Comparison, fps: float) -> Annotations:
    """video.corruption over runs of visibly damaged frames; ignore the faint and invisible ones."""
    ann = Annotations()
    areas = np.nan_to_num(cmp.areas, nan=0.0)
    lost = np.isnan(cmp.areas)
    visible = areas >= VISIBLE_AREA
    faint = ((np.nan_to_num(cmp.differing, nan=0.0) > 0) & ~visible) | lost
    for a, b in runs(visible, int(round(MERGE_GAP_S * fps))):
        seg = areas[a:b]
        if seg.max() < MIN_EPISODE_AREA:
            faint[a:b] = True
            continue
        ann.labels.append(Label("video.corruption", a / fps, b / fps, {
            "area": round(float(seg.max()), 4), "mean_area": round(float(seg.mean()), 4)}))
    for a, b in runs(faint, 0):
        ann.ignore.append(Ignore("video.corruption", a / fps, b / fps))
    # A lost frame shows as a repeat once re-encoded (baked) or as a gap: cadence
    # detectors may see it.
    for a, b in runs(lost, 0):
        ann.ignore.append(Ignore("video.stutter", a / fps - 0.5, b / fps + 0.5))
    return ann


def decode_error_annotations(report: DamageReport, cmp: Comparison, origin_s: float, fps: float,
                             corruption: Annotations) -> Annotations:
    """video.decode_error over the frames whose packets were damaged.

    A hit the decoder did not notice and that left no visible trace is not labelled (it
    would be a defect nobody can observe); it becomes an ignore zone instead.
    """
    ann = Annotations()
    frame_s = 1.0 / fps
    corrupt_times = np.flatnonzero(cmp.corrupt_flags) / fps
    ends = {round(lab.start_s, 6): lab.end_s for lab in corruption.labels}
    for touched in report.damaged_pts:
        if not touched:
            continue
        s = min(touched) / TS_CLOCK - origin_s
        e = max(touched) / TS_CLOCK - origin_s + frame_s
        # How far the damage reaches: until the corruption it caused ends.
        reach = max([end for start, end in ends.items() if s - 2 * frame_s <= start <= e + 2 * frame_s] + [e])
        lost_times = np.flatnonzero(np.isnan(cmp.areas)) / fps
        noticed = (
            np.any((corrupt_times >= s - frame_s) & (corrupt_times <= reach + frame_s))
            or np.any((lost_times >= s - frame_s) & (lost_times <= e + frame_s))
            or any(s - 0.5 <= t <= reach + 0.5 for t in cmp.decode_errors_s)
            or any(lab.start_s <= e + 2 * frame_s and lab.end_s >= s - frame_s for lab in corruption.labels)
        )
        if noticed:
            ann.labels.append(Label("video.decode_error", s, e, {"frames": len(touched)}))
        # Decoders report errors on the frames that follow too (missing references).
        ann.ignore.append(Ignore("video.decode_error", s - frame_s, reach + frame_s))
        for kind in ("ts.cc_error", "ts.transport_error", "ts.pts_error"):
            ann.ignore.append(Ignore(kind, s - 0.5, e + 0.5))
        # A lost PES header merges or drops frames: the decoded timestamps stumble and
        # frames go missing. A monitor may say so; it is the damage, not another defect.
        for kind in ("stream.discontinuity", "video.stutter"):
            ann.ignore.append(Ignore(kind, s - 0.5, reach + 0.5))
    return ann
