"""The one server secret and the keys derived from it, so operators manage a single value:
placeholder pseudonyms, agent proof tokens, the encryption of stored originals and attachments
and the attachments' file names each get their own key (HMAC-SHA256 of the secret and a
purpose).

Rotation: the secrets in force before (`secrets.previous_key_files`, `previous_keys_env`) open
what they sealed, look up placeholder numbers and verify proof tokens made with them, and let
the database's fingerprint of one of them be replaced by the new secret's; `postdesk secrets
reseal` (storage.rekey) re-encrypts everything under the new one, after which they can be
dropped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from gateway.config import Settings
from gateway.errors import ConfigError, SecretMismatch
from storage import facts, private
from storage.engine import Database
from storage.sealing import Sealer

MIN_LENGTH = 32


def load_secret(settings: Settings, *, create: bool = False) -> bytes:
    """The secret from the environment variable, else from the key file (created if asked)."""
    value = os.environ.get(settings.secrets.key_env)
    if value:
        if len(value) < MIN_LENGTH:
            raise ConfigError(
                f"secrets.key_env: {settings.secrets.key_env} must hold at least "
                f"{MIN_LENGTH} characters"
            )
        return value.encode()
    path = settings.secrets.key_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no server secret: set {settings.secrets.key_env} or run `postdesk init` to "
                f"create {path}"
            )
        private.make_dirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip().encode()


def load_previous(settings: Settings) -> tuple[bytes, ...]:
    """The former secrets named in the config (files, then the variable), for opening only."""
    found: list[bytes] = []
    for path in settings.secrets.previous_key_files:
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"secrets.previous_key_files: cannot read {path} "
                              f"({type(exc).__name__})") from None
        if len(value) < MIN_LENGTH:
            raise ConfigError(f"secrets.previous_key_files: {path} must hold at least "
                              f"{MIN_LENGTH} characters")
        found.append(value.encode())
    listed = os.environ.get(settings.secrets.previous_keys_env, "")
    for value in (part.strip() for part in listed.split(",")):
        if not value:
            continue
        if len(value) < MIN_LENGTH:
            raise ConfigError(f"secrets.previous_keys_env: each secret in "
                              f"{settings.secrets.previous_keys_env} must hold at least "
                              f"{MIN_LENGTH} characters")
        found.append(value.encode())
    return tuple(dict.fromkeys(found))


def derive(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose ("pseudonyms", "agent-proof", "originals",
    "blob-address")."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def fernet_key(secret: bytes) -> bytes:
    """The key (Fernet format) that encrypts stored original mails and attachments."""
    return base64.urlsafe_b64encode(derive(secret, "originals"))


def sealer(secret: bytes, previous: tuple[bytes, ...] = ()) -> Sealer:
    """Seals with `secret`'s key, opens with it and the `previous` secrets' keys."""
    return Sealer(fernet_key(secret), tuple(fernet_key(old) for old in previous))


@dataclass(frozen=True)
class Keys:
    """The keys derived from the secret, built once by the app and passed to what needs them."""

    pseudonym: bytes  # placeholder pseudonyms in redacted text
    proof: bytes  # agent proof tokens
    sealer: Sealer  # stored originals and attachments, encrypted at rest
    fingerprint: str = ""  # identifies the secret without revealing it (see check_secret)
    blob_address: bytes = b""  # names attachment files: HMAC of their content
    # Of the former secrets (a rotation): fingerprints the database may still hold, and keys
    # that only look up (pseudonym numbers of older mails, proof tokens of older notifications)
    previous_fingerprints: tuple[str, ...] = ()
    previous_pseudonym: tuple[bytes, ...] = ()
    previous_proof: tuple[bytes, ...] = ()
    # requesters' status-page links (gateway.outgoing.statuslink); no previous ones on purpose:
    # rotating the secret revokes every link
    status_link: bytes = b""
    # names a data subject in audit events and erasure requests (subject_hash)
    data_subject: bytes = b""

    @classmethod
    def load(cls, settings: Settings, *, create: bool = False) -> Keys:
        secret = load_secret(settings, create=create)
        previous = tuple(old for old in load_previous(settings) if old != secret)
        return cls.of(secret, previous)

    @classmethod
    def of(cls, secret: bytes, previous: tuple[bytes, ...] = ()) -> Keys:
        return cls(derive(secret, "pseudonyms"), derive(secret, "agent-proof"),
                   sealer(secret, previous), derive(secret, FINGERPRINT).hex(),
                   derive(secret, "blob-address"),
                   tuple(derive(old, FINGERPRINT).hex() for old in previous),
                   tuple(derive(old, "pseudonyms") for old in previous),
                   tuple(derive(old, "agent-proof") for old in previous),
                   derive(secret, "status-link"), derive(secret, "data-subject"))


def subject_hash(key: bytes, email: str) -> str:
    """Names a person in audit events and erasure requests without naming them: an HMAC of the
    lower-cased address under `Keys.data_subject`, so an export and an erasure of one address
    show as the same person to whoever holds the secret, and to nobody else."""
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()[:24]


FINGERPRINT = "fingerprint"
"""The purpose whose key is stored in the database as the secret's fingerprint: an HMAC of a
fixed label, so it tells two secrets apart and gives nothing of either away."""


def check_secret(db: Database, settings: Settings, keys: Keys, *, replace: bool = False) -> None:
    """Store the secret's fingerprint on first start; after that, refuse to run with another
    secret (SecretMismatch, one line naming where the secret came from). Instances with
    different secrets would otherwise take mail they cannot decrypt, and the pseudonyms and
    agents' tokens of one would mean nothing to the other. `replace` stores the new one (a
    deliberate change: `postdesk init --new-secret`); so does a rotation, where the stored
    fingerprint is that of a secret listed as previous (the old one can still open)."""
    with db.session() as session:
        if replace:
            facts.replace(session, FINGERPRINT, keys.fingerprint)
            return
        stored = facts.agree(session, FINGERPRINT, keys.fingerprint)
        if stored != keys.fingerprint and stored in keys.previous_fingerprints:
            facts.replace(session, FINGERPRINT, keys.fingerprint)  # a rotation: see reseal
            return
    if stored != keys.fingerprint:
        source = (settings.secrets.key_env if os.environ.get(settings.secrets.key_env)
                  else f"the key file {settings.secrets.key_file} ({settings.secrets.key_env} "
                  "is not set)")
        raise SecretMismatch(
            f"the server secret from {source} is not the one this database was set up with: "
            f"give every instance the same {settings.secrets.key_env}"
        )
