"""Outlook's Thread-Index ([MS-OXOMSG] 2.2.1.3 PidTagConversationIndex), so replies from Outlook
thread onto the right ticket even when a client drops In-Reply-To/References, and so our mails
appear in the requester's Outlook conversation.

Layout: a 22-byte header, then one 5-byte block per reply level.

    header  = 0x01 | FILETIME bits 63..24 (5 bytes, big-endian) | conversation GUID (16 bytes,
              Data1-3 big-endian, which is `uuid.UUID.bytes`)
    child   = DeltaCode (1 bit) | TimeDelta (31 bits) | random (8 bits)

TimeDelta is the time since the header's FILETIME in 100 ns units: bits 48..18 when DeltaCode is
0, bits 53..23 when it is 1 (deltas too large for the first form). The conversation key is the
hex of the header: every message of one Outlook conversation shares it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import UTC, datetime, timedelta

HEADER_SIZE = 22
CHILD_SIZE = 5
MAX_INDEX_SIZE = 512  # a longer index is garbage or a loop; we do not extend it further

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_TICKS_PER_MICROSECOND = 10
_SHORT_DELTA_LIMIT = 1 << 49  # deltas below this fit as bits 48..18
_TIME_DELTA_MASK = 0x7FFF_FFFF


def filetime(moment: datetime) -> int:
    """A Windows FILETIME (100 ns ticks since 1601-01-01 UTC) for an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: Thread-Index times must be timezone-aware")
    delta = moment.astimezone(UTC) - _FILETIME_EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros * _TICKS_PER_MICROSECOND


def header_time(index: bytes) -> datetime | None:
    """The time stored in an index's header (to about 1.7 s), or None for a short index."""
    if len(index) < HEADER_SIZE:
        return None
    ticks = int.from_bytes(index[1:6], "big") << 24
    return _FILETIME_EPOCH + timedelta(microseconds=ticks // _TICKS_PER_MICROSECOND)


def new_index(now: datetime, guid: uuid.UUID) -> bytes:
    """The 22-byte header that starts a new conversation at `now`."""
    ticks = filetime(now) >> 24
    return b"\x01" + ticks.to_bytes(5, "big") + guid.bytes


def child_index(parent: bytes, now: datetime) -> bytes:
    """`parent` plus one 5-byte block for a reply written at `now`.

    Raises ValueError when `parent` is not a Thread-Index (shorter than its header, not a
    header plus whole child blocks, or implausibly long)."""
    if len(parent) < HEADER_SIZE or (len(parent) - HEADER_SIZE) % CHILD_SIZE:
        raise ValueError("not a Thread-Index: wrong length")
    if len(parent) + CHILD_SIZE > MAX_INDEX_SIZE:
        raise ValueError("Thread-Index too long to extend")
    base = int.from_bytes(parent[1:6], "big") << 24
    delta = max(0, filetime(now) - base)
    if delta < _SHORT_DELTA_LIMIT:
        block = (delta >> 18) & _TIME_DELTA_MASK
    else:
        block = (1 << 31) | ((delta >> 23) & _TIME_DELTA_MASK)
    return parent + block.to_bytes(4, "big") + secrets.randbits(8).to_bytes(1, "big")


def conversation_key(index: bytes) -> str | None:
    """Hex of the 22-byte header, shared by a whole conversation; None if `index` is shorter."""
    if len(index) < HEADER_SIZE:
        return None
    return index[:HEADER_SIZE].hex()


def header_from_key(key: str) -> bytes | None:
    """The 22 header bytes back from a conversation key, or None if `key` is not one."""
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        return None
    return raw if len(raw) == HEADER_SIZE else None


def encode(index: bytes) -> str:
    """The header value: plain base64, as Outlook writes it."""
    return base64.b64encode(index).decode("ascii")


def decode(value: str) -> bytes | None:
    """Bytes of a Thread-Index header value, or None if it is not base64 of at least a header."""
    cleaned = "".join(value.split())
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) >= HEADER_SIZE else None
