"""Reading one SMTP DATA body with no line-length limit, only the message size limit.

aiosmtpd's DATA reader refuses a mail with `500 Line too long` (permanent) once one CRLF-ended
line exceeds its stream buffer. A mail written with bare LF line ends is one such "line" from
start to end, and HTML mails carry very long lines too: RFC 5321 4.5.3.1.6 lets a server accept
longer lines than 1000 octets, and refusing a real mail for its layout is refusing it for
cosmetics. Here a line longer than the buffer is taken in buffer-sized pieces; memory stays
bounded by the size limit (pieces of an oversized mail are dropped while the rest is drained).

The end of data is only a lone `.` between two CRLFs (RFC 5321 4.1.1.4), never a dot after a
bare LF or CR: that closes SMTP smuggling, as aiosmtpd's reader does.
"""

from __future__ import annotations

import asyncio

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"


async def read_data(reader: asyncio.StreamReader, size_limit: int) -> bytes | None:
    """The body up to the end-of-data line, dot-unstuffed; None if it exceeded `size_limit`.

    Bytes are counted as sent (stuffing dots included), like aiosmtpd's own limit; an
    oversized body is read to its end all the same, so the session can go on after a 552."""
    parts: list[bytes] = []
    size = 0
    at_line_start = True
    while True:
        try:
            piece = await reader.readuntil(CRLF)
        except asyncio.LimitOverrunError as overrun:
            # No CRLF within the buffer: take what is there (never a CR that may pair with
            # the next byte's LF: `consumed` stops short of it) and go on with the same line.
            piece = await reader.read(overrun.consumed)
        if at_line_start and piece == END_OF_DATA:
            break
        if size <= size_limit:
            size += len(piece)
            if size > size_limit:
                parts.clear()
            else:
                parts.append(piece[1:] if at_line_start and piece[:1] == b"." else piece)
        at_line_start = piece.endswith(CRLF)
    return None if size > size_limit else b"".join(parts)
