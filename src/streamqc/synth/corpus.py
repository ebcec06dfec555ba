"""Build a labelled corpus: plan the cases, build each (two at a time), write the manifest.

Format choices rotate through fixed cycles offset by the seed, so any 48 consecutive
cases cover every codec, container and frame rate; the seed also drives every random
choice inside a case. Each case is built from its own seed, in its own process: the
corpus is identical whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

import streamqc
from streamqc.synth import audio as au
from streamqc.synth import clips, damage, recipes, verify
from streamqc.synth.encode import AudioCodec, EncoderSink, VideoCodec, encode_scenario
from streamqc.synth.labels import Annotations, Ignore
from streamqc.synth.recipes import CasePlan
from streamqc.synth.spec import AudioSpec, VideoSpec

# Recipe order: the first cases of a small corpus already cover the most important kinds.
ORDER = (
    "freeze", "black", "corrupt_drop", "silence", "dropouts", "corrupt_flip", "freeze_keyframes",
    "black_logo", "corrupt_baked", "discontinuity", "format_change", "audio_loss", "slide",
    "video_only", "audio_only", "cadence", "calm", "av_sync", "clipping", "clicks", "loudness",
    "stutter", "freeze", "av_sync",
)  # 24 entries: a 48-case corpus is exactly two rounds

RESOLUTIONS = ((640, 360), (960, 540), (1280, 720), (854, 480), (1280, 720), (640, 360), (1920, 1080))
FRAME_RATES = (Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50), Fraction(60000, 1001))
VIDEO_CODECS = ("h264", "hevc", "h264", "mpeg2video")
AUDIO_CODECS = ("aac", "mp2", "ac3", "aac")
CONTAINERS = ("ts", "mp4", "ts", "mkv")
EXTENSIONS = {"ts": "ts", "mp4": "mp4", "mkv": "mkv"}
BITRATE_PER_PIXEL_FRAME = 0.1  # bits; ~2.8 Mb/s for 720p30 H.264, enough to keep detail
REQUIRES_TS = frozenset({"corrupt_drop", "corrupt_flip", "discontinuity", "format_change"})


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """Size limits of a corpus: FULL for evaluation, SMALL for quick tests."""

    max_height: int = 1080
    min_duration_s: float = 8.0
    max_duration_s: float = 20.0


FULL = Profile()
SMALL = Profile(max_height=240, min_duration_s=6.0, max_duration_s=7.0)


def _case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def plan_case(seed: int, index: int, recipe: str, profile: Profile = FULL) -> CasePlan:
    rng = np.random.default_rng([seed, index, 99])
    c = index + seed
    width, height = RESOLUTIONS[(3 * c) % len(RESOLUTIONS)]
    fps = FRAME_RATES[(c + c // 5) % len(FRAME_RATES)]
    vname = VIDEO_CODECS[c % len(VIDEO_CODECS)]
    aname = AUDIO_CODECS[(c // 2) % len(AUDIO_CODECS)]
    container = CONTAINERS[(c + c // 4) % len(CONTAINERS)]
    if recipe in REQUIRES_TS:
        container = "ts"
    duration = float(rng.uniform(profile.min_duration_s, profile.max_duration_s))
    if vname == "hevc":
        # x265 is ~5x slower than x264 here: keep HEVC cases small.
        width, height = min((width, height), (960, 540))
        fps = min(fps, Fraction(30))
        duration = min(duration, 12.0)
    if height >= 1080:
        fps = min(fps, Fraction(30))
        duration = float(rng.uniform(8, 10))
    if fps > 30:
        width, height = min((width, height), (1280, 720))
        duration = min(duration, 12.0)
    if height > profile.max_height:
        width, height = (width * profile.max_height // height) & ~1, profile.max_height
        duration = min(duration, profile.max_duration_s)
    video = VideoSpec(width, height, fps)
    frames = int(round(duration * float(fps)))
    duration = float(Fraction(frames) / fps)
    bframes = int(rng.choice([0, 2, 3])) if vname != "mpeg2video" else int(rng.choice([0, 2]))
    rate = float(fps) * width * height * BITRATE_PER_PIXEL_FRAME
    if vname == "mpeg2video":
        rate *= 1.8
    gop = int(round(float(fps) * float(rng.choice([1.0, 2.0]))))
    vcodec = VideoCodec(vname, bitrate_bps=int(rate), gop_frames=gop, bframes=bframes)
    sample_rate = 44100 if (aname != "ac3" and c % 5 == 2) else 48000
    channels = 1 if c % 7 == 3 else 2
    abit = {"aac": 160_000, "mp2": 224_000, "ac3": 192_000}[aname] // (2 if channels == 1 else 1)
    return CasePlan(
        case_id=f"s{seed}-c{index:03d}", recipe=recipe, seed=_case_seed(seed, index), container=container,
        video=video, vcodec=vcodec, audio=AudioSpec(sample_rate, channels), acodec=AudioCodec(aname, abit),
        duration_s=duration, corpus_seed=seed,
    )


def plan_corpus(seed: int, cases: int, profile: Profile = FULL,
                recipes_only: tuple[str, ...] | None = None) -> list[CasePlan]:
    """The corpus's cases; recipes_only keeps ORDER's rotation but only those recipes."""
    order = ORDER
    if recipes_only:
        unknown = sorted(set(recipes_only) - set(recipes.RECIPES))
        if unknown:
            raise ValueError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(sorted(recipes.RECIPES))}")
        order = tuple(r for r in ORDER if r in recipes_only) + tuple(
            r for r in recipes_only if r not in ORDER)
    return [plan_case(seed, i, order[i % len(order)], profile) for i in range(cases)]


# --- one case ------------------------------------------------------------------------------


def build_case(plan: CasePlan, out_dir: Path, media_dir: Path | None,
               block_masks: dict[int, np.ndarray] | None = None) -> Path:
    """Encode one case, verify its clock on the written file, write its labels.

    `block_masks`, for a damaged case, receives per frame index its visibly damaged
    16x16 blocks (damage.compare), for training a per-block corruption model."""
    rng = np.random.default_rng([plan.seed, 1])
    built = recipes.RECIPES[plan.recipe](plan, rng, media_dir)
    sc = built.scenario
    if sc.audio is not None:
        # Whatever the recipe mixed (beeps, a looped recording), the programme plays at
        # -23 LUFS: only an injected loudness defect may be off target.
        sc.audio = au.levelled(sc.audio, sc.duration_s)
    vcodec = built.vcodec or plan.vcodec
    media = out_dir / f"{plan.case_id}.{EXTENSIONS[plan.container]}"
    ann = Annotations()
    ann.extend(sc.annotations())
    ann.extend(built.extra)
    ann.extend(clips.own_repeats(sc.video, sc.duration_s))
    with tempfile.TemporaryDirectory(prefix=f"streamqc-{plan.case_id}-") as tmp:
        damage_plan = built.post.get("damage")
        rewrite = damage_plan is not None or built.post.get("jump")
        # Transport damage and jumps start from a clean TS, which is also the file verified.
        encoded = Path(tmp) / "clean.ts" if rewrite else media
        container = "ts" if rewrite else plan.container
        programme = encode_scenario(sc, encoded, container, vcodec if sc.video else None,
                                    plan.acodec if sc.audio else None, keyframes=built.keyframes,
                                    ts_offset_s=float(built.post.get("ts_offset_s", 1.4)))
        timing = verify.probe(encoded)
        timing_info: dict[str, Any] = {"origin_pts_s": round(timing.origin_s, 6)}
        if sc.video is not None:
            verify.check_video_grid(timing, float(sc.video.spec.fps), sc.frame_count)
        if built.post.get("jump"):
            _jump(sc, encoded, media, timing)
        if built.post.get("audio_loss") and timing.audio is not None:
            # The audio ends with the last whole codec frame before the loss point.
            end_s = timing.audio_time_of(len(timing.audio))
            for lab in ann.labels:
                if lab.kind == "stream.missing_track":
                    lab.start_s, lab.clock = end_s, "video"  # measured: on the check clock
            timing_info["audio_end_s"] = round(end_s, 6)
        if built.post.get("measure_lufs") and programme is not None and sc.audio is not None:
            lufs = round(au.integrated_lufs(programme, sc.audio.spec.sample_rate), 1)
            for lab in ann.labels:
                if lab.kind == "audio.loudness":
                    lab.details["lufs"] = lufs
        if (programme is not None and sc.audio is not None and not any(lab.kind == "audio.loudness" for lab in ann.labels)
                and au.loudness_moved(programme, sc.audio.spec.sample_rate)):
            # The defects took enough of the programme away to move its loudness: the
            # delivered programme may be off target, which no label describes.
            ann.ignore.append(Ignore("audio.loudness", 0.0, sc.duration_s, "audio"))
        if damage_plan is not None:
            ann.extend(_damage(plan, built, sc, vcodec, encoded, media, Path(tmp), timing, programme, block_masks))
            if built.post.get("bake"):
                timing = verify.probe(media)
                verify.check_video_grid(timing, float(sc.video.spec.fps), sc.frame_count)
                timing_info["origin_pts_s"] = round(timing.origin_s, 6)
        if sc.audio is not None and programme is not None:
            offset = verify.audio_offset(timing, programme, sc.audio.spec.sample_rate)
            if offset is None:
                raise RuntimeError(f"{plan.case_id}: could not measure where the audio landed")
            timing_info["audio_offset_s"] = round(offset, 6)
            timing_info["first_audio_pts_s"] = round(timing.audio_start_s or 0.0, 6)
            # Sub-sample residue is noise; a real encoder delay moves the audio labels.
            if abs(offset) * sc.audio.spec.sample_rate >= 1:
                ann = ann.shifted("audio", offset)
    labels = {
        "id": plan.case_id,
        "file": media.name,
        "seed": plan.corpus_seed,
        "duration": round(sc.duration_s, 4),
        "video": None if sc.video is None or vcodec is None else {
            "codec": vcodec.name, "width": sc.video.spec.width, "height": sc.video.spec.height,
            "fps": sc.video.spec.fps_label},
        "audio": None if sc.audio is None or plan.acodec is None else {
            "codec": plan.acodec.name, "sample_rate": sc.audio.spec.sample_rate, "channels": sc.audio.spec.channels},
        "content": built.content,
        **ann.clipped(sc.duration_s).to_json(),
        # Every programme is made at -23 LUFS: the corpus is judged against EBU R 128
        # (check has no loudness target unless one is chosen).
        "options": {"loudness": {"preset": "ebu_r128"}, **built.options},
        "recipe": plan.recipe,
        "case_seed": plan.seed,
        "container": plan.container,
        "timing": timing_info,
    }
    path = out_dir / f"{plan.case_id}.json"
    path.write_text(json.dumps(labels, indent=1) + "\n")
    for src in (sc.video,):
        if isinstance(src, clips.ClipContent):
            src.close()
    return path


def _jump(sc: Any, clean: Path, media: Path, timing: verify.Timing) -> None:
    """Rewrite the clean TS's timestamps at each Discontinuity, then check the result."""
    from streamqc.synth.defects import Discontinuity
    from streamqc.synth import tspackets as tsp

    vspec = sc.video.spec
    pk = tsp.packets(clean.read_bytes())
    jumps = sorted((d for d in sc.defects if isinstance(d, Discontinuity)), key=lambda d: d.frame)
    # Half a millisecond early: the jump frame's own PES must be on the new time line.
    tsp.jump_timestamps(pk, [(int(round((timing.origin_s + vspec.time_of(j.frame)) * damage.TS_CLOCK)) - 45,
                              int(round(j.jump_s * damage.TS_CLOCK))) for j in jumps])
    media.write_bytes(pk.tobytes())
    after = verify.probe(media)
    expect = np.arange(sc.frame_count) / float(vspec.fps)
    for j in jumps:
        expect[j.frame :] += j.jump_s
    got = after.video_pts_s + (after.origin_s - timing.origin_s)
    if len(got) != len(expect) or np.abs(np.sort(got) - np.sort(expect)).max() > 0.0012:
        raise RuntimeError(f"{media.name}: timestamps after the jump are not where they should be")


def _damage(plan: CasePlan, built: recipes.Built, sc: Any, vcodec: VideoCodec, clean: Path, media: Path,
            tmp: Path, timing: verify.Timing, programme: np.ndarray | None,
            block_masks: dict[int, np.ndarray] | None = None) -> Annotations:
    """Break the clean TS; label corruption from pixels; optionally bake it into a clean file."""
    vspec = sc.video.spec
    fps = float(vspec.fps)
    damaged = media if not built.post.get("bake") else tmp / "damaged.ts"
    data, report = damage.damage_ts(clean.read_bytes(), built.post["damage"], timing.origin_s, plan.seed)
    damaged.write_bytes(data)
    sink = None
    if built.post.get("bake"):
        aspec = sc.audio.spec if sc.audio is not None else None
        sink = EncoderSink(media, plan.container, (vspec, vcodec),
                           (aspec, plan.acodec) if aspec is not None and plan.acodec is not None else None)

        def bake(i: int, pic: np.ndarray) -> None:
            if aspec is not None and programme is not None:
                s0 = aspec.sample_at(vspec.time_of(i))
                s1 = aspec.sample_at(vspec.time_of(i + 1))
                sink.write_audio(s0, programme[s0:s1])
            sink.write_video(i, pic)

    try:
        cmp = damage.compare(clean, damaged, fps, sc.frame_count, sink=bake if sink is not None else None,
                             masks=block_masks)
    finally:
        if sink is not None:
            sink.close()
    ann = damage.corruption_annotations(cmp, fps)
    if not built.post.get("bake"):
        if abs(verify.probe(damaged).origin_s - timing.origin_s) > 1e-6:
            raise RuntimeError(f"{plan.case_id}: damage moved the first frame")
        ann.extend(damage.decode_error_annotations(report, cmp, timing.origin_s, fps, ann))
    return ann


def _build_case_job(plan: CasePlan, out_dir: str, media_dir: str | None) -> str:
    return str(build_case(plan, Path(out_dir), Path(media_dir) if media_dir else None))


# --- the corpus ----------------------------------------------------------------------------


def build_corpus(out_dir: Path, seed: int, cases: int = 48, media_dir: Path | None = None,
                 progress: Callable[[int, int], None] | None = None, workers: int | None = None,
                 profile: Profile = FULL, recipes_only: tuple[str, ...] | None = None) -> list[Path]:
    """Write `cases` labelled cases and manifest.json into out_dir; return the label paths.

    media_dir: real clips to use as content in some cases (default STREAMQC_MEDIA or
    ../shared/media beside the repo; ignored when absent). The output depends only on
    (seed, cases, whether media_dir exists).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if media_dir is None:
        media_dir = clips.default_media_dir()
    media = Path(media_dir) if Path(media_dir).is_dir() else None
    plans = plan_corpus(seed, cases, profile, recipes_only)
    workers = workers or min(2, os.cpu_count() or 1)
    done = 0
    paths: dict[int, Path] = {}
    if workers <= 1 or cases <= 1:
        for i, plan in enumerate(plans):
            paths[i] = build_case(plan, out_dir, media)
            done += 1
            if progress:
                progress(done, cases)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_build_case_job, plan, str(out_dir), str(media) if media else None): i
                       for i, plan in enumerate(plans)}
            try:
                for fut in as_completed(futures):
                    paths[futures[fut]] = Path(fut.result())
                    done += 1
                    if progress:
                        progress(done, cases)
            except BaseException:
                # One broken case (or Ctrl-C) stops the build now, not after every other case.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    manifest = {"seed": seed, "generator": f"streamqc {streamqc.__version__}",
                "cases": [p.case_id for p in plans]}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return [paths[i] for i in range(cases)]
