"""Proof that a mail from an agent's address really answers a notification sent to that agent.

A `From:` header proves nothing, so every agent notification carries a token that only the
server can compute: an HMAC over (agent address, ticket reference) with a server key. It
travels in the notification's `Message-ID` (comes back in `In-Reply-To`/`References`, the
main path for on-premises Exchange, which has no plus-addressing) and in its `Reply-To`
plus-address. A token of agent A never verifies for agent B, and the ticket a token may act
on is the one named next to it in the carrier, so a token for LDS-1 never authorises LDS-2.
The second, optional proof is the upstream MTA's own verdict: an `Authentication-Results`
header (RFC 8601) from a trusted authserv-id showing DMARC or DKIM pass for the agent's domain.

Everything here is pure: no clock, no database, no network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

import authres
import authres.core

TOKEN_LENGTH = 20  # base32 characters: 100 bits of the HMAC
MIN_KEY_BYTES = 16
_CONTEXT = b"postdesk agent-proof v1"
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_LENGTH}}}")
_REF = re.compile(r"[A-Za-z][A-Za-z0-9]{0,9}-[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9-]{1,64}")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# The id-left of a notification Message-ID: pd.<REF>.<token>.<nonce>
_MESSAGE_ID = re.compile(
    rf"pd\.(?P<ref>{_REF.pattern})\.(?P<token>[A-Za-z2-7]{{{TOKEN_LENGTH}}})\.{_NONCE.pattern}@",
    re.IGNORECASE,
)
# The detail of a plus-address: local+<REF>.<token>@domain
_PLUS_DETAIL = re.compile(
    rf"\+(?P<ref>{_REF.pattern})\.(?P<token>[A-Za-z2-7]{{{TOKEN_LENGTH}}})@", re.IGNORECASE
)
_MSGID_IN_TEXT = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True, slots=True)
class ProofResult:
    """The verdict: `ok`, the ticket the proof covers, where it was found, and why."""

    ok: bool
    ticket_ref: str | None
    via: str | None  # "recipient", "in-reply-to" or "references"
    reason: str  # fixed phrases only: never an address or header content


@dataclass(frozen=True, slots=True)
class _Carrier:
    ref: str
    token: str
    via: str


def token(secret: bytes, agent_email: str, ticket_ref: str) -> str:
    """The proof token for one agent and one ticket: lower-case base32, safe in local parts.

    `secret` is the purpose key (e.g. `gateway.secrets.derive(secret, "agent-proof")`).
    """
    _check_key(secret)
    if not _REF.fullmatch(ticket_ref.strip()):
        raise ValueError("ticket reference must look like PREFIX-NUMBER")
    email = _canonical_email(agent_email)
    message = b"\x00".join((_CONTEXT, email.encode(), ticket_ref.strip().upper().encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:TOKEN_LENGTH]


def notification_message_id(
    secret: bytes, agent_email: str, ticket_ref: str, domain: str, nonce: str
) -> str:
    """The Message-ID of a notification to one agent: `<pd.LDS-42.<token>.<nonce>@domain>`."""
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 1-64 letters, digits or '-'")
    if not _DOMAIN.fullmatch(domain) or ".." in domain:
        raise ValueError("domain must be a plain host name")
    ref = ticket_ref.strip().upper()
    return f"<pd.{ref}.{token(secret, agent_email, ref)}.{nonce}@{domain}>"


def reply_address(service_address: str, proof_token: str, ticket_ref: str) -> str:
    """The Reply-To plus-address: `servicedesk+LDS-42.<token>@example.org`."""
    local, at, domain = service_address.strip().rpartition("@")
    if not at or not local or not domain or "+" in local:
        raise ValueError("service address must be a plain local@domain address")
    if not _TOKEN.fullmatch(proof_token):
        raise ValueError("not a proof token")
    if not _REF.fullmatch(ticket_ref.strip()):
        raise ValueError("ticket reference must look like PREFIX-NUMBER")
    return f"{local}+{ticket_ref.strip().upper()}.{proof_token}@{domain}"


def is_notification_message_id(message_id: str) -> bool:
    """True for a Message-ID made by `notification_message_id`: never send one to a requester."""
    return any(_MESSAGE_ID.match(f"{mid}@") for mid in _ids_left(message_id))


def scrub_references(message_ids: Iterable[str]) -> list[str]:
    """The ids without agent-notification Message-IDs, for mail relayed to requesters."""
    return [mid for mid in message_ids if not is_notification_message_id(mid)]


def verify(
    secret: bytes | Sequence[bytes],
    agent_email: str,
    *,
    recipients: Iterable[str],
    in_reply_to: str | None,
    references: str | Iterable[str] | None,
    ticket_ref_hint: str | None = None,
) -> ProofResult:
    """Find a valid token for THIS agent in a recipient plus-address, In-Reply-To or References.

    Carriers are tried in that order (References newest first). The ticket comes from the
    carrier itself; with `ticket_ref_hint`, only a token for that ticket counts. `secret` may
    be a list of keys (current first) so a key can be rotated without breaking open threads.
    """
    keys = [secret] if isinstance(secret, bytes) else list(secret)
    for key in keys:
        _check_key(key)
    carriers = _carriers(recipients, in_reply_to, references)
    if not carriers:
        return ProofResult(False, None, None, "no proof token")
    other_ticket = False
    for carrier in carriers:
        if not _valid_for(keys, agent_email, carrier):
            continue
        if ticket_ref_hint is not None and carrier.ref != ticket_ref_hint.strip().upper():
            other_ticket = True
            continue
        return ProofResult(True, carrier.ref, carrier.via, "valid proof token")
    if other_ticket:
        return ProofResult(False, None, None, "proof token is for another ticket")
    return ProofResult(False, None, None, "proof token not valid for this agent")


def authentication_results_verdict(
    headers: Sequence[str], trusted_authserv_id: str, agent_domain: str
) -> bool:
    """True if the topmost `Authentication-Results` from the trusted MTA shows the agent's domain
    passing DMARC (`header.from`) or DKIM (`header.d`, or `header.i` at that domain).

    `headers` are the field values, topmost first. Only the first one whose authserv-id is
    the trusted one counts: anything below it was there before our MTA saw the mail, so the
    sender could have written it. If that header cannot be parsed, the answer is False.
    """
    trusted = trusted_authserv_id.strip().lower()
    domain = _canonical_domain(agent_domain)
    if not trusted or not domain:
        return False
    for raw in headers:
        value = _unfold(raw)
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.core.AuthResError:
            if _leading_authserv_id(value) == trusted:
                return False  # the trusted MTA's header is unreadable: fail closed
            continue
        if (parsed.authserv_id or "").lower() != trusted:
            continue
        return any(_passes_for(result, domain) for result in parsed.results)
    return False


def _passes_for(result: object, domain: str) -> bool:
    method = str(getattr(result, "method", "")).lower()
    if str(getattr(result, "result", "")).lower() != "pass":
        return False
    props = {
        (str(p.type).lower(), str(p.name).lower()): str(p.value)
        for p in getattr(result, "properties", [])
    }
    if method == "dmarc":
        return _canonical_domain(props.get(("header", "from"), "")) == domain
    if method == "dkim":
        if _canonical_domain(props.get(("header", "d"), "")) == domain:
            return True
        identity = props.get(("header", "i"), "")
        return "@" in identity and _canonical_domain(identity.rpartition("@")[2]) == domain
    return False


def _valid_for(keys: list[bytes], agent_email: str, carrier: _Carrier) -> bool:
    ok = False
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        expected = token(key, agent_email, carrier.ref)
        ok |= hmac.compare_digest(expected.encode(), carrier.token.encode())
    return ok


def _carriers(
    recipients: Iterable[str],
    in_reply_to: str | None,
    references: str | Iterable[str] | None,
) -> list[_Carrier]:
    found: list[_Carrier] = []
    for _name, address in getaddresses([r for r in recipients if r]):
        match = _PLUS_DETAIL.search(f"{address}".strip())
        if match:
            found.append(_Carrier(match["ref"].upper(), match["token"].lower(), "recipient"))
    found.extend(_from_ids(_ids_left(in_reply_to or ""), "in-reply-to"))
    if isinstance(references, str):
        ids = _ids_left(references)
    else:
        ids = [mid for item in (references or []) for mid in _ids_left(item)]
    found.extend(_from_ids(list(reversed(ids)), "references"))
    return found


def _from_ids(ids: list[str], via: str) -> list[_Carrier]:
    found = []
    for mid in ids:
        match = _MESSAGE_ID.match(f"{mid}@")
        if match:
            found.append(_Carrier(match["ref"].upper(), match["token"].lower(), via))
    return found


def _ids_left(text: str) -> list[str]:
    """The id-left parts of the Message-IDs in a header value (bracketed, or one bare id)."""
    ids = _MSGID_IN_TEXT.findall(text)
    if not ids and text.strip() and " " not in text.strip():
        ids = [text.strip()]
    return [mid.partition("@")[0] for mid in ids]


def _canonical_email(address: str) -> str:
    email = address.strip().lower()
    if email.count("@") != 1 or not email.partition("@")[0] or not email.partition("@")[2]:
        raise ValueError("agent address must be local@domain")
    return email


def _canonical_domain(domain: str) -> str:
    return domain.strip().strip(".").lower()


def _check_key(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"the proof key must be at least {MIN_KEY_BYTES} bytes")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def _leading_authserv_id(value: str) -> str:
    """The authserv-id of a header authres cannot parse: the first word, comments removed."""
    text, previous = value, None
    while text != previous:  # innermost comments first, so nested ones go too
        previous, text = text, re.sub(r"\([^()]*\)", " ", text)
    return re.split(r"[\s;(]", text.strip(), maxsplit=1)[0].lower()
