"""JSON lines on stdout (or any text stream): one journal record a line, for log shippers."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from streamqc.sinks.journal import Record
from streamqc.sinks.notifiers.base import Notifier, RetryableError


class StdoutNotifier(Notifier):
    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        super().__init__(name)
        self.stream = stream

    def send(self, record: Record, defect_opened: bool) -> None:
        out = self.stream or sys.stdout
        try:
            out.write(json.dumps({"key": record.key, **record.to_dict()}, separators=(",", ":")) + "\n")
            out.flush()
        except (OSError, ValueError) as err:  # a closed pipe; retried like a receiver that is down
            raise RetryableError(f"cannot write: {err}") from None
