"""Unpack Outlook's `winmail.dat` (application/ms-tnef) into the files and text inside it.

Outlook in "rich text" mode wraps every attachment of a mail in one TNEF blob that other
clients cannot open; a ticket must show the real files. tnefparse does the decoding; this
module maps its objects onto plain values and turns its many failure modes into one.

tnefparse runs in a child process (`python -m gateway.mail.tnef`) with a time and memory
limit: it trusts the property counts in the blob, so a 60-byte winmail.dat claiming
4 billion MAPI properties keeps it looping for hours (measured: 50 million took 208 s).
A crafted attachment must not stall the worker; the ~65 ms a child costs is paid only
for the rare mail that carries a winmail.dat.
"""

from __future__ import annotations

import base64
import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from tnefparse import properties as mapi
from tnefparse.tnef import TNEF

from gateway.mail.filenames import type_for
from gateway.mail.text import decode_bytes


class WinmailError(ValueError):
    """The blob is not TNEF or is too broken to unpack; the message is generic."""


@dataclass(frozen=True, slots=True)
class WinmailFile:
    name: str  # as Outlook stored it, not yet made safe
    content_type: str
    data: bytes


@dataclass(slots=True)
class Winmail:
    files: list[WinmailFile] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    rtf_only: bool = False  # the body exists only as compressed RTF, which is not converted


TIMEOUT_SECONDS = 5.0
_MEMORY_BYTES = 2 << 30  # address space of the child


def unpack(data: bytes) -> Winmail:
    """Decode a TNEF blob in a limited child process; raise WinmailError if impossible."""
    try:
        child = subprocess.run(
            [sys.executable, "-I", "-m", "gateway.mail.tnef"],
            input=data, capture_output=True, timeout=TIMEOUT_SECONDS, check=False,
        )
    except subprocess.TimeoutExpired:
        raise WinmailError(f"unpacking took longer than {TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise WinmailError(f"unpacker did not start ({type(exc).__name__})") from None
    try:
        answer = json.loads(child.stdout)
    except ValueError:
        raise WinmailError(f"unpacker failed (exit code {child.returncode})") from None
    if "error" in answer:
        raise WinmailError(f"not a readable TNEF stream ({answer['error']})")
    files = [WinmailFile(f["name"], f["content_type"], base64.b64decode(f["data"]))
             for f in answer.pop("files")]
    return Winmail(files=files, **answer)


def _child_main() -> None:
    """`python -m gateway.mail.tnef`: TNEF on stdin, one JSON object on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_BYTES, _MEMORY_BYTES))
    data = sys.stdin.buffer.read()
    try:
        result = _unpack(data)
    except Exception as exc:  # tnefparse raises anything from struct.error to TypeError
        json.dump({"error": type(exc).__name__}, sys.stdout)
        return
    answer: dict[str, Any] = asdict(result)
    for item in answer["files"]:
        item["data"] = base64.b64encode(item["data"]).decode("ascii")
    json.dump(answer, sys.stdout)


def _unpack(data: bytes) -> Winmail:
    tnef = TNEF(data)  # checksums on: without them tnefparse logs an INFO line per call
    codepage = tnef.codepage or "cp1252"
    result = Winmail(text=_text(tnef.body, codepage), html=_text(tnef.htmlbody, codepage))
    result.rtf_only = bool(getattr(tnef, "_rtfbody", None)) and not (result.text or result.html)
    for item in tnef.attachments:
        name = _name(item, codepage)
        ctype = _mapi_value(item, mapi.MAPI_ATTACH_MIME_TAG, codepage) or type_for(name)
        payload = item.data if isinstance(item.data, bytes) else b""
        result.files.append(
            WinmailFile(name, (ctype or "application/octet-stream").lower(), payload)
        )
    return result


def _text(value: Any, codepage: str) -> str | None:
    if isinstance(value, bytes):
        value = decode_bytes(value.rstrip(b"\x00"), codepage)[0]
    if not isinstance(value, str) or not value.strip("\x00 \r\n"):
        return None
    return value.rstrip("\x00")


def _name(item: Any, codepage: str) -> str:
    """The long file name if Outlook stored one, else the (8.3) title in the codepage."""
    long_name = _mapi_value(item, mapi.MAPI_ATTACH_LONG_FILENAME, codepage)
    if long_name:
        return long_name
    title = getattr(item, "_name", b"")  # tnefparse's own `.name` assumes UTF-8 and raises
    if isinstance(title, bytes):
        return decode_bytes(title, codepage)[0].strip("\x00")
    return str(title).strip("\x00")


def _mapi_value(item: Any, prop: int, codepage: str) -> str | None:
    for attr in getattr(item, "mapi_attrs", []):
        if attr.name != prop:
            continue
        value = attr.data
        if isinstance(value, bytes):
            value = decode_bytes(value, codepage)[0]
        return str(value).strip("\x00 ") or None
    return None


if __name__ == "__main__":
    _child_main()
