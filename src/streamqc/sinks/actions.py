"""Corrective actions: rules that answer a defect still going on with an HTTP call or a command.

The engine reads the journal like a notifier (cursor `actions`). A defect journaled open
that a rule matches (kinds, severity, stream tags) and that has lasted `min_duration_s`
gets the rule's action. Then, per (rule, stream), nothing runs again before `cooldown_s`;
if the defect is still open `settle_s` after an attempt, the action runs again, up to
`max_attempts`; if it is still open after the last one, an `action.escalated` event is
journaled (for the notifiers to page a person). The closing record of the defect ends it.
Every outcome is journaled as `action.succeeded` / `action.failed` with the rule, the
attempt, the status or exit code and the duration.

Commands run without a shell: each element of the argv template becomes exactly one
argument, whatever the substituted value holds (`x; rm -rf /` stays one argument, as does
`--flag`; give values as `--stream={stream.id}` or after `--` so the program cannot read
them as options).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from streamqc.events import Event, Severity, utc_now_iso
from streamqc.sinks.config import ActionRule, StreamInfo
from streamqc.sinks.journal import CLOSED, OPEN, Journal, Record
from streamqc.sinks.templates import MissingValue, render, render_json, template_values

log = logging.getLogger("streamqc.actions")

CURSOR = "actions"
SUCCEEDED, FAILED, ESCALATED = "action.succeeded", "action.failed", "action.escalated"

StreamLookup = Callable[[str | None], StreamInfo | None]


@dataclasses.dataclass(slots=True)
class _Case:
    """One open defect under one rule."""

    rule: ActionRule
    record: Record
    due: float  # when the defect has lasted the rule's min_duration_s
    attempts: int = 0
    last_attempt: float | None = None
    escalated: bool = False
    running: Future | None = None  # the attempt in progress


@dataclasses.dataclass(slots=True)
class Outcome:
    ok: bool
    details: dict[str, Any]


class ActionEngine:
    def __init__(self, journal: Journal, rules: list[ActionRule], streams: StreamLookup | None = None,
                 clock: Callable[[], float] = time.monotonic, poll_s: float = 0.2, workers: int = 4) -> None:
        self.journal = journal
        self.rules = rules
        self.streams = streams or (lambda stream: None)
        self.clock = clock
        self.poll_s = poll_s
        self.cursor = journal.cursor(CURSOR)
        self.cases: dict[tuple[str, str], _Case] = {}  # (defect id, rule name)
        self.last_run: dict[tuple[str, str | None], float] = {}  # (rule name, stream): for the cooldown
        self._client = httpx.Client(follow_redirects=False)
        # Actions run in a small pool so that a slow command on one stream does not hold
        # back the others; their outcomes are collected (and journaled) by step().
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="streamqc-action")
        self._ended: list[_Case] = []  # defects that ended while their attempt was running
        self._resume()

    def _resume(self) -> None:
        """After a restart: defects still open get their cases back, with the attempts made so far."""
        for record in self.journal.open_defects():
            self._open(record)
        for record in self.journal.read(after_seq=0, kind="action", limit=1_000_000):
            case = self.cases.get((record.event.details.get("defect_id"), record.event.details.get("rule")))
            if case is None:
                continue
            if record.event.kind in (SUCCEEDED, FAILED):
                case.attempts = max(case.attempts, int(record.event.details.get("attempt", 0)))
                case.last_attempt = self.clock()
            elif record.event.kind == ESCALATED:
                case.escalated = True

    def step(self) -> float:
        """Take in new journal records, run what is due; seconds until something may be due."""
        # Read up to the end before acting: a defect whose end is already journaled needs no fix.
        while records := self.journal.read(after_seq=self.cursor, limit=1000):
            for record in records:
                if record.phase == OPEN:
                    self._open(record)
                elif record.phase == CLOSED:
                    for key in [k for k in self.cases if k[0] == record.id]:
                        case = self.cases.pop(key)
                        if case.running is not None:
                            self._ended.append(case)
            self.cursor = records[-1].seq
            self.journal.advance(CURSOR, self.cursor)
        for case in [c for c in self._ended if c.running is not None and c.running.done()]:
            self._collect(case)
            self._ended.remove(case)
        waits = [self._act(key) for key in list(self.cases)]
        return min([self.poll_s, *[w for w in waits if w is not None]])

    @property
    def busy(self) -> bool:
        return any(c.running is not None for c in [*self.cases.values(), *self._ended])

    def settle(self, timeout_s: float = 30.0) -> None:
        """Step until no action is running (for tools and tests); at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        self.step()
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.01)
            self.step()

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                wait = self.step()
            except Exception:  # a bug must not stop the engine for good
                log.exception("actions: unexpected error")
                wait = 1.0
            stop_event.wait(max(0.01, wait))

    def _open(self, record: Record) -> None:
        event = record.event
        if event.kind.startswith("action."):
            return
        info = self.streams(event.stream)
        tags = info.tags if info else {}
        for rule in self.rules:
            if rule.matches(event, tags) and (record.id, rule.name) not in self.cases:
                wait = max(0.0, rule.min_duration_s - event.duration)
                self.cases[(record.id, rule.name)] = _Case(rule, record, self.clock() + wait)

    def _act(self, key: tuple[str, str]) -> float | None:
        case = self.cases[key]
        rule, now = case.rule, self.clock()
        if case.running is not None:
            if not case.running.done():
                return None
            self._collect(case)
            case.last_attempt = now  # the fix gets settle_s from when it finished
        if case.escalated:
            return None
        if now < case.due:
            return case.due - now
        if case.last_attempt is not None and now < case.last_attempt + rule.settle_s:
            return case.last_attempt + rule.settle_s - now
        if case.attempts >= rule.max_attempts:
            self._escalate(case)
            return None
        cooldown_key = (rule.name, case.record.event.stream)
        last = self.last_run.get(cooldown_key)
        if last is not None and now < last + rule.cooldown_s:
            return last + rule.cooldown_s - now
        case.attempts += 1
        case.last_attempt = self.last_run[cooldown_key] = now
        case.running = self._pool.submit(self.execute, rule, case.record, case.attempts)
        return 0.0

    def _collect(self, case: _Case) -> None:
        assert case.running is not None
        outcome, case.running = case.running.result(), None
        self._journal(SUCCEEDED if outcome.ok else FAILED, case, outcome.details,
                      Severity.INFO if outcome.ok else Severity.MAJOR)

    def execute(self, rule: ActionRule, record: Record, attempt: int) -> Outcome:
        event = record.event
        info = self.streams(event.stream)
        stream = info.model_dump() if info else {"id": event.stream}
        values = template_values(stream, {"id": record.id, "kind": event.kind, "severity": event.severity.value,
                                          "start": event.start, "end": event.end, "stream": event.stream},
                                 rule.name, attempt)
        details: dict[str, Any] = {"rule": rule.name, "attempt": attempt, "max_attempts": rule.max_attempts,
                                   "defect_id": record.id, "defect_kind": event.kind}
        started = time.monotonic()
        try:
            if rule.http is not None:
                ok = self._http(rule, values, details)
            else:
                ok = self._command(rule, values, details)
        except MissingValue as err:
            ok, details["error"] = False, f"no value for {{{err}}} on stream {event.stream!r}"
        except Exception as err:  # an outcome, whatever happened: the engine must go on
            log.exception("action %s on %s: unexpected error", rule.name, event.stream)
            ok, details["error"] = False, f"{type(err).__name__}: {err}"
        details["duration_ms"] = round((time.monotonic() - started) * 1000.0, 1)
        level = logging.INFO if ok else logging.WARNING
        log.log(level, "action %s on %s (attempt %d): %s", rule.name, event.stream, attempt,
                "succeeded" if ok else f"failed: {details.get('error') or details}")
        return Outcome(ok, details)

    def _http(self, rule: ActionRule, values: dict[str, Any], details: dict[str, Any]) -> bool:
        spec = rule.http
        assert spec is not None
        url = str(render(spec.url, values, url=True))
        headers = {name: str(render(value, values)) for name, value in spec.headers.items()}
        details.update(action="http", method=spec.method, url=url)
        if any("\r" in v or "\n" in v for v in headers.values()):
            details["error"] = "a header value holds a line break"
            return False
        body = render_json(spec.json_body, values) if spec.json_body is not None else None
        try:
            response = self._client.request(spec.method, url, json=body, headers=headers, timeout=spec.timeout_s)
        except httpx.HTTPError as err:
            details["error"] = f"{type(err).__name__}: {err}"
            return False
        details["status"] = response.status_code
        if not response.is_success:
            details["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
        return response.is_success

    def _command(self, rule: ActionRule, values: dict[str, Any], details: dict[str, Any]) -> bool:
        spec = rule.command
        assert spec is not None
        argv = [str(render(element, values)) for element in spec.argv]  # one element, one argument
        details.update(action="command", argv=argv)
        try:
            done = subprocess.run(argv, shell=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=spec.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            details["error"] = f"timed out after {spec.timeout_s} s"
            return False
        except (OSError, ValueError) as err:
            details["error"] = f"{type(err).__name__}: {err}"
            return False
        details.update(exit_code=done.returncode, stdout=done.stdout[-500:], stderr=done.stderr[-500:])
        if done.returncode != 0:
            details["error"] = f"exit code {done.returncode}"
        return done.returncode == 0

    def _escalate(self, case: _Case) -> None:
        case.escalated = True
        log.warning("action %s on %s: defect %s still open after %d attempts, escalating", case.rule.name,
                    case.record.event.stream, case.record.id, case.attempts)
        self._journal(ESCALATED, case, {"rule": case.rule.name, "attempts": case.attempts,
                                        "defect_id": case.record.id, "defect_kind": case.record.event.kind},
                      Severity.CRITICAL)

    def _journal(self, kind: str, case: _Case, details: dict[str, Any], severity: Severity) -> Record:
        defect = case.record.event
        return self.journal.append(Event(kind, defect.start, defect.end, severity, details=details,
                                         stream=defect.stream, at=utc_now_iso()))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for case in [*self.cases.values(), *self._ended]:
            if case.running is not None:
                self._collect(case)
        self._client.close()
