"""Thread-Index against real Outlook/Exchange values (taken from public mailing-list archives)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.mail import threadindex
from tests.helpers import OUTLOOK_REPLY  # Exchange Online, a reply (one child block)


def reply_times(index: bytes) -> list[datetime]:
    """The times recorded by the child blocks, oldest first (each is header time + delta, as
    [MS-OXOMSG] 2.2.1.3 lays them out): what a test reads back from an index it built."""
    base = threadindex.header_time(index)
    assert base is not None
    times = []
    size = threadindex.CHILD_SIZE
    for offset in range(threadindex.HEADER_SIZE, len(index) - size + 1, size):
        block = int.from_bytes(index[offset : offset + 4], "big")
        shift = 23 if block >> 31 else 18
        ticks = (block & 0x7FFFFFFF) << shift  # 100 ns ticks
        times.append(base + timedelta(microseconds=ticks // 10))
    return times

# Outlook, new conversation; the mail's Date was 2022-07-20 19:58:07 +0000 (the index is made
# when the compose window opens, so its time is a little earlier).
OUTLOOK_NEW = "AQHYnHLVENTK1UHdsEyeUwZej/8cmg=="
# Eight reply levels deep.
OUTLOOK_DEEP = (
    "AQHWW4kYTVU0hTDyYEitKlUuU5vZlKkKf2uAgAACLICAAR7YAIAAIxaAgAAB34CAAARBAIAAAV+AgAADXAA="
)


def test_decodes_real_outlook_headers() -> None:
    index = threadindex.decode(OUTLOOK_NEW)
    assert index is not None and len(index) == 22 and index[0] == 0x01
    stamp = threadindex.header_time(index)
    assert stamp is not None
    sent = datetime(2022, 7, 20, 19, 58, 7, tzinfo=UTC)
    assert timedelta(0) < sent - stamp < timedelta(minutes=5)
    reply = threadindex.decode(OUTLOOK_REPLY)
    assert reply is not None and len(reply) == 27
    started = threadindex.header_time(reply)
    assert started is not None and started.strftime("%Y-%m-%d %H:%M") == "2019-09-26 18:38"
    deep = threadindex.decode(OUTLOOK_DEEP)
    assert deep is not None and len(deep) == 22 + 8 * 5
    assert len(reply_times(deep)) == 8


def test_child_of_a_real_outlook_index_keeps_the_conversation() -> None:
    parent = threadindex.decode(OUTLOOK_REPLY)
    assert parent is not None
    now = datetime(2019, 9, 27, 12, 30, tzinfo=UTC)
    child = threadindex.child_index(parent, now)
    assert len(child) == len(parent) + 5 and child.startswith(parent)
    assert threadindex.conversation_key(child) == threadindex.conversation_key(parent)
    # the new block records "now" relative to the header (to 2**18 * 100 ns, about 26 ms)
    assert abs(reply_times(child)[-1] - now) < timedelta(milliseconds=30)
    assert child[22 + 5] >> 7 == 0  # a delta under 1.7 years uses the fine DeltaCode 0 form


def test_child_long_after_the_header_uses_the_coarse_form() -> None:
    parent = threadindex.decode(OUTLOOK_NEW)
    assert parent is not None
    later = datetime(2026, 1, 1, tzinfo=UTC)
    child = threadindex.child_index(parent, later)
    assert child[22] >> 7 == 1
    assert abs(reply_times(child)[-1] - later) < timedelta(seconds=1)


def test_new_index_layout() -> None:
    guid = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
    now = datetime(2024, 7, 1, 8, 5, tzinfo=UTC)
    index = threadindex.new_index(now, guid)
    assert len(index) == 22 and index[0] == 0x01 and index[6:] == guid.bytes
    stamp = threadindex.header_time(index)
    assert stamp is not None and timedelta(0) <= now - stamp < timedelta(seconds=2)
    assert threadindex.decode(threadindex.encode(index)) == index
    assert threadindex.header_from_key(threadindex.conversation_key(index) or "") == index


def test_conversation_key_and_decode_reject_garbage() -> None:
    assert threadindex.conversation_key(b"\x01" * 21) is None
    assert threadindex.conversation_key(bytes(27)) == bytes(22).hex()
    assert threadindex.decode("not base64 at all!") is None
    assert threadindex.decode("AQID") is None  # valid base64, but shorter than a header
    assert threadindex.decode(" AQHYnHLVENTK1UHd\r\n sEyeUwZej/8cmg== ") is not None  # folded
    assert threadindex.header_from_key("zz") is None


@pytest.mark.parametrize("parent", [bytes(21), bytes(24), bytes(22 + 5 * 200)])
def test_child_of_a_malformed_index_is_refused(parent: bytes) -> None:
    with pytest.raises(ValueError):
        threadindex.child_index(parent, datetime.now(UTC))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        threadindex.new_index(datetime(2024, 1, 1), uuid.uuid4())
