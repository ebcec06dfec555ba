"""The journal keeps every event through a kill -9 and hands undelivered ones out again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from streamqc.events import Event, Severity
from streamqc.sinks.journal import CLOSED, OPEN, Journal


def _event(kind: str = "video.freeze", start: float = 1.0, end: float = 4.0, ongoing: bool = False) -> Event:
    return Event(kind, start, end, Severity.MAJOR, stream="ch1", at="2026-11-26T17:00:00.000Z", ongoing=ongoing)


def test_open_then_closed_share_an_id_and_the_open_one_is_listed_until_closed(tmp_path):
    with Journal(tmp_path / "j.db") as journal:
        opened = journal.append(_event(end=3.0, ongoing=True))
        assert opened.phase == OPEN
        assert [r.id for r in journal.open_defects()] == [opened.id]
        closed = journal.append(_event(end=7.5), event_id=opened.id)
        assert closed.phase == CLOSED and closed.seq > opened.seq
        assert journal.open_defects() == []
        assert [r.key for r in journal.read()] == [f"{opened.id}:open", f"{opened.id}:closed"]
        assert journal.read()[1].event.end == 7.5


def test_appending_the_same_record_twice_keeps_one(tmp_path):
    with Journal(tmp_path / "j.db") as journal:
        first = journal.append(_event(), event_id="abc")
        again = journal.append(_event(end=9.0), event_id="abc")
        assert again.seq == first.seq
        assert len(journal.read()) == 1


def test_filters_and_cursor_never_move_back(tmp_path):
    with Journal(tmp_path / "j.db") as journal:
        journal.append(_event("video.freeze"))
        journal.append(_event("audio.silence"))
        journal.append(Event("video.black", 0, 3, stream="ch2", at="2026-11-26T18:00:00.000Z"))
        assert [r.event.kind for r in journal.read(kind="video")] == ["video.freeze", "video.black"]
        assert [r.event.kind for r in journal.read(stream="ch2")] == ["video.black"]
        assert [r.event.kind for r in journal.read(since="2026-11-26T17:30:00Z")] == ["video.black"]
        journal.advance("webhook", 2)
        journal.advance("webhook", 1)
        assert journal.cursor("webhook") == 2
        assert [r.seq for r in journal.read(after_seq=journal.cursor("webhook"))] == [3]


def test_records_survive_kill_9_of_the_writer(tmp_path):
    path = tmp_path / "j.db"
    writer = textwrap.dedent(f"""
        import os, sys
        from streamqc.events import Event
        from streamqc.sinks.journal import Journal
        j = Journal({str(path)!r})
        for i in range(50):
            j.append(Event("video.freeze", float(i), float(i) + 2.0, stream="ch1"))
        print("written", flush=True)
        sys.stdin.read()  # wait to be killed with the connection still open
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with Journal(path) as journal:
        records = journal.read()
    assert [r.event.start for r in records] == [float(i) for i in range(50)]
