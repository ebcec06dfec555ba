"""The webhook notifier through the outbox: retries, exactly-once by key, signatures, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time

from receivers import Receiver

from streamqc.events import Event, Severity
from streamqc.sinks.config import Retry
from streamqc.sinks.journal import Journal
from streamqc.sinks.notifiers.stdout import StdoutNotifier
from streamqc.sinks.notifiers.webhook import WebhookNotifier
from streamqc.sinks.outbox import Outbox

SECRET = "whsec-test-1234"


def _everything(record, tags, check_severity):
    return True


def _signature_ok(request: dict, secret: str = SECRET, tolerance_s: float = 300.0) -> bool:
    """Checked as a receiver would, from the headers alone (independent of our sign())."""
    header = request["headers"]["X-Streamqc-Signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    fresh = abs(request["wall"] - int(parts["t"])) <= tolerance_s
    return fresh and hmac.compare_digest(expected, parts["v1"]) and request["headers"]["X-Streamqc-Timestamp"] == parts["t"]


def _defect(journal: Journal, stream: str, start: float, kind: str = "video.freeze") -> None:
    opened = journal.append(Event(kind, start, start + 2.0, Severity.MAJOR, stream=stream, at="2026-11-26T17:00:00.000Z",
                                  ongoing=True))
    journal.append(Event(kind, start, start + 3.5, Severity.MAJOR, stream=stream, at="2026-11-26T17:00:01.500Z"),
                   event_id=opened.id)


def test_receiver_down_for_30_s_gets_every_event_exactly_once_with_valid_signatures(tmp_path):
    """The receiver goes away for 30 s while events keep coming and the outbox restarts once."""
    journal_path = tmp_path / "journal.db"
    down = Receiver().start()
    up = Receiver().start()
    retry = Retry(initial_s=0.2, max_delay_s=1.0, max_attempts=10_000)

    def make_outbox() -> Outbox:
        return Outbox(journal_path, [
            (WebhookNotifier("down", down.url + "/hook", SECRET, timeout_s=2.0), _everything, retry),
            (WebhookNotifier("up", up.url + "/hook", SECRET, timeout_s=2.0), _everything, retry),
        ], poll_s=0.05)

    with Journal(journal_path) as journal:
        _defect(journal, "ch1", 0.0)
        stop = threading.Event()
        outbox = make_outbox()
        worker = threading.Thread(target=outbox.run, args=(stop,))
        worker.start()
        assert down.wait_for(2, 5.0)
        down.stop()
        went_down = time.monotonic()
        restarted = False
        start = 10.0
        while time.monotonic() - went_down < 30.0:
            _defect(journal, "ch1" if start % 20 else "ch2", start)
            start += 10.0
            if not restarted and time.monotonic() - went_down > 15.0:
                # A restart in the middle of the outage: the cursors come back from the journal.
                stop.set()
                worker.join(10)
                outbox.close()
                stop = threading.Event()
                outbox = make_outbox()
                worker = threading.Thread(target=outbox.run, args=(stop,))
                worker.start()
                restarted = True
            time.sleep(1.0)
        journaled_while_down = journal.last_seq()
        up_during_outage = len(up.requests)
        down.start()  # back, on the same port
        keys = [r.key for r in journal.read()]
        assert down.wait_for(len(keys), 15.0), f"{len(down.requests)} of {len(keys)} delivered after the outage"
        assert up.wait_for(len(keys), 5.0)
        stop.set()
        worker.join(10)
        outbox.close()

    assert restarted and journaled_while_down >= 50
    # The healthy receiver was not held back by the dead one: it had nearly all of them before the outage ended.
    assert up_during_outage >= journaled_while_down - 2
    for receiver in (down, up):
        received = [r["headers"]["Idempotency-Key"] for r in receiver.requests]
        assert sorted(received) == sorted(keys), "each event exactly once"
        assert all(_signature_ok(r) for r in receiver.requests)
        bodies = [json.loads(r["body"]) for r in receiver.requests]
        assert [f"{b['id']}:{b['phase']}" for b in bodies] == received
        assert [b["seq"] for b in bodies] == sorted(b["seq"] for b in bodies), "in journal order"
    assert not (tmp_path / "dead-letters.jsonl").exists()


def test_a_forged_or_stale_signature_does_not_verify(tmp_path):
    receiver = Receiver().start()
    try:
        with Journal(tmp_path / "j.db") as journal:
            _defect(journal, "ch1", 0.0)
            outbox = Outbox(journal, [(WebhookNotifier("hook", receiver.url, SECRET), _everything, Retry())])
            assert outbox.drain(10)
            outbox.close()
    finally:
        receiver.stop()
    request = receiver.requests[0]
    assert _signature_ok(request)
    assert not _signature_ok(request, secret="another-secret")
    assert not _signature_ok({**request, "body": request["body"].replace(b"ch1", b"ch9")})
    assert not _signature_ok({**request, "wall": request["wall"] + 600})


def test_a_rejected_event_is_dead_lettered_and_the_next_ones_still_go_out(tmp_path, caplog):
    # 400 for the open record of the first defect: permanent, no retry. 503 twice for the next: retried.
    answers = {"400": 0, "503": 0}

    def respond(request):
        body = json.loads(request["body"])
        if body["start"] == 0.0 and body["phase"] == "open":
            answers["400"] += 1
            return 400, b"bad payload"
        if body["start"] == 10.0 and body["phase"] == "open" and answers["503"] < 2:
            answers["503"] += 1
            return 503, b"busy"
        return 200, b"ok"

    receiver = Receiver(respond).start()
    try:
        with Journal(tmp_path / "j.db") as journal:
            _defect(journal, "ch1", 0.0)
            _defect(journal, "ch1", 10.0)
            outbox = Outbox(journal, [(WebhookNotifier("hook", receiver.url, SECRET), _everything,
                                       Retry(initial_s=0.05, max_delay_s=0.2))])
            with caplog.at_level("WARNING", logger="streamqc.outbox"):
                assert outbox.drain(10)
            outbox.close()
            assert journal.cursor("notify.hook") == journal.last_seq()
    finally:
        receiver.stop()
    assert answers == {"400": 1, "503": 2}
    delivered = [(b["start"], b["phase"]) for b in receiver.json_bodies()]
    assert delivered.count((10.0, "open")) == 3 and delivered.count((0.0, "open")) == 1
    letters = [json.loads(line) for line in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert [(d["notifier"], d["record"]["start"], d["attempts"]) for d in letters] == [("hook", 0.0, 1)]
    assert "HTTP 400" in letters[0]["reason"]
    assert any("dead letter" in message for message in caplog.messages)


def test_a_receiver_that_never_recovers_is_dead_lettered_after_max_attempts(tmp_path):
    receiver = Receiver(lambda request: (500, b"down")).start()
    out = io.StringIO()
    try:
        with Journal(tmp_path / "j.db") as journal:
            _defect(journal, "ch1", 0.0)
            outbox = Outbox(journal, [
                (WebhookNotifier("hook", receiver.url, SECRET), _everything, Retry(initial_s=0.02, max_delay_s=0.05,
                                                                                   max_attempts=3)),
                (StdoutNotifier("log", out), _everything, Retry()),
            ])
            assert outbox.drain(10)
            outbox.close()
    finally:
        receiver.stop()
    assert len(receiver.requests) == 6  # two records, three attempts each
    letters = [json.loads(line) for line in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert [(d["record"]["phase"], d["attempts"]) for d in letters] == [("open", 3), ("closed", 3)]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["phase"] for line in lines] == ["open", "closed"] and lines[0]["key"].endswith(":open")


def test_start_sinks_delivers_and_acts_in_threads_until_stopped(tmp_path):
    """The monitor's hook: start_sinks(config, journal_path, stop_event) -> threads."""
    from streamqc.sinks.service import start_sinks

    hook = Receiver().start()
    origin = Receiver().start()
    config = {
        "streams": [{"id": "ch1", "url": "udp://127.0.0.1:5000", "backup_url": "udp://127.0.0.1:5001"}],
        "notify": [{"name": "hook", "type": "webhook", "url": hook.url, "secret": SECRET}],
        "actions": [{"name": "switch", "kinds": ["video.freeze"],
                     "http": {"url": origin.url + "/switch", "json": {"to": "{stream.backup_url}"}}}],
    }
    stop = threading.Event()
    journal_path = tmp_path / "state" / "journal.db"
    try:
        with Journal(journal_path) as journal:
            threads = start_sinks(config, journal_path, stop)
            opened = journal.append(Event("video.freeze", 3.0, 5.0, stream="ch1", at="2026-11-26T17:00:00.000Z",
                                          ongoing=True))
            assert origin.wait_for(1, 10.0)
            assert hook.wait_for(2, 10.0), "the defect and the action's outcome"
            stop.set()
            for thread in threads:
                thread.join(10)
            assert not any(thread.is_alive() for thread in threads)
    finally:
        hook.stop()
        origin.stop()
    assert json.loads(origin.requests[0]["body"]) == {"to": "udp://127.0.0.1:5001"}
    kinds = [(b["kind"], b["phase"]) for b in hook.json_bodies()]
    assert kinds == [("video.freeze", "open"), ("action.succeeded", "closed")]
    assert hook.json_bodies()[1]["details"]["defect_id"] == opened.id


def test_delivery_resumes_after_the_outbox_process_is_killed(tmp_path):
    """kill -9 in the middle of a backlog: the next outbox takes over at the journaled cursor."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    def slow(request):
        time.sleep(0.15)
        return 200, b"ok"

    receiver = Receiver(slow).start()
    journal_path = tmp_path / "journal.db"
    with Journal(journal_path) as journal:
        for index in range(10):
            _defect(journal, "ch1", index * 10.0)
        keys = [r.key for r in journal.read()]
    script = textwrap.dedent(f"""
        import threading
        from streamqc.sinks.config import Retry
        from streamqc.sinks.notifiers.webhook import WebhookNotifier
        from streamqc.sinks.outbox import Outbox
        outbox = Outbox({str(journal_path)!r}, [(WebhookNotifier("hook", {receiver.url!r}, {SECRET!r}),
                                                 lambda r, t, s: True, Retry())])
        outbox.run(threading.Event())
    """)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert receiver.wait_for(6, 30.0)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        before = len(receiver.requests)
        assert before < len(keys), "killed with a backlog left"
        with Journal(journal_path) as journal:
            assert 0 < journal.cursor("notify.hook") < journal.last_seq()
            outbox = Outbox(journal, [(WebhookNotifier("hook", receiver.url, SECRET), _everything, Retry())])
            assert outbox.drain(30)
            outbox.close()
    finally:
        if process.poll() is None:
            process.kill()
        receiver.stop()
    received = [r["headers"]["Idempotency-Key"] for r in receiver.requests]
    # At-least-once: a record in flight at the kill may come twice; the key makes it once.
    assert sorted(set(received)) == sorted(keys)
    assert len(received) - len(set(received)) <= 1
    assert all(_signature_ok(r) for r in receiver.requests)


def test_a_failing_record_older_than_max_age_is_dead_lettered(tmp_path):
    receiver = Receiver(lambda request: (503, b"maintenance")).start()
    ticks = iter(range(0, 10_000, 2))  # every look at the clock: 2 s later

    try:
        with Journal(tmp_path / "j.db") as journal:
            journal.append(Event("video.black", 0.0, 3.0, stream="ch1", at="2026-11-26T17:00:00.000Z"))
            outbox = Outbox(journal, [(WebhookNotifier("hook", receiver.url, SECRET), _everything,
                                       Retry(initial_s=0.5, max_delay_s=1.0, max_attempts=1000, max_age_s=10.0))],
                            clock=lambda: float(next(ticks)))
            assert outbox.drain(10)
            outbox.close()
    finally:
        receiver.stop()
    (letter,) = [json.loads(line) for line in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert 2 <= letter["attempts"] <= 7 and "HTTP 503" in letter["reason"]
    assert len(receiver.requests) == letter["attempts"]
