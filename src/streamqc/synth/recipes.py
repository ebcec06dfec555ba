"""Case recipes: which content, which defects where, which hard negatives.

A recipe turns a `CasePlan` (format and seed, chosen by corpus.py) into a `Built` case:
a scenario plus what the encoder and the post-processing steps must do. Recipes place
defects on a `Timeline` so they never overlap one another or the first/last second.

Durations follow the detectors' defaults (2 s minimum for freeze/black/silence):
defects of those kinds last 2.5-6 s, hard negatives of the same look under 1.5 s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

from streamqc.synth import audio as au
from streamqc.synth import clips
from streamqc.synth import content as ct
from streamqc.synth import defects as df
from streamqc.synth.encode import AudioCodec, VideoCodec
from streamqc.synth.labels import Annotations, HardNegative, Label
from streamqc.synth.scenario import Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec


@dataclasses.dataclass(frozen=True, slots=True)
class CasePlan:
    case_id: str
    recipe: str
    seed: int
    container: str  # ts | mp4 | mkv
    video: VideoSpec | None
    vcodec: VideoCodec | None
    audio: AudioSpec | None
    acodec: AudioCodec | None
    duration_s: float
    corpus_seed: int = 0


@dataclasses.dataclass
class Built:
    scenario: Scenario
    content: str
    extra: Annotations = dataclasses.field(default_factory=Annotations)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    # What happens after the clean encode: "damage", "bake", "jump" (see corpus.py).
    post: dict[str, Any] = dataclasses.field(default_factory=dict)
    keyframes: list[int] = dataclasses.field(default_factory=list)
    # Overrides of the plan decided by the recipe (e.g. a short GOP).
    vcodec: VideoCodec | None = None


class Timeline:
    """Free time on one track; `place` reserves a random interval with gaps around it."""

    def __init__(self, duration_s: float, rng: np.random.Generator, margin_s: float = 1.0) -> None:
        self.duration_s = duration_s
        self.rng = rng
        self.margin_s = margin_s
        self.busy: list[tuple[float, float]] = []

    def place(self, length_s: float, gap_s: float = 1.0) -> float:
        """A start for `length_s`, at least gap_s clear of everything placed so far."""
        # The margins at both ends are gaps already; placed intervals need gap_s around.
        busy = [(-1e9, self.margin_s - gap_s)] + sorted(self.busy) + [(self.duration_s - self.margin_s + gap_s, 1e9)]
        ranges = []  # feasible start ranges
        for (_, a_end), (b_start, _) in zip(busy, busy[1:]):
            lo, hi = a_end + gap_s, b_start - gap_s - length_s
            if hi >= lo:
                ranges.append((lo, hi))
        if not ranges:
            raise ValueError(f"no room for {length_s:.2f} s in {self.duration_s:.1f} s")
        widths = np.array([hi - lo + 1e-3 for lo, hi in ranges])
        lo, hi = ranges[int(self.rng.choice(len(ranges), p=widths / widths.sum()))]
        start = float(np.floor(self.rng.uniform(lo, hi) * 100) / 100)
        start = min(max(start, lo), hi)
        self.busy.append((start, start + length_s))
        return start

    def try_place(self, length_s: float, gap_s: float = 1.0) -> float | None:
        try:
            return self.place(length_s, gap_s)
        except ValueError:
            return None

    def longest(self, lo_s: float, hi_s: float) -> float:
        """A random defect length in [lo_s, hi_s], shortened for short cases."""
        return float(self.rng.uniform(lo_s, max(lo_s, min(hi_s, 0.4 * self.duration_s))))


# --- content pickers -------------------------------------------------------------------------


def _real_clip(spec: VideoSpec, rng: np.random.Generator, media: Path | None) -> ct.VideoContent | None:
    names = clips.present_clips(media)
    if not names:
        return None
    for rel in rng.permutation(names):
        info = clips.usable_clip(media, str(rel))  # type: ignore[arg-type]
        if info is not None:
            return clips.ClipContent(spec, info, start_s=float(rng.uniform(0, info.good_s)))
    return None


def moving_content(spec: VideoSpec, seed: int, rng: np.random.Generator, media: Path | None,
                   duration_s: float, real_ok: bool = True) -> ct.VideoContent:
    """Content that moves everywhere, all the time: what freezes and stutters are seen on."""
    grain = float(rng.choice([0.0, 0.0, 1.5, 3.0]))
    choice = int(rng.integers(4)) if not (real_ok and media) else int(rng.integers(5))
    if choice == 4:
        clip = _real_clip(spec, rng, media)
        if clip is not None:
            return clip
        choice = 0
    if choice == 0:
        return ct.TexturePan(spec, seed, speed_px_s=float(rng.uniform(60, 300)) * spec.width / 1280, grain_sigma=grain)
    if choice == 1:
        return ct.MovingObjects(spec, seed, count=int(rng.integers(3, 8)), grain_sigma=grain)
    # Scene cuts every 3-6 s between moving sources.
    scenes: list[tuple[int, ct.VideoContent]] = []
    t, n = 0.0, 0
    while t < duration_s:
        if n % 2 == 0:
            speed = float(rng.uniform(60, 300)) * spec.width / 1280
            src: ct.VideoContent = ct.TexturePan(spec, seed + 100 * n, speed_px_s=speed)
        else:
            src = ct.MovingObjects(spec, seed + 100 * n, count=int(rng.integers(2, 6)))
        scenes.append((spec.index_at(t), src))
        t += float(rng.uniform(3, 6))
        n += 1
    return ct.SceneCuts(spec, scenes)


def programme_audio(spec: AudioSpec, seed: int, rng: np.random.Generator, media: Path | None,
                    kinds: tuple[str, ...] = ("music", "speech", "mix", "noise", "real")) -> au.AudioContent:
    kind = str(rng.choice(list(kinds)))
    if kind == "real" and media is not None:
        rels = [r for r in clips.AUDIO_CLIPS if (media / r).is_file()]
        if rels:
            loop = clips.real_audio(spec, media, str(rng.choice(rels)))
            if loop is not None:
                return loop
    if kind == "real":
        kind = "music"
    return au.programme(spec, seed, kind, seconds=float(rng.uniform(10, 14)))


def _frames(spec: VideoSpec, start_s: float, length_s: float) -> tuple[int, int]:
    first = spec.index_at(start_s)
    return first, max(first + 1, spec.index_at(start_s + length_s))


def _samples(spec: AudioSpec, start_s: float, length_s: float) -> tuple[int, int]:
    return spec.sample_at(start_s), spec.sample_at(start_s + length_s)


# --- recipes ---------------------------------------------------------------------------------

Recipe = Callable[[CasePlan, np.random.Generator, "Path | None"], Built]


def freeze(plan: CasePlan, rng: np.random.Generator, media: Path | None, short_gop: bool = False) -> Built:
    """1-2 freezes (exact or with sensor noise) on moving content; audio dropouts; a short fade."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    vt, at = Timeline(d, rng), Timeline(d, rng)
    defects: list[df.Defect] = []
    for n in range(1 if d < 14 else 2):
        length = vt.longest(2.5, 6.0 if d >= 12 else 4.0)
        first, end = _frames(v, vt.place(length), length)
        noise = float(rng.choice([0.0, 2.0, 3.5]))
        defects.append(df.Freeze(first, end, noise_sigma=noise, seed=plan.seed + n))
    length = float(rng.uniform(0.3, 1.0))
    start = vt.try_place(length + 0.6, gap_s=0.5)
    if start is not None:
        first, end = _frames(v, start + 0.3, length)
        defects.append(df.Black(first, end, ramp_frames=int(float(v.fps) * 0.3), negative=True, seed=plan.seed))
    for _ in range(int(rng.integers(1, 4))):
        length = float(rng.uniform(0.02, 0.8))
        start = at.try_place(length, gap_s=0.8)
        if start is not None:
            s0, s1 = _samples(a, start, length)
            defects.append(df.Dropout(s0, s1))
    vcodec = None
    if short_gop and plan.vcodec is not None:
        # Keyframes every ~0.5 s at a low bitrate: each one visibly refreshes the frozen
        # picture, the case FFmpeg's freezedetect misses.
        vcodec = dataclasses.replace(plan.vcodec, gop_frames=max(6, int(float(v.fps) * 0.5)),
                                     bitrate_bps=plan.vcodec.bitrate_bps // 2)
    return Built(Scenario(video, prog, d, defects), f"{video.description} + {prog.description}", vcodec=vcodec)


def freeze_keyframes(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    return freeze(plan, rng, media, short_gop=True)


def black(plan: CasePlan, rng: np.random.Generator, media: Path | None, logo: bool = False) -> Built:
    """Black (optionally with a logo) 2.5-6 s; a short fade to black; dark scenes; silence."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    vt, at = Timeline(d, rng), Timeline(d, rng)
    extra = Annotations()
    # Scenes alternate ordinary and night content: the night ones must not read as black.
    scenes: list[tuple[int, ct.VideoContent]] = []
    t, n = 0.0, 0
    while t < d:
        length = float(rng.uniform(3, 7))
        if n % 2 == 1:
            src: ct.VideoContent = ct.TexturePan(v, plan.seed + n, speed_px_s=float(rng.uniform(20, 80)), night=True,
                                                 grain_sigma=float(rng.choice([0.0, 1.0, 2.0])))
            extra.hard_negatives.append(HardNegative("dark detailed scene (luma 16-45)", t, min(d, t + length)))
        else:
            src = moving_content(v, plan.seed + n, rng, media, d)
        scenes.append((v.index_at(t), src))
        t += length
        n += 1
    video = ct.SceneCuts(v, scenes)
    prog = programme_audio(a, plan.seed, rng, media)
    defects: list[df.Defect] = []
    length = vt.longest(2.5, 6.0)
    first, end = _frames(v, vt.place(length), length)
    area = float(rng.uniform(0.02, 0.05)) if logo else 0.0
    defects.append(df.Black(first, end, logo_area=area, ramp_frames=int(rng.choice([0, 0, 3])), seed=plan.seed))
    length = float(rng.uniform(0.3, 1.2))
    start = vt.try_place(length + 0.8, gap_s=0.5)
    if start is not None:
        first, end = _frames(v, start + 0.4, length)
        defects.append(df.Black(first, end, ramp_frames=int(float(v.fps) * 0.4), negative=True, seed=plan.seed))
    if d >= 10:
        length = at.longest(2.5, 5.0)
        s0, s1 = _samples(a, at.place(length), length)
        defects.append(df.Silence(s0, s1, floor_dbfs=None if rng.random() < 0.5 else -75.0, seed=plan.seed))
    return Built(Scenario(video, prog, d, defects), f"{video.description} + {prog.description}", extra=extra)


def black_logo(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    return black(plan, rng, media, logo=True)


def silence(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """Digital-zero and low-floor (-75 dBFS) silences; a quiet (-50 dBFS) passage; a short pause."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert a is not None
    at = Timeline(d, rng)
    video = moving_content(v, plan.seed, rng, media, d) if v is not None else None
    prog = programme_audio(a, plan.seed, rng, media)
    defects: list[df.Defect] = []
    floors = [None, -75.0] if d >= 14 else [None if rng.random() < 0.5 else float(rng.choice([-75.0, -70.0]))]
    for floor in floors:
        length = at.longest(2.5, 5.0 if len(floors) == 1 else 3.5)
        s0, s1 = _samples(a, at.place(length), length)
        defects.append(df.Silence(s0, s1, floor_dbfs=floor, seed=plan.seed))
    # Programme at -23 LUFS turned down ~27 dB: about -50 dBFS, quiet but present.
    length = float(rng.uniform(2.0, 3.0))
    start = at.try_place(length, gap_s=0.8)
    if start is not None:
        s0, s1 = _samples(a, start, length)
        defects.append(df.Attenuate(s0, s1, gain_db=-27.0, what="quiet but present audio (about -50 dBFS)"))
    length = float(rng.uniform(0.4, 1.2))
    start = at.try_place(length, gap_s=0.5)
    if start is not None:
        s0, s1 = _samples(a, start, length)
        defects.append(df.Silence(s0, s1, floor_dbfs=-70.0, ramp=int(0.04 * a.sample_rate), negative=True,
                                  seed=plan.seed))
    desc = (video.description + " + " if video else "") + prog.description
    return Built(Scenario(video, prog, d, defects), desc)


def dropouts(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """3-5 digital-silence gaps of 20 ms-1 s in programme audio; short programme pauses."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert a is not None
    at = Timeline(d, rng)
    video = moving_content(v, plan.seed, rng, media, d) if v is not None else None
    prog = programme_audio(a, plan.seed, rng, media, kinds=("music", "speech", "mix", "real"))
    defects: list[df.Defect] = []
    lengths = [0.02, 0.05, 0.15, 0.4, 1.0]
    for length in list(rng.permutation(lengths))[: int(rng.integers(3, 6))]:
        length = float(length) * float(rng.uniform(1.0, 1.2))
        start = at.try_place(length, gap_s=0.7)
        if start is not None:
            s0, s1 = _samples(a, start, length)
            defects.append(df.Dropout(s0, s1))
    for _ in range(2):
        length = float(rng.uniform(0.4, 1.2))
        start = at.try_place(length, gap_s=0.5)
        if start is None:
            break
        s0, s1 = _samples(a, start, length)
        defects.append(df.Silence(s0, s1, floor_dbfs=float(rng.uniform(-72, -62)), ramp=int(0.05 * a.sample_rate),
                                  negative=True, seed=plan.seed))
    desc = (video.description + " + " if video else "") + prog.description
    return Built(Scenario(video, prog, d, defects), desc)


def slide(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """A static slide with a small moving element (not a freeze), cut with moving content."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    extra = Annotations()
    slide_s = float(rng.uniform(5, min(10, d - 3)))
    start = float(rng.uniform(1, d - slide_s - 1))
    other = moving_content(v, plan.seed, rng, media, d, real_ok=False)
    sl = ct.Slide(v, plan.seed, element_area=float(rng.uniform(0.004, 0.02)))
    video = ct.SceneCuts(v, [(0, other), (v.index_at(start), sl), (v.index_at(start + slide_s), other)])
    extra.hard_negatives.append(HardNegative(sl.description, start, start + slide_s))
    prog = programme_audio(a, plan.seed, rng, media, kinds=("speech", "real"))
    vt = Timeline(d, rng)
    vt.busy.append((start, start + slide_s))
    defects: list[df.Defect] = []
    try:
        length = float(rng.uniform(2.5, 4.0))
        first, end = _frames(v, vt.place(length, gap_s=0.5), length)
        defects.append(df.Freeze(first, end, seed=plan.seed))
    except ValueError:
        pass  # a short case: the slide alone is the point
    return Built(Scenario(video, prog, d, defects), f"{video.description} + {prog.description}", extra=extra)


# Frame-rate conversions a channel carries: (new pictures, in every so many frames, what).
CADENCES = (
    (4, 5, "24/25 fps material at 30 fps: a duplicate in every 5 frames"),
    (5, 6, "25 fps material at 30 fps: a duplicate in every 6 frames"),
    (12, 25, "24 fps film at 50 fps: every picture twice, one in 12 three times"),
    (2, 5, "3:2 pulldown: 24 fps film at 60 fps"),
    (1, 2, "25 fps material at 50 fps: every picture twice"),
)


def cadence(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """Duplicate frames on a frame-rate conversion's schedule throughout: not a freeze, not a stutter."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    base = moving_content(v, plan.seed, rng, media, d, real_ok=False)
    # Its own generator: the rest of the case is drawn as before the schedules were added.
    new, every, what = CADENCES[int(np.random.default_rng([plan.seed, 41]).integers(len(CADENCES)))]
    video = ct.Cadence(base, every=every, new=new)
    extra = Annotations(hard_negatives=[HardNegative(f"periodic duplicate frames ({what})", 0.0, d)])
    vt = Timeline(d, rng)
    length = vt.longest(2.5, 5.0)
    first, end = _frames(v, vt.place(length), length)
    prog = programme_audio(a, plan.seed, rng, media)
    return Built(Scenario(video, prog, d, [df.Freeze(first, end, seed=plan.seed)]),
                 f"{video.description} + {prog.description}", extra=extra)


def calm(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """No defect at all: slow gradients, night scenes, quiet passages. Pure hard negatives."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    extra = Annotations()
    scenes: list[tuple[int, ct.VideoContent]] = []
    t, n = 0.0, 0
    while t < d:
        length = float(rng.uniform(4, 8))
        kind = n % 3
        if kind == 0:
            src: ct.VideoContent = ct.Gradient(v, plan.seed + n, period_s=float(rng.uniform(15, 40)),
                                              grain_sigma=float(rng.choice([0.0, 1.0])))
            extra.hard_negatives.append(HardNegative("slow gradient drift", t, min(d, t + length)))
        elif kind == 1:
            src = ct.TexturePan(v, plan.seed + n, speed_px_s=float(rng.uniform(15, 60)), night=True, grain_sigma=1.5)
            extra.hard_negatives.append(HardNegative("dark detailed scene (luma 16-45)", t, min(d, t + length)))
        else:
            src = moving_content(v, plan.seed + n, rng, media, d)
        scenes.append((v.index_at(t), src))
        t += length
        n += 1
    video = ct.SceneCuts(v, scenes)
    prog = programme_audio(a, plan.seed, rng, media)
    at = Timeline(d, rng)
    length = at.longest(2.0, 4.0)
    s0, s1 = _samples(a, at.place(length), length)
    defects: list[df.Defect] = [df.Attenuate(s0, s1, gain_db=-27.0, what="quiet but present audio (about -50 dBFS)")]
    return Built(Scenario(video, prog, d, defects), f"{video.description} + {prog.description}", extra=extra)


def corruption(plan: CasePlan, rng: np.random.Generator, media: Path | None, mode: str = "drop",
               bake: bool = False) -> Built:
    """2-4 damage hits on detailed moving content: TS packets of the video PID dropped or flipped.

    The labels come from decoding (corpus.py + damage.py), not from here. `bake` re-encodes
    the damaged pictures cleanly into the plan's container.
    """
    from streamqc.synth.damage import Hit  # damage.py imports labels only; no cycle

    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    vt = Timeline(d, rng, margin_s=1.5)
    hits = []
    for _ in range(int(rng.integers(2, 5))):
        at = vt.try_place(0.5, gap_s=2.0)
        if at is None:
            break
        m = mode if mode != "mixed" else str(rng.choice(["drop", "flip"]))
        n = int(rng.integers(3, 40)) if m == "drop" else int(rng.integers(1, 8))
        hits.append(Hit(at, m, n))
    hits.sort(key=lambda h: h.at_s)
    what = "baked-in corruption (damaged decode re-encoded)" if bake else f"TS packets {mode}"
    vcodec = None
    if bake and plan.vcodec is not None and plan.vcodec.name == "hevc":
        vcodec = dataclasses.replace(plan.vcodec, name="h264")  # two x265 passes cost too much
    return Built(Scenario(video, prog, d), f"{video.description} + {prog.description}; {what}",
                 post={"damage": hits, "bake": bake}, vcodec=vcodec)


def corrupt_drop(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    return corruption(plan, rng, media, "drop")


def corrupt_flip(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    return corruption(plan, rng, media, "flip")


def corrupt_baked(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    return corruption(plan, rng, media, "mixed", bake=True)


def lowbitrate(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """No defect: detailed moving content starved of bits (1/8 to 1/4 of the corpus rate).

    Coding blockiness and smearing at a clean low bitrate are what a corruption detector
    must not call corruption: a hard negative over the whole case.
    """
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None and plan.vcodec is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    share = float(rng.uniform(1 / 8, 1 / 4))
    vcodec = dataclasses.replace(plan.vcodec, bitrate_bps=max(50_000, int(plan.vcodec.bitrate_bps * share)))
    what = f"clean low-bitrate encode ({vcodec.bitrate_bps // 1000} kb/s)"
    extra = Annotations(hard_negatives=[HardNegative(what, 0.0, d)])
    return Built(Scenario(video, prog, d), f"{video.description} + {prog.description}; {what}",
                 extra=extra, vcodec=vcodec)


def discontinuity(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """PTS jumps (forward and/or backward) of video and audio together; the picture goes on."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    vt = Timeline(d, rng, margin_s=2.0)
    jumps: list[df.Defect] = []
    forward_first = bool(rng.random() < 0.5)
    for n in range(1 if d < 12 else 2):
        at = vt.try_place(0.1, gap_s=3.0)
        if at is None:
            break
        forward = (n == 0) == forward_first
        jump = float(rng.uniform(1.5, 30.0)) if forward else -float(rng.uniform(1.0, 6.0))
        jumps.append(df.Discontinuity(v.index_at(at), round(jump, 3)))
    jumps.sort(key=lambda j: j.frame)  # type: ignore[attr-defined]
    return Built(Scenario(video, prog, d, jumps), f"{video.description} + {prog.description}",
                 post={"jump": True, "ts_offset_s": 20.0},
                 keyframes=[j.frame for j in jumps])  # type: ignore[attr-defined]


def format_change(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """The picture size changes mid-stream, same PID, continuous timestamps."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None and plan.vcodec is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    sizes = [(640, 360), (960, 540), (1280, 720), (720, 576), (854, 480)]
    others = [s for s in sizes if s != (v.width, v.height) and s[1] <= max(v.height, 540)]
    w, h = others[int(rng.integers(len(others)))]
    at = float(rng.uniform(0.35, 0.65)) * d
    change = df.FormatChange(v.index_at(at), w, h, from_size=(v.width, v.height))
    vcodec = dataclasses.replace(plan.vcodec, bframes=0)  # the second encoder must follow on
    return Built(Scenario(video, prog, d, [change]), f"{video.description} + {prog.description}",
                 vcodec=vcodec, keyframes=[change.frame])


def audio_loss(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """Audio packets stop mid-way while the video goes on."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    # Lost for 4 s at least where the case allows: stream.missing_track calls a track
    # lost after 3 s without it (`lost_after_s`), and the label must be a defect by that.
    latest = max(0.4, min(0.75, 1.0 - 4.0 / d))
    stop = a.sample_at(float(rng.uniform(0.4, latest)) * d)
    return Built(Scenario(video, prog, d, [df.AudioLoss(stop, d)]), f"{video.description} + {prog.description}",
                 post={"audio_loss": True})


def video_only(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """A file without an audio stream, on a channel that must carry both: the absent track over [0, end]."""
    v, d = plan.video, plan.duration_s
    assert v is not None
    video = moving_content(v, plan.seed, rng, media, d)
    vt = Timeline(d, rng)
    defects: list[df.Defect] = []
    length = vt.longest(2.5, 4.0)
    start = vt.try_place(length)
    if start is not None:
        first, end = _frames(v, start, length)
        defects.append(df.Freeze(first, end, noise_sigma=float(rng.choice([0.0, 2.0])), seed=plan.seed))
    extra = Annotations(labels=[Label("stream.missing_track", 0.0, d, {"track": "audio", "absent": True})])
    # A monitored channel must carry both tracks; `check` alone expects what the file declares.
    return Built(Scenario(video, None, d, defects), f"{video.description}; no audio stream", extra=extra,
                 options={"missing_track": {"expect": "video,audio"}})


def audio_only(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """A file without a video stream: the absent track over [0, end], plus audio defects."""
    a, d = plan.audio, plan.duration_s
    assert a is not None
    prog = programme_audio(a, plan.seed, rng, media)
    at = Timeline(d, rng)
    defects: list[df.Defect] = []
    length = at.longest(2.5, 4.0)
    start = at.try_place(length)
    if start is not None:
        s0, s1 = _samples(a, start, length)
        defects.append(df.Silence(s0, s1, floor_dbfs=None if rng.random() < 0.5 else -75.0, seed=plan.seed))
    for _ in range(2):
        length = float(rng.uniform(0.03, 0.5))
        start = at.try_place(length, gap_s=0.7)
        if start is not None:
            s0, s1 = _samples(a, start, length)
            defects.append(df.Dropout(s0, s1))
    # On the check clock already (0 = first audio sample here): not moved with the audio.
    extra = Annotations(labels=[Label("stream.missing_track", 0.0, d, {"track": "video", "absent": True})])
    return Built(Scenario(None, prog, d, defects), f"{prog.description}; no video stream", extra=extra,
                 options={"missing_track": {"expect": "video,audio"}})


def av_sync(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """Flashes and beeps at the same instants in moving content, then the audio shifted.

    Offsets beyond BT.1359 (lag > 125 ms, lead > 45 ms) are labels; some cases carry a
    small offset inside the tolerance as a hard negative instead.
    """
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    base = moving_content(v, plan.seed, rng, media, d)
    # Irregular intervals: a periodic pattern would let a lag of one period look like sync.
    times, t = [], float(rng.uniform(0.5, 1.5))
    while t < d - 0.5:
        times.append(t)
        t += float(rng.uniform(1.2, 2.6))
    frames = [v.index_at(x) for x in times]
    video = ct.Flashes(base, frames)
    prog = au.Beeps(programme_audio(a, plan.seed, rng, media, kinds=("music", "speech", "noise")),
                    [a.sample_at(v.time_of(i)) for i in frames], level_dbfs=-9)
    kind = int(rng.integers(3))
    if kind == 0:
        offset = float(rng.uniform(150, 400))
    elif kind == 1:
        offset = -float(rng.uniform(70, 200))
    else:
        offset = float(rng.choice([-1, 1])) * float(rng.uniform(10, 35))
    offset = round(offset)
    return Built(Scenario(video, prog, d, [df.AvOffset(offset, a.sample_rate, d)]),
                 f"{video.description} + {prog.description}")


FACE_OFFSETS_MS = (-400, -200, -100, -40, 40, 100, 200, 400)


def av_sync_face(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """A real talking head (GRID, video-retalking, SadTalker) played whole at its own size
    and rate, with its own soundtrack shifted by a known amount (+-40 to +-400 ms).

    Shifts inside the BT.1359 tolerance are hard negatives. Without the clips (no
    STREAMQC_MEDIA) the case is an `av_sync` case instead, and says so in its content.
    """
    a = plan.audio
    assert a is not None
    rels = clips.present_face_clips(media)
    offset = float(rng.choice(FACE_OFFSETS_MS))
    for rel in rng.permutation(rels) if rels else ():
        built = face_case(media / str(rel), offset, a)  # type: ignore[operator]
        if built is not None:
            return built
    built = av_sync(plan, rng, media)
    built.content = "no face clips (STREAMQC_MEDIA absent): " + built.content
    return built


def face_case(path: Path, offset_ms: float, audio: AudioSpec) -> Built | None:
    """One face clip with its soundtrack shifted by offset_ms (positive: audio late)."""
    face = clips.face_clip(path)
    if face is None:
        return None
    video = clips.ClipContent(face.spec, face.info)
    prog = clips.ClipSoundtrack(audio, face.info.path)
    d = face.duration_s
    return Built(Scenario(video, prog, d, [df.AvOffset(offset_ms, audio.sample_rate, d)]),
                 f"{video.description} + {prog.description}, shifted {offset_ms:+.0f} ms")


def clipping(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """1-2 passages driven into full scale, on one channel or both."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert a is not None
    video = moving_content(v, plan.seed, rng, media, d) if v is not None else None
    prog = programme_audio(a, plan.seed, rng, media, kinds=("music", "mix", "real"))
    at = Timeline(d, rng)
    defects: list[df.Defect] = []
    for _ in range(int(rng.integers(1, 3))):
        length = float(rng.uniform(1.0, 3.0))
        start = at.try_place(length)
        if start is None:
            break
        s0, s1 = _samples(a, start, length)
        chans = [(0,), (1,), (0, 1)][int(rng.integers(3))] if a.channels == 2 else (0,)
        # Enough gain that 20-40% of the samples sit flat at full scale: sustained
        # clipping, not the odd overshoot of a hot peak.
        p80 = float(np.percentile(np.abs(prog.render(s0, s1 - s0)), 80))
        gain = 20 * np.log10(1.0 / max(p80, 1e-3)) + float(rng.uniform(1, 5))
        defects.append(df.Clipping(s0, s1, chans, gain_db=round(gain, 1)))
    desc = (video.description + " + " if video else "") + prog.description
    return Built(Scenario(video, prog, d, defects), desc)


def clicks(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """3-6 isolated clicks (impulses and short steps) in smooth programme audio."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert a is not None
    video = moving_content(v, plan.seed, rng, media, d) if v is not None else None
    prog = programme_audio(a, plan.seed, rng, media, kinds=("music", "speech", "noise"))
    at = Timeline(d, rng)
    positions = []
    for _ in range(int(rng.integers(3, 7))):
        start = at.try_place(0.01, gap_s=0.8)
        if start is not None:
            positions.append(a.sample_at(start))
    defects: list[df.Defect] = [df.Clicks(sorted(positions), amplitude=float(rng.uniform(0.6, 0.95)), seed=plan.seed)]
    desc = (video.description + " + " if video else "") + prog.description
    return Built(Scenario(video, prog, d, defects), desc)


def loudness(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """The whole programme far from -23 LUFS: hot (about -12) or quiet (about -37)."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert a is not None
    video = moving_content(v, plan.seed, rng, media, d) if v is not None else None
    prog = programme_audio(a, plan.seed, rng, media)
    gain = float(rng.uniform(10, 13)) if rng.random() < 0.5 else -float(rng.uniform(10, 16))
    desc = (video.description + " + " if video else "") + prog.description
    return Built(Scenario(video, prog, d, [df.Loudness(round(gain, 1), d)]), desc, post={"measure_lufs": True})


def stutter(plan: CasePlan, rng: np.random.Generator, media: Path | None) -> Built:
    """Frames repeated and skipped irregularly for a few seconds of a steady pan."""
    v, a, d = plan.video, plan.audio, plan.duration_s
    assert v is not None and a is not None
    video: ct.VideoContent = ct.TexturePan(v, plan.seed, speed_px_s=float(rng.uniform(4, 10)) * float(v.fps))
    if media is not None and rng.random() < 0.3:
        video = moving_content(v, plan.seed, rng, media, d)
    prog = programme_audio(a, plan.seed, rng, media)
    vt = Timeline(d, rng)
    defects: list[df.Defect] = []
    for n in range(1 if d < 14 else 2):
        length = vt.longest(2.0, 5.0)
        start = vt.try_place(length, gap_s=1.5)
        if start is None:
            break
        first, end = _frames(v, start, length)
        defects.append(df.Stutter(first, end, events=int(rng.integers(3, 7)), seed=plan.seed + n))
    return Built(Scenario(video, prog, d, defects), f"{video.description} + {prog.description}")


RECIPES: dict[str, Recipe] = {
    "av_sync": av_sync,
    "av_sync_face": av_sync_face,
    "clipping": clipping,
    "clicks": clicks,
    "loudness": loudness,
    "stutter": stutter,
    "discontinuity": discontinuity,
    "format_change": format_change,
    "audio_loss": audio_loss,
    "video_only": video_only,
    "audio_only": audio_only,
    "corrupt_drop": corrupt_drop,
    "corrupt_flip": corrupt_flip,
    "corrupt_baked": corrupt_baked,
    "lowbitrate": lowbitrate,
    "freeze": freeze,
    "black": black,
    "silence": silence,
    "dropouts": dropouts,
    "freeze_keyframes": freeze_keyframes,
    "black_logo": black_logo,
    "slide": slide,
    "cadence": cadence,
    "calm": calm,
}


def live_segment(seed: int, n: int, video: VideoSpec, audio: AudioSpec, duration_s: float) -> Scenario:
    """Segment n of a live channel: a random recipe at the channel's format, no post steps."""
    # Post steps need a finished file; a live channel keeps its format and both tracks.
    names = [k for k in RECIPES if not k.startswith("corrupt") and k not in
             ("lowbitrate", "discontinuity", "format_change", "audio_loss", "video_only", "audio_only", "av_sync_face")]
    rng = np.random.default_rng([seed, n, 7])
    name = str(rng.choice(names))
    plan = CasePlan(f"live-{n}", name, seed * 1000 + n, "ts", video, None, audio, None, duration_s)
    sc = RECIPES[name](plan, rng, None).scenario
    if sc.audio is not None:
        sc.audio = au.levelled(sc.audio, duration_s)
    return sc
