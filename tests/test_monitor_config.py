"""`streams.yaml`: what a user writes, and the errors that name the bad key."""

import os
import subprocess
import sys

import pytest

from streamqc.errors import ConfigError
from streamqc.monitor.config import load_config, parse_config, usable_cores
from streamqc.monitor.service import with_cli_streams

GOOD = """
state_dir: ./state
workers: 2
stall_timeout_s: 4
detectors: {freeze: {min_duration_s: 2}}
streams:
  - id: news-1
    url: udp://127.0.0.1:5000
    backup_url: http://127.0.0.1:8080/backup/index.m3u8
    tags: {region: eu, tier: gold}
    detectors: {black: {enabled: false}, freeze: {min_duration_s: 3}}
  - id: sport-2
    url: loop://clip.ts
notify: [{type: webhook, url: "http://127.0.0.1:9/hook"}]
actions: [{when: {kind: stream.down}, run: [echo, hi]}]
store: {url: ./streamqc-data, roll_s: 300}
server: {listen: "127.0.0.1:8400", tokens_env: STREAMQC_TOKENS, public_reads: false}
"""


def test_a_full_config_is_read_with_the_other_parts_sections_kept(tmp_path):
    path = tmp_path / "streams.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    assert [s.id for s in config.streams] == ["news-1", "sport-2"]
    assert config.worker_count == 2 and config.stall_timeout_s == 4
    assert config.streams[0].tags == {"region": "eu", "tier": "gold"}
    # per-stream options override the global ones, detector by detector
    assert config.detector_options(config.streams[0])["freeze"] == {"min_duration_s": 3}
    assert config.detector_options(config.streams[1])["freeze"] == {"min_duration_s": 2}
    assert config.store == {"url": "./streamqc-data", "roll_s": 300}
    assert config.notify[0]["type"] == "webhook"
    assert str(config.journal_path).endswith("state/journal.db")


@pytest.mark.parametrize("text, named", [
    ("streams: [{id: a, url: udp://127.0.0.1:1, colour: red}]", "streams[0].colour"),
    ("stall_timeot_s: 3\nstreams: []", "stall_timeot_s"),
    ("streams: [{id: a}]", "streams[0].url"),
    ("streams: [{id: a, url: x}, {id: a, url: y}]", "streams[1].id"),
    ("stall_timeout_s: -1", "stall_timeout_s"),
    ("workers: lots", "workers"),
    ("streams: [{id: 'bad id!', url: x}]", "streams[0].id"),
    ("streams: [{id: a, url: x, detectors: {freeze: {min_duraton_s: 2}}}]", "freeze.min_duraton_s"),
    ("detectors: {frezze: {}}\nstreams: [{id: a, url: x}]", "frezze"),
    ("reconnect: {initial_s: 1, maximum_s: 3}", "reconnect.maximum_s"),
])
def test_a_bad_key_or_value_is_named(text, named):
    import yaml

    with pytest.raises(ConfigError) as err:
        parse_config(yaml.safe_load(text), "streams.yaml")
    assert named in str(err.value)
    assert str(err.value).startswith("streams.yaml: ")


def test_cli_streams_are_added_and_a_monitor_without_streams_is_refused():
    config = with_cli_streams(parse_config({"streams": [{"id": "stream-1", "url": "udp://127.0.0.1:1"}]}),
                              ["udp://127.0.0.1:2", "loop://x.ts"], workers=3, state_dir="/tmp/s")
    assert [(s.id, s.url) for s in config.streams] == [
        ("stream-1", "udp://127.0.0.1:1"), ("stream-2", "udp://127.0.0.1:2"), ("stream-3", "loop://x.ts")]
    assert config.worker_count == 3 and config.state_dir == "/tmp/s"
    with pytest.raises(ConfigError, match="no streams"):
        with_cli_streams(parse_config({}), [], None, None)


def test_the_cli_exits_2_with_the_key_on_a_bad_config(tmp_path):
    path = tmp_path / "streams.yaml"
    path.write_text("streams:\n  - id: a\n    url: udp://127.0.0.1:1\n    urll: typo\n")
    done = subprocess.run([sys.executable, "-m", "streamqc", "monitor", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "streams[0].urll" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("files, cores", [
    ({"cpu.max": "100000 100000\n"}, 1),  # cgroup v2: one core
    ({"cpu.max": "50000 100000\n"}, 1),  # half a core still gets a worker
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
    ({"cpu.max": "max 100000\n"}, None),  # no quota: the affinity decides
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu.max": "garbled\n"}, None),
    ({}, None),  # no cgroup files at all (not Linux, or not mounted)
])
def test_default_workers_are_the_cores_a_container_may_use(tmp_path, files, cores):
    """A pod limited to one core on a many-core node runs one worker, not one per host core."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    expected = cores if cores is not None else len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == expected
    assert parse_config({"streams": [{"id": "a", "url": "loop://x.ts"}]}).worker_count == usable_cores()
