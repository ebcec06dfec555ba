"""Run the installed `streamqc` command on a pseudo-terminal, as a person on shift does."""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

STREAMQC = pathlib.Path(sys.executable).with_name("streamqc")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def run_in_terminal(*args: str, timeout_s: float = 120.0, columns: int = 160) -> tuple[int, str]:
    """Exit status and the text the command wrote to the terminal (stdout and stderr), its
    colours and cursor moves taken out."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"}
    process = subprocess.Popen([str(STREAMQC), *args], stdin=follower, stdout=follower, stderr=follower,
                               env=env, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the terminal closed: the command is done
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise TimeoutError(f"streamqc {' '.join(args)} ran over {timeout_s} s")
        return process.wait(timeout=10), _ESCAPES.sub("", b"".join(chunks).decode("utf-8", "replace"))
    finally:
        os.close(leader)
