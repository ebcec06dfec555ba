"""The supervisor's control surface (what the HTTP API calls), with real worker processes."""

from __future__ import annotations

import time

import pytest

from live import make_clip, wait_for
from streamqc.errors import ConfigError
from streamqc.monitor import StreamConfig, Supervisor, parse_config


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("supervisor") / "clip.ts"
    make_clip(path, 6.0, [], seed=7)
    return path


def _status(supervisor, stream_id):
    return next((s for s in supervisor.streams() if s.id == stream_id), None)


def test_add_pause_resume_switch_and_remove_a_stream(tmp_path, clip):
    config = parse_config({"workers": 2, "state_dir": str(tmp_path / "state"), "stall_timeout_s": 3,
                           "streams": [{"id": "a", "url": f"loop://{clip}", "tags": {"tier": "gold"}}]})
    with Supervisor(config) as supervisor:
        supervisor.add_stream(StreamConfig(id="b", url=f"loop://{clip}"))
        assert wait_for(lambda: all(s.state == "ok" and s.frames > 0 for s in supervisor.streams()), 60), \
            supervisor.streams()
        a, b = _status(supervisor, "a"), _status(supervisor, "b")
        assert a.tags == {"tier": "gold"} and a.media_seconds > 0
        assert {a.worker, b.worker} == {0, 1}  # spread over the workers
        with pytest.raises(ConfigError, match="already monitored"):
            supervisor.add_stream(StreamConfig(id="b", url=f"loop://{clip}"))
        with pytest.raises(ConfigError, match="min_duraton_s"):
            supervisor.add_stream(StreamConfig(id="c", url=f"loop://{clip}",
                                               detectors={"freeze": {"min_duraton_s": 1}}))

        supervisor.pause_stream("b")
        assert wait_for(lambda: _status(supervisor, "b").state == "paused", 10)
        # The pictures the decoder already held are still analysed as the session ends
        # (their events close with their real end): count from when that has drained.
        assert wait_for(lambda: _settled_frames(supervisor, "b") is not None, 10)
        frames = _status(supervisor, "b").frames
        a_frames = _status(supervisor, "a").frames
        assert wait_for(lambda: _status(supervisor, "a").frames > a_frames + 25, 10)
        assert _status(supervisor, "b").frames == frames  # paused: nothing more is decoded
        supervisor.resume_stream("b")
        assert wait_for(lambda: _status(supervisor, "b").state == "ok"
                        and _status(supervisor, "b").frames > frames + 25, 20)

        other = tmp_path / "other.ts"
        other.write_bytes(clip.read_bytes())
        supervisor.switch_source("a", f"loop://{other}")
        assert wait_for(lambda: _status(supervisor, "a").url == f"loop://{other}"
                        and _status(supervisor, "a").attempts >= 2, 10)

        supervisor.remove_stream("b")
        assert _status(supervisor, "b") is None
        with pytest.raises(KeyError):
            supervisor.pause_stream("b")
        workers = supervisor.workers()
        assert [w["streams"] for w in workers] in (
            [["a"], []], [[], ["a"]]) and all(w["alive"] and w["rss_bytes"] > 0 for w in workers)


def _settled_frames(supervisor, stream_id: str) -> int | None:
    """The stream's frame count if it stays the same over a second of status updates."""
    before = _status(supervisor, stream_id).frames
    time.sleep(1.0)
    after = _status(supervisor, stream_id).frames
    return after if after == before else None
