"""An MPEG-TS file sent over UDP to 127.0.0.1 at the pace of its PCR, as a live encoder would."""

from __future__ import annotations

import pathlib
import socket
import threading
import time

TS_PACKET = 188
PACKETS_PER_DATAGRAM = 7  # 1316 bytes, the usual for TS over UDP
PCR_HZ = 27_000_000


def pcr_of(packet: bytes) -> int | None:
    """The PCR (27 MHz ticks) carried in a TS packet's adaptation field, if any."""
    has_adaptation = packet[3] & 0x20
    if not has_adaptation or packet[4] < 7 or not packet[5] & 0x10:
        return None
    base = (packet[6] << 25) | (packet[7] << 17) | (packet[8] << 9) | (packet[9] << 1) | (packet[10] >> 7)
    extension = ((packet[10] & 1) << 8) | packet[11]
    return base * 300 + extension


class UdpTsSender:
    """Send `path` (MPEG-TS) to udp://127.0.0.1:`port`, paced by its PCR, on a thread.

    `stall(seconds)`: send nothing for that long while the clock runs on (the packets
    of that time are lost, as on a broken contribution link), then carry on.
    `loop=True` starts the file again at its end (its timestamps then jump back).
    `sent_s` is how much media time has been sent; `started` is the monotonic time the
    first datagram was due (a packet with PCR p is sent at started + (p - first PCR)).
    Use as a context manager.
    """

    def __init__(self, path: str | pathlib.Path, port: int, loop: bool = False) -> None:
        self.data = pathlib.Path(path).read_bytes()
        if len(self.data) < TS_PACKET or self.data[0] != 0x47:
            raise ValueError(f"not MPEG-TS: {path}")
        self.port = port
        self.loop = loop
        self.sent_s = 0.0
        self.datagrams = 0
        self.started: float | None = None
        self._stall_until = 0.0
        self._stop = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._thread = threading.Thread(target=self._run, name="udp-sender", daemon=True)

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def start(self) -> "UdpTsSender":
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the file has been sent (not looping); True when it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> "UdpTsSender":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        step = TS_PACKET * PACKETS_PER_DATAGRAM
        started = self.started = time.monotonic()
        played = 0.0  # media seconds of earlier passes
        while not self._stop.is_set():
            first_pcr = None
            last_s = 0.0
            for offset in range(0, len(self.data) - TS_PACKET + 1, step):
                datagram = self.data[offset:offset + step]
                for k in range(0, len(datagram), TS_PACKET):
                    pcr = pcr_of(datagram[k:k + TS_PACKET])
                    if pcr is not None:
                        first_pcr = pcr if first_pcr is None else first_pcr
                        last_s = (pcr - first_pcr) / PCR_HZ
                        break
                due = started + played + last_s
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self.sent_s = played + last_s
                if time.monotonic() < self._stall_until:
                    continue
                self._socket.sendto(datagram, ("127.0.0.1", self.port))
                self.datagrams += 1
            if not self.loop:
                return
            played += last_s + 0.04

def udp_bound(port: int) -> bool:
    """Whether some socket on this host is bound to UDP `port` (the monitor listening)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(wanted) for line in lines):
            return True
    return False
