"""Encryption at rest for stored original mails (the inbox's raw bytes) and outbox mails, with
Fernet from `cryptography`. A `Sealer` holds the key; the database it is given to
(`open_database(url, sealer)`) carries it on its engine, and the column type seals on write and
opens on read with it, so intake, worker and CLI need no code of their own and no process-wide
key exists. Values written before a key was configured stay readable.

Key rotation: a Sealer may also hold previous keys, used only to open (MultiFernet); `current`
tells whether a stored value is sealed with the current key, so `postdesk secrets reseal` can
re-encrypt what is not (storage.rekey)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, LargeBinary, TypeDecorator

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

MARKER = b"pdseal1:"
_ON_DIALECT = "postdesk_sealer"  # the attribute of an engine's dialect that holds its Sealer


class SealError(Exception):
    """A sealed value cannot be opened (wrong or missing key)."""


class Sealer:
    """Seals and opens stored mail and attachments with one key (Fernet format), opening also
    with `previous` keys (a rotated secret); without a key it stores plain bytes and opens only
    plain ones."""

    def __init__(self, key: bytes | None, previous: tuple[bytes, ...] = ()) -> None:
        self._key = key
        self._previous = tuple(previous)
        self._fernet: Fernet | None = None  # built on first use: importing cryptography costs
        self._opener: Fernet | MultiFernet | None = None

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def _cipher(self) -> Fernet | None:
        if self._fernet is None and self._key is not None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key)
        return self._fernet

    def _open_cipher(self) -> Fernet | MultiFernet | None:
        if self._opener is None:
            current = self._cipher()
            if not self._previous:
                self._opener = current
            else:
                from cryptography.fernet import Fernet, MultiFernet

                keys = ([current] if current is not None else []) + [
                    Fernet(key) for key in self._previous
                ]
                self._opener = MultiFernet(keys)
        return self._opener

    def seal(self, data: bytes) -> bytes:
        fernet = self._cipher()
        return data if fernet is None else MARKER + fernet.encrypt(data)

    def unseal(self, data: bytes) -> bytes:
        if not data.startswith(MARKER):
            return data
        fernet = self._open_cipher()
        if fernet is None:
            raise SealError("stored value is encrypted, but no key is configured")
        from cryptography.fernet import InvalidToken

        try:
            return fernet.decrypt(data[len(MARKER) :])
        except InvalidToken as exc:
            raise SealError("stored value cannot be decrypted with the configured keys") from exc

    def current(self, stored: bytes) -> bool:
        """Whether `stored` is as this sealer would write it now: sealed with the current key
        (or plain, when there is no key). False for plain values and for values sealed with a
        previous key while a key is configured: `postdesk secrets reseal` rewrites those."""
        fernet = self._cipher()
        if fernet is None:
            return not stored.startswith(MARKER)
        if not stored.startswith(MARKER):
            return False
        from cryptography.fernet import InvalidToken

        try:
            fernet.decrypt(stored[len(MARKER) :])
        except InvalidToken:
            return False
        return True


PLAIN = Sealer(None)


def attach(engine: Engine, sealer: Sealer) -> None:
    """Let `engine`'s sealed columns use `sealer` (each engine has a dialect of its own)."""
    setattr(engine.dialect, _ON_DIALECT, sealer)


def _sealer(dialect: Any) -> Sealer:
    sealer = getattr(dialect, _ON_DIALECT, None)
    return sealer if isinstance(sealer, Sealer) else PLAIN


class SealedBytes(TypeDecorator[bytes]):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else _sealer(dialect).seal(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else _sealer(dialect).unseal(bytes(value))
