"""Encryption at rest for stored original mails (the inbox's raw bytes), with Fernet from
`cryptography`: the column type seals on write and opens on read, so intake, worker and CLI
need no code of their own. Values written before a key was configured stay readable."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import LargeBinary, TypeDecorator

MARKER = b"pdseal1:"
_fernet: Fernet | None = None


class SealError(Exception):
    """A sealed value cannot be opened (wrong or missing key)."""


def configure(key: bytes | None) -> None:
    """Set the process's sealing key (Fernet format), or None to store plain bytes."""
    global _fernet
    _fernet = Fernet(key) if key is not None else None


def seal(data: bytes) -> bytes:
    return data if _fernet is None else MARKER + _fernet.encrypt(data)


def unseal(data: bytes) -> bytes:
    if not data.startswith(MARKER):
        return data
    if _fernet is None:
        raise SealError("stored original is encrypted, but no key is configured")
    try:
        return _fernet.decrypt(data[len(MARKER) :])
    except InvalidToken as exc:
        raise SealError("stored original cannot be decrypted with the configured key") from exc


class SealedBytes(TypeDecorator[bytes]):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else seal(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else unseal(bytes(value))
