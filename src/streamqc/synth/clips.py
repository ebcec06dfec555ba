"""Real recordings from the shared media folder as content (never copied into the corpus).

A clip is decoded lazily, forward only, scaled to cover the case's picture and cropped,
so a 720p case does not hold seconds of decoded 720p frames in memory. Before use each
clip is screened: real footage has static shots and dark or silent stretches, which a
detector would rightly report but which carry no label. Only stretches free of them are
used, looped with a hard cut (a scene change, which is fine).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamqc.synth.audio import Loop, normalise, to_channels
from streamqc.synth.labels import Annotations, Ignore
from streamqc.synth.spec import AudioSpec, VideoSpec, planes

# Clips with motion and a known, decodable layout (see shared/media/MANIFEST.md).
VIDEO_CLIPS = (
    "LivePortrait/d6.mp4",
    "LivePortrait/d20.mp4",
    "LivePortrait/s18.mp4",
    "LivePortrait/d12.mp4",
    "moviepy/chaplin.mp4",
    "moviepy/big_buck_bunny_0_30.webm",
    "imageio-test_images/cockatoo.mp4",
    "ExoPlayer/sample_with_increasing_timestamps_360p.mp4",
    "SadTalker/WDA_KatieHill_000.mp4",
)
# Talking faces with their own, in-sync soundtrack: A/V sync content with known offsets.
FACE_CLIPS = (
    "LipNet-GRID/bbaf2n.mpg",
    "LipNet-GRID/brbk7n.mpg",
    "LipNet-GRID/id2_vcd_swwp2s.mpg",
    "LipNet-GRID/lbax4n.mpg",
    "LipNet-GRID/lbbc2a.mpg",
    "LipNet-GRID/lrwp9a.mpg",
    "LipNet-GRID/lwbsza.mpg",
    "LipNet-GRID/pwij3p.mpg",
    "LipNet-GRID/sbia1a.mpg",
    "LipNet-GRID/sbwe5n.mpg",
    "LipNet-GRID/swiz3n.mpg",
    "video-retalking/face_1.mp4",
    "video-retalking/face_2.mp4",
    "video-retalking/face_3.mp4",
    "video-retalking/face_4.mp4",
    "video-retalking/face_5.mp4",
    "SadTalker/WDA_AlexandriaOcasioCortez_000.mp4",
    "SadTalker/WDA_KatieHill_000.mp4",
)

# Clips whose own frames repeat (exact duplicates between moving pictures: d12 and d20 at
# irregular intervals, chaplin and d6 at a cadence). Resampled to a case's frame rate
# their repeats fall irregularly: real stutter that no label describes, so a case
# showing one of them does not score video.stutter false alarms.
REPEATING_CLIPS = frozenset({
    "LivePortrait/d12.mp4",
    "LivePortrait/d20.mp4",
    "LivePortrait/d6.mp4",
    "moviepy/chaplin.mp4",
})
AUDIO_CLIPS = (
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "librosa-data/3436-172162-0000.ogg",
    "librosa-data/5703-47212-0000.ogg",
    "librosa-data/198-209-0000.ogg",
)

SCREEN_WIDTH = 160
STATIC_DIFF = 1.0  # mean abs luma difference (8-bit) below which consecutive frames look still
STATIC_RUN_S = 0.8  # a still run this long is avoided: freeze detectors start at ~2 s
DARK_LUMA = 24.0


def default_media_dir() -> Path:
    env = os.environ.get("STREAMQC_MEDIA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "media"


@dataclasses.dataclass(frozen=True, slots=True)
class ClipInfo:
    path: Path
    fps: float
    frames: int
    good_first: int  # usable stretch [good_first, good_end) in decoded frame numbers
    good_end: int

    @property
    def good_s(self) -> float:
        return (self.good_end - self.good_first) / self.fps


@functools.lru_cache(maxsize=32)
def screen_video(path: Path) -> ClipInfo | None:
    """Find the longest stretch without still (>= 0.8 s) or near-black frames."""
    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            rate = vs.average_rate or vs.guessed_rate or 25
            fps = float(rate)
            prev = None
            bad: list[bool] = []
            diffs: list[float] = []
            for f in c.decode(vs):
                h = max(2, int(round(f.height * SCREEN_WIDTH / f.width / 2)) * 2)
                y = f.reformat(width=SCREEN_WIDTH, height=h, format="gray").to_ndarray().astype(np.int16)
                diffs.append(float(np.abs(y - prev).mean()) if prev is not None else 99.0)
                bad.append(float(y.mean()) < DARK_LUMA)
                prev = y
    except (av.FFmpegError, IndexError, OSError):
        return None
    n = len(diffs)
    if n < 10:
        return None
    still = np.asarray(diffs) < STATIC_DIFF
    run = int(STATIC_RUN_S * fps)
    badf = np.asarray(bad)
    # Mark every frame inside a still run that is too long.
    start = None
    for i in range(n + 1):
        s = i < n and still[i]
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i - start >= run:
                badf[max(0, start - 1) : i] = True
            start = None
    best = (0, 0)
    cur = None
    for i in range(n + 1):
        ok = i < n and not badf[i]
        if ok and cur is None:
            cur = i
        elif not ok and cur is not None:
            if i - cur > best[1] - best[0]:
                best = (cur, i)
            cur = None
    if best[1] - best[0] < 2 * fps:
        return None
    return ClipInfo(path, fps, n, best[0], best[1])


MIN_GOOD_S = 4.0


def present_clips(media_dir: Path | None) -> list[str]:
    """Clips of VIDEO_CLIPS present under media_dir (cheap: no decoding)."""
    if media_dir is None or not media_dir.is_dir():
        return []
    return [rel for rel in VIDEO_CLIPS if (media_dir / rel).is_file()]


def usable_clip(media_dir: Path, rel: str) -> ClipInfo | None:
    """The clip's screening, or None when it has less than MIN_GOOD_S of usable footage."""
    info = screen_video(media_dir / rel)
    return info if info is not None and info.good_s >= MIN_GOOD_S else None


class ClipContent:
    """Frames of a real clip at the case's size and rate, looping its usable stretch."""

    CACHE = 6

    def __init__(self, spec: VideoSpec, info: ClipInfo, start_s: float = 0.0) -> None:
        self.spec = spec
        self.info = info
        self._offset = int(start_s * info.fps)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._container: av.container.InputContainer | None = None
        self._iter = None
        self._next = 0  # decoded frame number the iterator yields next
        self.description = f"real clip {info.path.parent.name}/{info.path.name}"

    def _clip_frame(self, index: int) -> int:
        t = index / float(self.spec.fps)
        span = self.info.good_end - self.info.good_first
        return self.info.good_first + (self._offset + int(t * self.info.fps + 1e-6)) % span

    def _open(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = av.open(str(self.info.path))
        self._iter = self._container.decode(self._container.streams.video[0])
        self._next = 0

    def _fetch(self, n: int) -> np.ndarray:
        if n in self._cache:
            self._cache.move_to_end(n)
            return self._cache[n]
        if self._iter is None or n < self._next:
            self._open()
        pic = None
        while self._next <= n:
            f = next(self._iter)
            if self._next == n:
                pic = self._fit(f)
            self._next += 1
        assert pic is not None
        self._cache[n] = pic
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        return pic

    def _fit(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = self.spec.width, self.spec.height
        scale = max(w / frame.width, h / frame.height)
        sw = max(w, int(np.ceil(frame.width * scale / 2)) * 2)
        sh = max(h, int(np.ceil(frame.height * scale / 2)) * 2)
        f = frame.reformat(width=sw, height=sh, format="yuv420p")
        ox, oy = ((sw - w) // 2) & ~1, ((sh - h) // 2) & ~1
        pic = np.empty((h * 3 // 2, w), np.uint8)
        y, u, v = planes(pic, h)
        for dst, plane, sub in ((y, f.planes[0], 1), (u, f.planes[1], 2), (v, f.planes[2], 2)):
            rows = sh // sub
            arr = np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)
            dst[...] = arr[oy // sub : oy // sub + h // sub, ox // sub : ox // sub + w // sub]
        return pic

    def render(self, index: int) -> np.ndarray:
        return self._fetch(self._clip_frame(index)).copy()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


@functools.lru_cache(maxsize=16)
def _decoded_audio(path: Path, rate: int) -> np.ndarray | None:
    try:
        with av.open(str(path)) as c:
            res = av.AudioResampler(format="fltp", layout="mono", rate=rate)
            chunks = []
            for f in c.decode(audio=0):
                for g in res.resample(f):
                    chunks.append(g.to_ndarray()[0])
            for g in res.resample(None):
                chunks.append(g.to_ndarray()[0])
    except (av.FFmpegError, IndexError, OSError):
        return None
    return np.concatenate(chunks).astype(np.float32) if chunks else None


def real_audio(spec: AudioSpec, media_dir: Path, rel: str, seconds: float = 14.0) -> Loop | None:
    """A loop of a real recording's loudest usable stretch, normalised to -23 LUFS.

    Stretches with 1 s or more below -45 dBFS (after normalisation) are avoided: real
    endings and long pauses would be silence nobody labelled.
    """
    path = media_dir / rel
    if not path.is_file():
        return None
    mono = _decoded_audio(path, spec.sample_rate)
    if mono is None or len(mono) < spec.sample_rate * 3:
        return None
    sr = spec.sample_rate
    stereo = np.stack([mono, mono], axis=1)
    norm = normalise(stereo, sr)[:, 0]
    win = sr // 10
    usable = (len(norm) // win) * win
    rms = np.sqrt((norm[:usable] ** 2).reshape(-1, win).mean(axis=1) + 1e-12)
    quiet = 20 * np.log10(rms) < -45
    # Longest stretch with no quiet run of 1 s (10 windows) or more.
    bad = np.zeros_like(quiet)
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run >= 10:
            bad[i - run + 1 : i + 1] = True
    best, cur = (0, 0), None
    for i in range(len(bad) + 1):
        ok = i < len(bad) and not bad[i]
        if ok and cur is None:
            cur = i
        elif not ok and cur is not None:
            best = max(best, (cur, i), key=lambda r: r[1] - r[0])
            cur = None
    a, b = best[0] * win, min(best[1] * win, best[0] * win + int(seconds * sr))
    if b - a < 3 * sr:
        return None
    seg = to_channels(stereo[a:b], spec.channels)
    return Loop(spec, normalise(seg, sr), f"real recording {path.name}")


@dataclasses.dataclass(frozen=True, slots=True)
class FaceClip:
    """A whole talking-head clip: its picture format and its soundtrack, aligned."""

    info: ClipInfo
    spec: VideoSpec
    duration_s: float


def present_face_clips(media_dir: Path | None) -> list[str]:
    if media_dir is None or not media_dir.is_dir():
        return []
    return [rel for rel in FACE_CLIPS if (media_dir / rel).is_file()]


@functools.lru_cache(maxsize=32)
def face_clip(path: Path) -> FaceClip | None:
    """The clip played whole, at its own size (trimmed to fit yuv420p) and frame rate."""
    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            rate = Fraction(vs.average_rate or vs.guessed_rate or 25).limit_denominator(1001)
            has_audio = bool(c.streams.audio)
            frames = sum(1 for _ in c.decode(vs))
            width, height = vs.codec_context.width, vs.codec_context.height
    except (av.FFmpegError, IndexError, OSError):
        return None
    if frames < 10 or not has_audio:
        return None
    spec = VideoSpec(width & ~1, height & ~3, rate)
    return FaceClip(ClipInfo(path, float(rate), frames, 0, frames), spec, frames / float(rate))


class ClipSoundtrack:
    """A clip's own audio, sample 0 at its first video frame (as its timestamps place it)."""

    def __init__(self, spec: AudioSpec, path: Path) -> None:
        self.spec = spec
        self.description = "its own soundtrack"
        mono = _aligned_audio(path, spec.sample_rate)
        self._buffer = to_channels(mono if mono is not None else np.zeros(1, np.float32), spec.channels)

    def render(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((n, self.spec.channels), np.float32)
        lo, hi = max(start, 0), min(start + n, len(self._buffer))
        if lo < hi:
            out[lo - start : hi - start] = self._buffer[lo:hi]
        return out


@functools.lru_cache(maxsize=16)
def _aligned_audio(path: Path, rate: int) -> np.ndarray | None:
    """Mono audio at `rate`, padded or cut so that sample 0 plays with the first picture."""
    try:
        with av.open(str(path)) as c:
            first_video = next(f.time for f in c.decode(video=0) if f.time is not None)
        with av.open(str(path)) as c:
            res = av.AudioResampler(format="fltp", layout="mono", rate=rate)
            chunks, first_audio = [], None
            for f in c.decode(audio=0):
                if first_audio is None and f.time is not None:
                    first_audio = f.time
                chunks += [g.to_ndarray()[0] for g in res.resample(f)]
            chunks += [g.to_ndarray()[0] for g in res.resample(None)]
    except (av.FFmpegError, IndexError, OSError, StopIteration):
        return None
    if not chunks or first_audio is None:
        return None
    mono = np.concatenate(chunks).astype(np.float32)
    lead = int(round((first_audio - first_video) * rate))
    return np.concatenate([np.zeros(lead, np.float32), mono]) if lead >= 0 else mono[-lead:]

def own_repeats(video: object, duration_s: float) -> Annotations:
    """Ignore video.stutter over a case whose picture shows a clip of REPEATING_CLIPS."""
    pending, seen = [video], set()
    while pending:
        content = pending.pop()
        if content is None or id(content) in seen:
            continue
        seen.add(id(content))
        if isinstance(content, ClipContent):
            if f"{content.info.path.parent.name}/{content.info.path.name}" in REPEATING_CLIPS:
                return Annotations(ignore=[Ignore("video.stutter", 0.0, duration_s)])
        pending += list(getattr(content, "_sources", ())) + [getattr(content, "_base", None)]
    return Annotations()
