"""Just enough MPEG-TS (ISO/IEC 13818-1) to damage a stream and move its clock.

Works on the bytes of a whole file as a (n, 188) uint8 array. Knows packet headers,
adaptation fields, PCR and the PTS/DTS of PES headers; nothing about PSI tables beyond
finding the elementary PIDs by their PES stream ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PACKET = 188
SYNC = 0x47
PTS_WRAP = 1 << 33


def packets(data: bytes) -> np.ndarray:
    """The file as an array of 188-byte packets (a copy: callers may edit it)."""
    n = len(data) // PACKET
    arr = np.frombuffer(data[: n * PACKET], np.uint8).reshape(n, PACKET).copy()
    if n and not np.all(arr[:, 0] == SYNC):
        raise ValueError("not a 188-byte MPEG-TS stream (lost sync)")
    return arr


def pids(pk: np.ndarray) -> np.ndarray:
    return ((pk[:, 1].astype(np.int32) & 0x1F) << 8) | pk[:, 2]


def unit_starts(pk: np.ndarray) -> np.ndarray:
    return (pk[:, 1] & 0x40) != 0


def payload_offsets(pk: np.ndarray) -> np.ndarray:
    """Index of the first payload byte of each packet (188 when there is none)."""
    afc = (pk[:, 3] >> 4) & 0x3
    off = np.full(len(pk), 4, np.int32)
    has_af = (afc & 0x2) != 0
    off[has_af] += 1 + pk[has_af, 4].astype(np.int32)
    off[(afc & 0x1) == 0] = PACKET
    return np.minimum(off, PACKET)


def _read_ts(b: np.ndarray, i: int) -> int:
    return ((int(b[i]) >> 1 & 0x7) << 30) | (int(b[i + 1]) << 22) | ((int(b[i + 2]) >> 1) << 15) | \
        (int(b[i + 3]) << 7) | (int(b[i + 4]) >> 1)


def _write_ts(b: np.ndarray, i: int, value: int) -> None:
    value %= PTS_WRAP
    prefix = int(b[i]) & 0xF0
    b[i] = prefix | ((value >> 29) & 0x0E) | 1
    b[i + 1] = (value >> 22) & 0xFF
    b[i + 2] = ((value >> 14) & 0xFE) | 1
    b[i + 3] = (value >> 7) & 0xFF
    b[i + 4] = ((value << 1) & 0xFE) | 1


@dataclasses.dataclass(slots=True)
class PesHeader:
    packet: int  # index of the packet holding the header
    stream_id: int
    pts: int | None
    dts: int | None
    pts_at: int  # byte offset of the PTS field inside the packet (-1: none)
    dts_at: int


def pes_header(pk: np.ndarray, index: int, offsets: np.ndarray | None = None) -> PesHeader | None:
    """The PES header starting in packet `index` (a unit start), or None."""
    b = pk[index]
    o = int(offsets[index]) if offsets is not None else int(payload_offsets(pk[index : index + 1])[0])
    if o + 14 > PACKET or b[o] != 0 or b[o + 1] != 0 or b[o + 2] != 1:
        return None
    sid = int(b[o + 3])
    flags = int(b[o + 7]) >> 6
    pts = dts = None
    pts_at = dts_at = -1
    if flags & 0x2:
        pts_at = o + 9
        pts = _read_ts(b, pts_at)
    if flags == 0x3:
        dts_at = o + 14
        dts = _read_ts(b, dts_at)
    return PesHeader(index, sid, pts, dts, pts_at, dts_at)


def elementary_pids(pk: np.ndarray) -> dict[str, int]:
    """{'video': pid, 'audio': pid} from the stream ids of the first PES headers seen."""
    found: dict[str, int] = {}
    offs = payload_offsets(pk)
    for i in np.flatnonzero(unit_starts(pk)):
        h = pes_header(pk, int(i), offs)
        if h is None:
            continue
        pid = int(pids(pk[i : i + 1])[0])
        if 0xE0 <= h.stream_id <= 0xEF:
            found.setdefault("video", pid)
        elif 0xC0 <= h.stream_id <= 0xDF or h.stream_id == 0xBD:
            found.setdefault("audio", pid)
        if len(found) == 2:
            break
    return found


def pes_map(pk: np.ndarray, pid: int) -> tuple[np.ndarray, list[PesHeader]]:
    """For each packet of `pid`: the index (into the returned headers) of its PES."""
    offs = payload_offsets(pk)
    mine = np.flatnonzero(pids(pk) == pid)
    starts = unit_starts(pk)
    owner = np.full(len(pk), -1, np.int64)
    headers: list[PesHeader] = []
    cur = -1
    for i in mine:
        if starts[i]:
            h = pes_header(pk, int(i), offs)
            if h is not None:
                headers.append(h)
                cur = len(headers) - 1
        owner[i] = cur
    return owner, headers


def pcr_fields(pk: np.ndarray) -> list[tuple[int, int]]:
    """(packet index, PCR base in 90 kHz) of every packet carrying a PCR."""
    out = []
    afc = (pk[:, 3] >> 4) & 0x3
    for i in np.flatnonzero(((afc & 0x2) != 0) & (pk[:, 4] > 0) & ((pk[:, 5] & 0x10) != 0)):
        b = pk[i]
        base = (int(b[6]) << 25) | (int(b[7]) << 17) | (int(b[8]) << 9) | (int(b[9]) << 1) | (int(b[10]) >> 7)
        out.append((int(i), base))
    return out


def _write_pcr_base(b: np.ndarray, base: int) -> None:
    base %= PTS_WRAP
    b[6] = (base >> 25) & 0xFF
    b[7] = (base >> 17) & 0xFF
    b[8] = (base >> 9) & 0xFF
    b[9] = (base >> 1) & 0xFF
    b[10] = (int(b[10]) & 0x7F) | ((base & 1) << 7)


def jump_timestamps(pk: np.ndarray, jumps: list[tuple[int, int]]) -> list[int]:
    """Move the clock: each (from_pts, offset) adds `offset` (90 kHz) from `from_pts` on.

    `from_pts` values are on the original time line and offsets accumulate, so any mix of
    forward and backward jumps is unambiguous. Models an unannounced splice: from the
    first PES stamped at or after a jump, every elementary stream and the program clock
    continue on the new time line. Returns, per jump, the packet where it starts.
    """
    jumps = sorted(jumps)
    froms = np.array([f for f, _ in jumps], np.int64)
    cum = np.cumsum([0] + [o for _, o in jumps])
    offs = payload_offsets(pk)
    firsts = [len(pk)] * len(jumps)
    for i in np.flatnonzero(unit_starts(pk)):
        h = pes_header(pk, int(i), offs)
        if h is None or h.pts is None or not (0xC0 <= h.stream_id <= 0xEF or h.stream_id == 0xBD):
            continue
        k = int(np.searchsorted(froms, h.pts, side="right"))  # jumps at or before this PES
        if k == 0:
            continue
        _write_ts(pk[i], h.pts_at, h.pts + int(cum[k]))
        if h.dts is not None:
            _write_ts(pk[i], h.dts_at, h.dts + int(cum[k]))
        firsts[k - 1] = min(firsts[k - 1], int(i))
    starts = np.array(firsts)
    for i, base in pcr_fields(pk):
        k = int(np.searchsorted(starts, i, side="right"))  # time lines begun at or before i
        if k:
            _write_pcr_base(pk[i], base + int(cum[k]))
    return firsts
