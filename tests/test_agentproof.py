"""Agent proof: HMAC tokens in Message-ID / plus-address, and the trusted-MTA verdict."""

from __future__ import annotations

import re

import pytest

from gateway.agents import proof as agentproof
from gateway.agents.proof import (
    authentication_results_verdict,
    is_notification_message_id,
    notification_message_id,
    reply_address,
    scrub_references,
    token,
    verify,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"


def _verify(agent: str = ANNA, **carriers: object) -> agentproof.ProofResult:
    args: dict[str, object] = {"recipients": [], "in_reply_to": None, "references": None}
    args.update(carriers)
    return verify(KEY, agent, **args)  # type: ignore[arg-type]


# --- tokens -------------------------------------------------------------------------------


def test_token_is_short_lower_base32_and_stable() -> None:
    value = token(KEY, ANNA, "LDS-42")
    assert re.fullmatch(r"[a-z2-7]{20}", value)
    assert value == token(KEY, " Anna.Schmidt@EXAMPLE.org ", "lds-42")


def test_token_differs_per_agent_ticket_and_key() -> None:
    values = {
        token(KEY, ANNA, "LDS-42"),
        token(KEY, BEN, "LDS-42"),
        token(KEY, ANNA, "LDS-43"),
        token(OTHER_KEY, ANNA, "LDS-42"),
    }
    assert len(values) == 4
    assert len({token(KEY, ANNA, f"LDS-{n}") for n in range(2000)}) == 2000


@pytest.mark.parametrize("key", [b"", b"short", "a string key of enough length"])
def test_weak_or_wrong_key_is_refused(key: object) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        token(key, ANNA, "LDS-1")  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", ["", "42", "LDS 42", "LDS-42\r\nBcc: x", "LDS-4x"])
def test_bad_ticket_reference_is_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="PREFIX-NUMBER"):
        token(KEY, ANNA, ref)


def test_notification_message_id_embeds_ref_and_token() -> None:
    mid = notification_message_id(KEY, ANNA, "LDS-42", "example.org", "a1b2")
    assert mid == f"<pd.LDS-42.{token(KEY, ANNA, 'LDS-42')}.a1b2@example.org>"
    assert is_notification_message_id(mid)
    assert not is_notification_message_id("<CAFx=abc@mail.gmail.com>")
    assert not is_notification_message_id("<pd.LDS-42.short.a1b2@example.org>")


@pytest.mark.parametrize(
    ("domain", "nonce"), [("example.org>", "n1"), ("exa mple.org", "n1"), ("example.org", "a.b")]
)
def test_notification_message_id_rejects_unsafe_parts(domain: str, nonce: str) -> None:
    with pytest.raises(ValueError):
        notification_message_id(KEY, ANNA, "LDS-42", domain, nonce)


def test_reply_address_is_a_plus_address_of_the_service() -> None:
    proof = token(KEY, ANNA, "LDS-42")
    address = reply_address("servicedesk@example.org", proof, "LDS-42")
    assert address == f"servicedesk+LDS-42.{proof}@example.org"
    with pytest.raises(ValueError):
        reply_address("servicedesk@example.org", proof[:-1], "LDS-42")
    with pytest.raises(ValueError):
        reply_address("no-at-sign", proof, "LDS-42")


def test_scrub_references_removes_only_notification_ids() -> None:
    ours = notification_message_id(KEY, ANNA, "LDS-42", "example.org", "n1")
    kept = ["<ack.LDS-42.x1@example.org>", "<CAFx=abc@mail.gmail.com>"]
    assert scrub_references([kept[0], ours, kept[1]]) == kept


# --- verify: the good paths ---------------------------------------------------------------


def test_verify_via_in_reply_to() -> None:
    mid = notification_message_id(KEY, ANNA, "LDS-42", "example.org", "n1")
    result = _verify(in_reply_to=mid)
    assert result == agentproof.ProofResult(True, "LDS-42", "in-reply-to", "valid proof token")


def test_verify_via_references_string_and_list() -> None:
    mid = notification_message_id(KEY, ANNA, "LDS-7", "example.org", "n1")
    header = f"<CAFx=abc@mail.gmail.com>\r\n <{mid[1:-1]}> <other@example.net>"
    assert _verify(references=header).via == "references"
    assert _verify(references=["<a@b>", mid]).ticket_ref == "LDS-7"


def test_verify_via_recipient_plus_address_even_if_mta_changed_case() -> None:
    address = reply_address("servicedesk@example.org", token(KEY, ANNA, "LDS-42"), "LDS-42")
    result = _verify(recipients=[f'"IT-Servicedesk" <{address.upper()}>', "x@example.org"])
    assert (result.ok, result.ticket_ref, result.via) == (True, "LDS-42", "recipient")


def test_verify_prefers_recipient_and_honours_the_ticket_hint() -> None:
    to_42 = reply_address("servicedesk@example.org", token(KEY, ANNA, "LDS-42"), "LDS-42")
    mid_7 = notification_message_id(KEY, ANNA, "LDS-7", "example.org", "n1")
    assert _verify(recipients=[to_42], in_reply_to=mid_7).ticket_ref == "LDS-42"
    hinted = _verify(recipients=[to_42], in_reply_to=mid_7, ticket_ref_hint="lds-7")
    assert hinted.ticket_ref == "LDS-7"


def test_verify_accepts_a_rotated_key() -> None:
    mid = notification_message_id(OTHER_KEY, ANNA, "LDS-42", "example.org", "n1")
    assert not _verify(in_reply_to=mid).ok
    result = verify([KEY, OTHER_KEY], ANNA, recipients=[], in_reply_to=mid, references=None)
    assert result.ok


# --- verify: forgeries --------------------------------------------------------------------


def test_no_token_at_all() -> None:
    result = _verify(recipients=["servicedesk@example.org"], in_reply_to="<x@example.net>")
    assert result == agentproof.ProofResult(False, None, None, "no proof token")


def test_token_of_agent_a_never_verifies_for_agent_b() -> None:
    mid = notification_message_id(KEY, ANNA, "LDS-42", "example.org", "n1")
    address = reply_address("servicedesk@example.org", token(KEY, ANNA, "LDS-42"), "LDS-42")
    result = _verify(BEN, recipients=[address], in_reply_to=mid, references=[mid])
    assert not result.ok
    assert result.reason == "proof token not valid for this agent"


def test_token_for_one_ticket_never_authorises_another() -> None:
    proof_1 = token(KEY, ANNA, "LDS-1")
    # the token of LDS-1 moved next to another ticket reference
    assert not _verify(in_reply_to=f"<pd.LDS-2.{proof_1}.n1@example.org>").ok
    assert not _verify(recipients=[f"servicedesk+LDS-2.{proof_1}@example.org"]).ok
    # a genuine LDS-1 token while the mail is about LDS-2
    genuine = notification_message_id(KEY, ANNA, "LDS-1", "example.org", "n1")
    result = _verify(in_reply_to=genuine, ticket_ref_hint="LDS-2")
    assert (result.ok, result.reason) == (False, "proof token is for another ticket")


@pytest.mark.parametrize("position", [0, 7, 19])
def test_altered_token_fails(position: int) -> None:
    proof = token(KEY, ANNA, "LDS-42")
    flipped = "a" if proof[position] != "a" else "b"
    altered = proof[:position] + flipped + proof[position + 1 :]
    assert not _verify(in_reply_to=f"<pd.LDS-42.{altered}.n1@example.org>").ok


def test_truncated_or_extended_token_is_not_a_token() -> None:
    proof = token(KEY, ANNA, "LDS-42")
    for bad in (proof[:-1], proof[:10], proof + "a"):
        result = _verify(
            in_reply_to=f"<pd.LDS-42.{bad}.n1@example.org>",
            recipients=[f"servicedesk+LDS-42.{bad}@example.org"],
        )
        assert not result.ok


def test_token_made_with_another_key_fails() -> None:
    forged = notification_message_id(OTHER_KEY, ANNA, "LDS-42", "example.org", "n1")
    assert not _verify(in_reply_to=forged).ok


def test_reason_never_carries_header_content() -> None:
    result = _verify(in_reply_to=f"<pd.LDS-42.{'a' * 20}.n1@example.org>")
    assert ANNA not in result.reason and "LDS-42" not in result.reason


# --- Authentication-Results -----------------------------------------------------------------

GMAIL = (
    "mx.google.com;\r\n       dkim=pass header.i=@example.org header.s=20230601 "
    "header.b=Ab+/1=;\r\n       arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass "
    "dkdomain=example.org dmarc=pass fromdomain=example.org);\r\n       spf=pass "
    "(google.com: domain of anna.schmidt@example.org designates 2a00:1450::1 as permitted "
    "sender) smtp.mailfrom=anna.schmidt@example.org;\r\n       dmarc=pass (p=QUARANTINE "
    "sp=QUARANTINE dis=NONE) header.from=example.org"
)
# Exchange Online writes no authserv-id at all (RFC 8601 requires one): never trusted.
MICROSOFT_365 = (
    "spf=pass (sender IP is 40.107.22.1) smtp.mailfrom=example.org; dkim=pass (signature "
    "was verified) header.d=example.org;dmarc=pass action=none header.from=example.org;"
    "compauth=pass reason=100"
)
# Exchange/EOP as relayed by an on-premises gateway that names itself
EXCHANGE_GATEWAY = (
    "mx.behoerde.example 1; spf=pass smtp.mailfrom=example.org; dkim=pass (signature was "
    "verified) header.d=example.org; dmarc=pass action=none header.from=example.org"
)
OPENDKIM = (
    "mx.behoerde.example; dkim=pass (2048-bit key; unprotected) header.d=example.org "
    "header.i=@example.org header.a=rsa-sha256 header.s=mail header.b=AbCd1234"
)
RSPAMD_FAIL = (
    "mx.behoerde.example; dkim=fail (\"headers rsa verify failed\") header.d=example.org "
    "header.s=dkim header.b=abc; dmarc=fail reason=\"No valid SPF, No valid DKIM\" "
    "header.from=example.org (policy=reject); spf=softfail smtp.mailfrom=x@example.org"
)


def _verdict(*headers: str, trusted: str = "mx.behoerde.example") -> bool:
    return authentication_results_verdict(list(headers), trusted, "example.org")


def test_gmail_sample_passes_when_gmail_is_the_trusted_mta() -> None:
    assert _verdict(GMAIL, trusted="mx.google.com")
    assert not _verdict(GMAIL, trusted="mx.behoerde.example")


def test_microsoft_365_header_without_authserv_id_is_never_trusted() -> None:
    assert not _verdict(MICROSOFT_365, trusted="spf=pass")
    assert not _verdict(MICROSOFT_365)


def test_gateway_sample_with_version_and_comments_passes() -> None:
    assert _verdict(EXCHANGE_GATEWAY)
    assert _verdict(OPENDKIM)


def test_trusted_id_is_case_insensitive_and_domain_too() -> None:
    header = "MX.Behoerde.Example; dmarc=pass header.from=EXAMPLE.org."
    assert _verdict(header, trusted="mx.behoerde.EXAMPLE")


def test_dkim_header_i_at_the_domain_counts_but_not_a_subdomain() -> None:
    assert _verdict("mx.behoerde.example; dkim=pass header.i=anna.schmidt@example.org")
    assert not _verdict("mx.behoerde.example; dkim=pass header.i=@mail.example.org")


def test_failures_and_none_do_not_pass() -> None:
    assert not _verdict(RSPAMD_FAIL)
    assert not _verdict("mx.behoerde.example; none")
    assert not _verdict("mx.behoerde.example; spf=pass smtp.mailfrom=example.org")
    assert not _verdict("mx.behoerde.example; dkim=neutral header.d=example.org")


def test_pass_for_another_domain_does_not_count() -> None:
    assert not _verdict("mx.behoerde.example; dkim=pass header.d=evil.example")
    assert not _verdict("mx.behoerde.example; dkim=pass header.d=example.org.evil.example")
    assert not _verdict("mx.behoerde.example; dmarc=pass header.from=evil.example")
    assert not _verdict("mx.behoerde.example; dkim=pass header.i=@evil.example")


def test_only_the_topmost_trusted_header_counts() -> None:
    forged_below = "mx.behoerde.example; dmarc=pass header.from=example.org"
    assert not _verdict(RSPAMD_FAIL, forged_below)
    # headers of other hosts above ours are skipped, ours decides
    assert _verdict("relay.example.net; dmarc=fail header.from=example.org", EXCHANGE_GATEWAY)
    assert not _verdict("relay.example.net; dmarc=pass header.from=example.org", RSPAMD_FAIL)


def test_an_unreadable_trusted_header_fails_closed() -> None:
    broken = "(our MTA) mx.behoerde.example; dkim=pass header.d=example.org; =;="
    assert not _verdict(broken, EXCHANGE_GATEWAY)
    # an unreadable header from someone else is just skipped
    assert _verdict("relay.example.net; dkim=pass ((", EXCHANGE_GATEWAY)


def test_empty_configuration_never_passes() -> None:
    assert not authentication_results_verdict([EXCHANGE_GATEWAY], "", "example.org")
    assert not authentication_results_verdict([EXCHANGE_GATEWAY], "mx.behoerde.example", "")
    assert not _verdict()
