"""gateway.outgoing.letters: every letter is counted against its cap, rendered, composed from the
letterhead and queued in one place — so a caller cannot skip the caps, and an address no mail
can go to costs neither a cap nor the mail that caused it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.config import Settings
from gateway.mail import threadindex
from gateway.mail.model import Address, ParsedMail
from gateway.outgoing.letters import Letters, letterhead
from gateway.outgoing.render import RenderedMail, Renderer
from gateway.pipeline import notify
from gateway.pipeline.context import Context, PreparedMail, SenderRole, Services
from storage.blobs import BlobStore
from storage.engine import Database
from storage.models import Article, AutoReplyLog, InboxItem, MessageRef, OutboxItem, utcnow
from storage.tickets import TicketStore

ANNA = "anna.schmidt@example.org"
UMLAUT_REQUESTER = "jürgen@example.net"  # a local part no relay takes without SMTPUTF8


@contextmanager
def letters_for(db: Database, settings: Settings, requester: str = "erika@example.net"
                ) -> Iterator[tuple[Letters, TicketStore]]:
    with db.session() as session:
        store = TicketStore(session)
        key = threadindex.conversation_key(threadindex.new_index(utcnow(), uuid.uuid4()))
        store.create_ticket(prefix="LDS", subject="Drucker", requester=requester, language="de",
                            conversation=key, now=utcnow())
        yield Letters(settings, Renderer(settings.templates_dir, "de"), store,
                      proof_key=b"k" * 32), store


def count(db: Database, model: type) -> int:
    with db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_letterhead_comes_from_the_service_settings(settings: Settings) -> None:
    head = letterhead(settings)
    assert (head.address, head.name, head.domain, head.language) == (
        "servicedesk@example.org", "IT-Servicedesk", settings.service.domain, "de")
    assert head.sender_name("Anna Schmidt") == "Anna Schmidt (IT-Servicedesk)"


def test_every_letter_is_capped_inside_letters(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(limits={"notification": {"per_ticket": 2, "per_recipient": 10}})
    with letters_for(db, settings) as (letters, store):
        ticket = store.by_ref("LDS-1")
        assert ticket is not None
        outcomes = [letters.agent_notification(ticket, ANNA, reason="new", text="x",
                                               now=utcnow()).outcome for _ in range(3)]
    assert outcomes == ["queued", "queued", "rate-limited"]
    assert count(db, OutboxItem) == 2 and count(db, MessageRef) == 2


class CountingRenderer(Renderer):
    """Counts the letters rendered."""

    rendered = 0

    def render(self, *args: Any, **kwargs: Any) -> RenderedMail:
        self.rendered += 1
        return super().render(*args, **kwargs)


def test_a_letter_over_its_cap_is_not_rendered(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    """A dispatcher's notifications in a burst of new tickets: those over the cap cost no
    rendering (counted first, rendered after)."""
    settings = make_settings(limits={"notification": {"per_ticket": 20, "per_recipient": 1}})
    with letters_for(db, settings) as (letters, store):
        ticket = store.by_ref("LDS-1")
        assert ticket is not None
        renderer = CountingRenderer(settings.templates_dir, "de")
        letters.templates = renderer
        outcomes = [letters.agent_notification(ticket, ANNA, reason="new", text="x",
                                               now=utcnow()).outcome for _ in range(3)]
    assert outcomes == ["queued", "rate-limited", "rate-limited"]
    assert renderer.rendered == 1


def test_a_letter_no_relay_can_take_is_not_queued_and_not_counted(
    db: Database, settings: Settings
) -> None:
    with letters_for(db, settings, requester=UMLAUT_REQUESTER) as (letters, store):
        ticket = store.by_ref("LDS-1")
        assert ticket is not None
        posted = letters.requester_mail(ticket, template="requester-agent-reply", now=utcnow(),
                                        automatic=False, agent_name="Anna Schmidt", text="Hallo")
    assert posted.outcome == "cannot-compose" and not posted.made
    assert posted.error == "PermanentDeliveryError" and "jürgen" not in (posted.detail or "")
    assert count(db, OutboxItem) == 0 and count(db, AutoReplyLog) == 0


def test_relayed_mail_goes_from_the_letterhead_on_the_agents_behalf(
    db: Database, settings: Settings
) -> None:
    with letters_for(db, settings) as (letters, store):
        ticket = store.by_ref("LDS-1")
        assert ticket is not None
        with letters.batch():
            posted = letters.requester_mail(ticket, template="requester-agent-reply",
                                            now=utcnow(), automatic=False,
                                            agent_name="Anna Schmidt", text="Bitte neu starten.")
    with db.reading() as session:
        item = session.scalars(select(OutboxItem)).one()
        assert item.message_id == posted.message_id and item.envelope_to == ["erika@example.net"]
        msg = message_from_bytes(item.raw, policy=policy.default)
        [sender] = msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (
            "Anna Schmidt (IT-Servicedesk)", "servicedesk@example.org")


def test_an_agent_reply_to_a_requester_no_mail_can_reach_is_kept_as_a_note(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Before letters, the relay's compose error failed the agent's whole mail (quarantined at
    stage notify, the agent's words not on the ticket)."""
    now = utcnow()
    with letters_for(db, settings, requester=UMLAUT_REQUESTER) as (letters, store):
        ticket = store.by_ref("LDS-1")
        assert ticket is not None
        inbox = InboxItem(source="smtp", source_key="k1", raw=b"x", received_at=now)
        store.session.add(inbox)
        store.session.flush()
        article = store.add_article(ticket, kind="reply", direction="in", from_addr=ANNA,
                                    to_addrs=[], cc_addrs=[], subject="Re: Drucker",
                                    body="Bitte neu starten.", message_id="<r@x>",
                                    created_at=now)
        mail = ParsedMail(message_id="<r@x>", message_id_generated=False,
                          from_=Address("Anna Schmidt", ANNA), to=[], cc=[], reply_to=[],
                          subject="Re: [LDS-1] Drucker", date=None, in_reply_to=[],
                          references=[], thread_index=None, thread_topic=None, headers={},
                          text="Bitte neu starten.", html=None, attachments=[])
        services = Services(settings=settings, store=store, blobs=BlobStore(tmp_path / "blobs"),
                            letters=letters)
        prepared = PreparedMail(inbox_id=inbox.id, mail=mail,
                                texts={"relay": "Bitte neu starten."})
        ctx = Context(services=services, inbox=inbox, prepared=prepared, now=now, ticket=ticket,
                      sender_role=SenderRole.AGENT, article=article)
        notify.run(ctx)
    assert [(d.what, d.detail) for d in ctx.decisions] == [
        ("relay-held", {"reason": "cannot-compose"})]
    with db.reading() as session:
        assert session.scalars(select(Article.kind)).one() == "note"
    assert count(db, OutboxItem) == 0
