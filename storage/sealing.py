"""Encryption at rest for stored original mails (the inbox's raw bytes), with Fernet from
`cryptography`: the column type seals on write and opens on read, so intake, worker and CLI
need no code of their own. Values written before a key was configured stay readable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, TypeDecorator

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

MARKER = b"pdseal1:"
_key: bytes | None = None
_fernet: Fernet | None = None  # built from _key on first use: importing cryptography costs


class SealError(Exception):
    """A sealed value cannot be opened (wrong or missing key)."""


def configure(key: bytes | None) -> None:
    """Set the process's sealing key (Fernet format), or None to store plain bytes."""
    global _key, _fernet
    _key, _fernet = key, None


def _cipher() -> Fernet | None:
    global _fernet
    if _fernet is None and _key is not None:
        from cryptography.fernet import Fernet

        _fernet = Fernet(_key)
    return _fernet


def seal(data: bytes) -> bytes:
    fernet = _cipher()
    return data if fernet is None else MARKER + fernet.encrypt(data)


def unseal(data: bytes) -> bytes:
    if not data.startswith(MARKER):
        return data
    fernet = _cipher()
    if fernet is None:
        raise SealError("stored original is encrypted, but no key is configured")
    from cryptography.fernet import InvalidToken

    try:
        return fernet.decrypt(data[len(MARKER) :])
    except InvalidToken as exc:
        raise SealError("stored original cannot be decrypted with the configured key") from exc


class SealedBytes(TypeDecorator[bytes]):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else seal(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else unseal(bytes(value))
