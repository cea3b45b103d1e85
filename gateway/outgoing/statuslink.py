"""The key of a requester's status page (`/s/<token>`, gateway.web): an HMAC of the server
secret over the ticket reference and the requester's address, so letters can put the link into
every mail to the requester and the page can check it without storing anything.

The token is `<ref>.<mac>`: the reference says which ticket to look up, the MAC (128 bits,
base64url) proves the holder got it from a mail to that ticket's requester. It is revoked by
itself when the ticket is deleted (nothing to look up) or the secret is rotated (no previous
key is tried). Whoever holds the link can read the ticket's public conversation: it goes only
into mail whose sole recipient is the requester (see `for_mail`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from gateway.config import Settings

MIN_KEY_BYTES = 16
_MAC_BYTES = 16
_TOKEN = re.compile(r"^(?P<ref>[A-Z][A-Z0-9]{1,9}-[0-9]{1,12})\.(?P<mac>[A-Za-z0-9_-]{22})$")


def _mac(key: bytes, ref: str, requester: str) -> str:
    message = f"status-page\x00{ref.upper()}\x00{requester.strip().lower()}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token(key: bytes, ref: str, requester: str) -> str:
    """The status-page token of ticket `ref` for `requester`."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError("the status-link key is missing")
    return f"{ref.upper()}.{_mac(key, ref, requester)}"


def ref_of(value: str) -> str | None:
    """The ticket reference a token names, or None when it is not shaped like a token."""
    found = _TOKEN.match(value)
    return found.group("ref") if found else None


def verify(key: bytes, value: str, requester: str) -> bool:
    """Whether `value` is the token of its ticket for `requester` (constant-time compare)."""
    ref = ref_of(value)
    if ref is None or len(key) < MIN_KEY_BYTES:
        return False
    return hmac.compare_digest(value, token(key, ref, requester))


def url(settings: Settings, key: bytes, ref: str, requester: str) -> str | None:
    """The link to the status page, or None while `web.public_url` is not configured."""
    if settings.web is None or len(key) < MIN_KEY_BYTES:
        return None
    return f"{settings.web.public_url.rstrip('/')}/s/{token(key, ref, requester)}"


def for_mail(
    settings: Settings, key: bytes, ref: str, requester: str, recipients: list[str]
) -> str | None:
    """The link for a mail to `recipients`: only when the requester is its one recipient, since
    the link is the key to the page and a Cc'd party must not get it."""
    wanted = requester.strip().lower()
    if [r.strip().lower() for r in recipients] != [wanted]:
        return None
    return url(settings, key, ref, requester)
