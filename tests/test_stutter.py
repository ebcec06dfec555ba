"""video.stutter and video.cadence on encoded video: repeats seen in the pictures, drops seen
in the timestamps, and the regular pattern of a frame-rate conversion told from both."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from streamqc.check import check_input
from streamqc.sources.reader import SourceOptions
from streamqc.synth.content import TexturePan
from streamqc.synth.defects import Stutter
from streamqc.synth.spec import VideoSpec

from media import frame, garbled, make_clip


def by_kind(result, kind: str) -> list:
    return [e for e in result.events if e.kind == kind]


def encode_slots(path, slots: list[int], fps: int = 30, repeated: frozenset[int] = frozenset()):
    """A pan in MP4 whose frames carry timestamps `slots` (frame periods): a missing slot
    is a frame the encoder never got, so the picture jumps where the timestamps do. A
    slot in `repeated` shows the picture before it again (the pan catches up after it)."""
    spec = VideoSpec(320, 180, Fraction(fps))
    pan = TexturePan(spec, 5, speed_px_s=150)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        ctx = stream.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = 320, 180, "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for slot in slots:
            shown = slot - 1 if slot in repeated else slot
            picture = av.VideoFrame.from_ndarray(pan.render(shown), format="yuv420p")
            picture.pts = slot
            picture.time_base = Fraction(1, fps)
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_repeated_and_skipped_frames_in_a_pan_are_one_stutter(tmp_path):
    """Six frames shown twice (each paid back by a skip) between 2 and 5 s of a steady pan."""
    stutter = Stutter(frame(2.0), frame(5.0), events=6, seed=2)
    clip = make_clip(tmp_path / "stutter.mp4", seconds=7.0, defects=[stutter], container="mp4", content="pan")
    result = check_input(str(clip))
    (label,) = stutter.annotate(VideoSpec(320, 180, Fraction(25)), None).labels
    (event,) = by_kind(result, "video.stutter")
    assert event.start < label.end_s and event.end > label.start_s
    assert event.details["repeated"] >= 4 and event.details["held_frames"] == event.details["repeated"]
    assert by_kind(result, "video.freeze") == [] and by_kind(result, "video.cadence") == []


def test_a_duplicate_every_fifth_frame_is_one_cadence_note(tmp_path):
    """24 -> 30 fps style pulldown: no stutter, no freeze, one info note, and the check passes."""
    clip = make_clip(tmp_path / "cadence.ts", seconds=8.0, content="cadence")
    result = check_input(str(clip))
    (note,) = by_kind(result, "video.cadence")
    assert note.severity.value == "info" and not note.is_defect
    assert note.details["held_every_frames"] == 5 and note.details["from"] == "pictures"
    assert note.details["new_frames_fraction"] == pytest.approx(0.8)
    assert by_kind(result, "video.stutter") == [] and by_kind(result, "video.freeze") == []
    assert not any(e.is_defect for e in result.events)


@pytest.mark.parametrize("content, fps", [("film50", 50), ("pulldown", 60)])
def test_film_at_50_or_60_fps_is_one_cadence_note(tmp_path, content, fps):
    """Film converted to 50 or 60 fps holds two frames in a row now and then, which no
    single interval describes; its schedule is still a cadence, not a stutter."""
    spec = VideoSpec(320, 180, Fraction(fps))
    clip = make_clip(tmp_path / f"{content}.ts", seconds=8.0, content=content, spec=spec)
    result = check_input(str(clip))
    (note,) = by_kind(result, "video.cadence")
    assert not note.is_defect and note.details["from"] == "pictures"
    assert by_kind(result, "video.stutter") == [] and by_kind(result, "video.freeze") == []
    assert not any(e.is_defect for e in result.events)


def test_a_stutter_in_film_at_50_fps_is_still_found(tmp_path):
    """Frames repeated and skipped between 3 and 6 s of film shown at 50 fps: held slots off its schedule."""
    spec = VideoSpec(320, 180, Fraction(50))
    stutter = Stutter(frame(3.0, spec), frame(6.0, spec), events=6, seed=4)
    clip = make_clip(tmp_path / "film-stutter.ts", seconds=9.0, content="film50", spec=spec, defects=[stutter])
    result = check_input(str(clip))
    (label,) = stutter.annotate(spec, None).labels
    (event,) = by_kind(result, "video.stutter")
    assert event.start < label.end_s and event.end > label.start_s
    assert len(by_kind(result, "video.cadence")) == 1


def test_frames_missing_from_the_timestamps_are_stutter(tmp_path):
    """Seven frames dropped at irregular places within two seconds (a starved encoder)."""
    dropped = {61, 66, 75, 77, 88, 99, 104}
    clip = encode_slots(tmp_path / "drops.mp4", [s for s in range(180) if s not in dropped])
    (event,) = by_kind(check_input(str(clip)), "video.stutter")
    assert event.details == {"held_frames": 7, "repeated": 0, "missing": 7}
    assert event.start == pytest.approx(61 / 30, abs=0.01) and event.end == pytest.approx(105 / 30, abs=0.01)


def garble_packets(clip, out_path, packets: set[int]):
    """A copy of `clip` whose video packets `packets` (0-based) are random bytes of the same
    size and timing: the decoder rejects them and their pictures never come out."""
    rng = np.random.default_rng(7)
    with av.open(str(clip)) as source, av.open(str(out_path), "w") as out:
        video = source.streams.video[0]
        copy = out.add_stream_from_template(video)
        for index, packet in enumerate(p for p in source.demux(video) if p.size):
            if index in packets:
                packet = garbled(packet, rng)
            packet.stream = copy
            out.mux(packet)
    return out_path


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_pictures_the_decoder_rejected_are_decode_errors_not_stutter(tmp_path, threads):
    """The holes of the test above, made by damaged packets instead of an encoder that never
    got the frames: the viewer sees damage, which video.decode_error reports, whatever the
    decoder's thread count (which changes how many damaged pictures come out, and how
    often FFmpeg logs each rejection)."""
    damaged = {61, 66, 75, 77, 88, 99, 104}
    clip = garble_packets(encode_slots(tmp_path / "pan.mp4", list(range(180))), tmp_path / "garbled.mp4", damaged)
    result = check_input(str(clip), source=SourceOptions(threads=threads))
    assert by_kind(result, "video.stutter") == []
    (error,) = by_kind(result, "video.decode_error")
    assert error.start <= 61 / 30 + 0.05 and error.end >= 104 / 30 - 0.05
    assert error.details["count"] == len(damaged)  # one per damaged packet


@pytest.mark.parametrize("held_in", ["timestamps", "pictures"])
def test_four_held_frames_at_near_equal_intervals_are_a_stutter_not_a_cadence(tmp_path, held_in):
    """Four random repeats of a short stutter can fall 14, 13 and 14 frames apart (seed 2030's
    case 045); a conversion's cadence needs a fifth held frame on the same interval."""
    held = {57, 71, 84, 98}
    if held_in == "timestamps":
        clip = encode_slots(tmp_path / "holes.mp4", [s for s in range(180) if s not in held], fps=25)
    else:
        clip = encode_slots(tmp_path / "repeats.mp4", list(range(180)), fps=25, repeated=frozenset(held))
    result = check_input(str(clip))
    (event,) = by_kind(result, "video.stutter")
    assert event.details["held_frames"] == 4
    assert event.start == pytest.approx(57 / 25, abs=0.05) and event.end == pytest.approx(99 / 25, abs=0.05)
    assert by_kind(result, "video.cadence") == []


def test_a_regular_gap_in_the_timestamps_is_a_cadence(tmp_path):
    """25 fps material on a 30 fps clock with the duplicates left out (every 6th slot empty)."""
    clip = encode_slots(tmp_path / "holes.mp4", [s for s in range(180) if s % 6 != 5])
    result = check_input(str(clip))
    (note,) = by_kind(result, "video.cadence")
    assert note.details["held_every_frames"] == 6 and note.details["from"] == "timestamps"
    assert by_kind(result, "video.stutter") == []


def test_a_clean_pan_has_neither(tmp_path):
    result = check_input(str(make_clip(tmp_path / "pan.mkv", seconds=6.0, container="mkv", content="pan")))
    assert by_kind(result, "video.stutter") == [] and by_kind(result, "video.cadence") == []


def with_flashes(source, out_path, flashing, seconds: float = 12.0, fps: int = 25):
    """Real footage (`source`, re-timed to `fps`) with a box in its corner that is dark
    except on the frames n where flashing(n) holds, when it is white: a sync marker, a
    strobe or a camera flash lighting part of the picture."""
    with av.open(str(source)) as inp, av.open(str(out_path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for n, picture in enumerate(inp.decode(inp.streams.video[0])):
            if n >= seconds * fps:
                break
            planes = picture.reformat(640, 360, "yuv420p").to_ndarray()
            planes[30:106, 32:108] = 235 if flashing(n) else 32
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_path


@pytest.mark.parametrize("flashing", [
    lambda n: n % 37 in (0, 1),  # a flash of two frames every 1.5 s
    lambda n: 100 <= n < 175 and n % 4 in (0, 1),  # a strobe: two frames on, two off, for 3 s
], ids=["flashes", "strobe"])
def test_flashes_in_moving_footage_are_not_stutter(shared_media, tmp_path, flashing):
    """The picture between two that a flash changed hugely is not a repeat: it moves as
    much as the footage does, and the flash is gone again after it. Neither stutter nor
    (for the strobe's regular flashes) a cadence."""
    clip = with_flashes(shared_media / "moviepy/big_buck_bunny_0_30.webm", tmp_path / "flash.mp4", flashing)
    result = check_input(str(clip))
    assert by_kind(result, "video.stutter") == [] and by_kind(result, "video.cadence") == []
    assert not any(e.is_defect for e in result.events if e.kind.startswith("video."))


def test_four_held_frames_at_exactly_one_interval_are_a_cadence(tmp_path):
    """A camera whose sensor runs at 12/13 of its 30 fps clock repeats every 13th frame: in a
    two-second clip that is four repeats, all exactly 13 frames apart (a stutter's random
    repeats fall at near-equal intervals now and then, at exactly one seldom)."""
    clip = encode_slots(tmp_path / "webcam.mp4", list(range(60)), fps=30, repeated=frozenset({7, 20, 33, 46}))
    result = check_input(str(clip))
    (note,) = by_kind(result, "video.cadence")
    assert note.details["held_every_frames"] == 13 and note.details["from"] == "pictures"
    assert by_kind(result, "video.stutter") == []


def test_a_short_webcam_clip_that_repeats_every_13th_frame_is_not_stutter(shared_media):
    """asl_night.mkv: 2.3 s of a 30 fps webcam, a hand moving on a still background; its
    capture repeats a picture every 13 frames (four times)."""
    result = check_input(str(shared_media / "real-clean/intel-sample-videos/asl_night.mkv"))
    assert by_kind(result, "video.stutter") == []
    assert not any(e.is_defect for e in result.events if e.kind.startswith("video."))


def test_a_24_to_25_fps_conversion_with_still_moments_is_one_cadence_note(tmp_path):
    """24 fps material at 25 fps shows one picture twice in every 25 frames. Where the
    picture stands still for a moment (0.8 s every 3 s) a repeat does not show, so the
    held frames come 25 and 50 frames apart in turn: still the conversion's cadence, not
    a stutter."""
    spec = VideoSpec(320, 180, Fraction(25))
    pan = TexturePan(spec, 5, speed_px_s=150)
    still = [(a, a + 20) for a in range(40, 340, 70)]  # source pictures where the camera stops

    def position(source: int) -> int:
        return source - sum(min(max(source - a, 0), b - a) for a, b in still)

    with av.open(str(tmp_path / "film25.ts"), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for slot in range(25 * 15):
            frame = av.VideoFrame.from_ndarray(pan.render(position(slot * 24 // 25)), format="yuv420p")
            frame.pts, frame.time_base = slot, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    result = check_input(str(tmp_path / "film25.ts"))
    assert by_kind(result, "video.stutter") == [] and by_kind(result, "video.freeze") == []
    (note,) = by_kind(result, "video.cadence")
    assert note.details["new_frames_fraction"] == pytest.approx(24 / 25, abs=0.01)


def test_a_cadence_that_resumes_at_another_phase_after_an_edit_is_not_stutter(tmp_path):
    """A 25 -> 30 fps conversion repeats every 6th frame; an edit at 3 s (or a looped clip)
    starts it again at another phase. The repeats after it keep the same interval among
    themselves: the cadence resumed, nothing stuttered."""
    repeated = {s for s in range(6, 90) if s % 6 == 5} | {s for s in range(92, 240) if s % 6 == 2}
    clip = encode_slots(tmp_path / "edit.mp4", list(range(240)), fps=30, repeated=frozenset(repeated))
    result = check_input(str(clip))
    assert by_kind(result, "video.stutter") == []
    assert len(by_kind(result, "video.cadence")) == 1
