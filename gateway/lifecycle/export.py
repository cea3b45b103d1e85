"""The answer to a data subject's request for access (DSGVO Art. 15): one ZIP file holding
everything stored about an e-mail address, as JSON plus the files themselves, with a README in
German and English (`postdesk requester export`).

What goes in (storage.subjects finds the tickets, by the whole address):

- tickets the person is the requester of: the ticket, every article as stored (the redacted
  text the desk works with), the attachments byte-exact (decrypted), the person's own mails
  in the original while it is still kept, the audit events and the parties;
- tickets the person was only copied in on or named in: the ticket's reference, subject and
  dates and the person's own mails in full; of everyone else's mails only that there was one
  and when (DSGVO Art. 15(4): a copy must not disclose other people's data).

On the person's own tickets, too, mails written by other people (a third party copied in who
replied) are listed without content, and addresses other than the person's and the desk's
are replaced by `[andere Person]`.

The file is written beside its destination, made readable by its owner only, and renamed
into place only after the audit events are committed; an existing file is replaced only when
asked to (`force`). The events (`requester-exported`, one per ticket, or one without a ticket
when nothing is stored) carry a keyed hash of the address and counts, never the address."""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from gateway import logs
from gateway.config import Settings
from gateway.errors import PostdeskError
from storage.blobs import BlobMissing, Blobs
from storage.models import Article, Attachment, Event
from storage.sealing import SealError
from storage.subjects import SubjectTicket, original_of, subject_tickets
from storage.tickets import TicketStore

EVENT = "requester-exported"
FORMAT = "postdesk-auskunft/1"
OTHER = "[andere Person]"
_SAFE = re.compile(r"[^\w.\- ]+")


def address_of(text: str) -> str:
    """The lower-cased address in `text` (`a@x.de` or `Name <a@x.de>`), else a one-line error
    that does not repeat it."""
    _, address = parseaddr(text.strip())
    local, at, domain = address.partition("@")
    if not (local and at and domain) or "@" in domain or any(c.isspace() for c in address):
        raise PostdeskError("EMAIL is not an e-mail address (expected name@domain)")
    return address.lower()


@dataclass(slots=True)
class ExportReport:
    """What an export holds, for the audit events and the command's one line."""

    request: str
    tickets: dict[str, str] = field(default_factory=dict)  # ref → role
    articles: int = 0
    withheld: int = 0
    attachments: int = 0
    originals: int = 0
    unreadable: int = 0  # attachment files or originals missing or not decryptable


@contextmanager
def private_output(out: Path, *, force: bool) -> Iterator[Path]:
    """A temporary file beside `out`, readable by its owner only, renamed to `out` when the
    block ends without error and removed otherwise."""
    if out.is_dir():
        raise PostdeskError("the output is a folder: give a file name (-o FILE.zip)")
    if out.exists() and not force:
        raise PostdeskError("the output file exists: give --force to replace it")
    if not out.parent.is_dir():
        raise PostdeskError("the output file's folder does not exist")
    handle, name = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=out.parent)
    os.close(handle)  # mkstemp made it 0600
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


def write_export(
    path: Path, session: Session, blobs: Blobs, email: str, *, settings: Settings,
    now: datetime,
) -> ExportReport:
    """Write the ZIP of everything stored about `email` (lower-cased) to `path`."""
    found = subject_tickets(session, email)
    report = ExportReport(request=uuid.uuid4().hex[:12])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        writer = _Writer(archive, session, blobs, email, _desk(settings, found), report)
        tickets = [writer.ticket(item) for item in found]
        data = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "address": email,
            "service": settings.service.address,
            "tickets": tickets,
        }
        archive.writestr("auskunft.json", json.dumps(data, ensure_ascii=False, indent=2))
        archive.writestr("README.txt", readme(settings, now, report))
    return report


def audit_export(
    store: TicketStore, report: ExportReport, *, actor: str, subject: str, now: datetime
) -> None:
    """One `requester-exported` event per ticket in the export (so `tickets show` lists it),
    or one without a ticket when nothing was stored about the address."""
    detail = {
        "request": report.request,
        "subject": subject,
        "tickets": len(report.tickets),
        "articles": report.articles,
        "attachments": report.attachments,
        "originals": report.originals,
    }
    if not report.tickets:
        store.add_event(None, actor=actor, kind=EVENT, now=now, role=None, **detail)
    for ref, role in report.tickets.items():
        store.add_event(store.by_ref(ref), actor=actor, kind=EVENT, now=now, role=role, **detail)
    logs.event("requester.exported", request=report.request, tickets=len(report.tickets),
               attachments=report.attachments)


def _desk(settings: Settings, found: list[SubjectTicket]) -> set[str]:
    """Addresses of the desk itself, shown as they are: the service's, the accepted ones, the
    agents' (configured now, or parties to a ticket as agents, or owners)."""
    desk = {settings.service.address.lower(), *(a.lower() for a in settings.smtp.accept)}
    desk.update(agent.email.lower() for agent in settings.agents)
    for item in found:
        desk.update(a for a, role in item.participants.items() if role == "agent")
        if item.ticket.owner:
            desk.add(item.ticket.owner.lower())
    return desk


class _Writer:
    """Writes one export's tickets into the archive and returns their JSON."""

    def __init__(self, archive: zipfile.ZipFile, session: Session, blobs: Blobs, email: str,
                 desk: set[str], report: ExportReport) -> None:
        self.archive, self.session, self.blobs = archive, session, blobs
        self.email, self.desk, self.report = email, desk, report

    def shown(self, address: str) -> str:
        """An address as the export shows it: the person's and the desk's; others hidden."""
        plain = address.lower()
        if plain == self.email or plain in self.desk or "@" not in plain:
            return address
        local, _, domain = plain.partition("@")
        if f"{local.split('+', 1)[0]}@{domain}" in self.desk:  # the desk's plus-addresses
            return address
        return OTHER

    def ticket(self, item: SubjectTicket) -> dict[str, Any]:
        ticket, own = item.ticket, item.role == "requester"
        self.report.tickets[ticket.ref] = item.role
        folder = f"tickets/{ticket.ref}"
        data: dict[str, Any] = {
            "ref": ticket.ref,
            "role": item.role,
            "subject": ticket.subject,
            "status": ticket.status,
            "created_at": ticket.created_at.isoformat(),
            "updated_at": ticket.updated_at.isoformat(),
            "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        }
        if own:
            data.update(queue=ticket.queue, priority=ticket.priority,
                        language=ticket.language, tags=list(ticket.tags or []))
            data["participants"] = [
                {"address": self.shown(address), "role": role}
                for address, role in item.participants.items()
            ]
            data["events"] = [self.event(e) for e in item.events]
        articles, number = [], 0
        for index, article in enumerate(ticket.articles, start=1):
            full = self.full(article, own)
            entry = self.article(article, index, full, folder)
            if full:
                files = []
                for attachment in article.attachments:
                    number += 1
                    files.append(self.attachment(attachment, number, folder))
                entry["attachments"] = files
            else:
                number += len(article.attachments)  # numbers stay those of `tickets show`
            articles.append(entry)
        data["articles"] = articles
        return data

    def full(self, article: Article, own: bool) -> bool:
        """Whether an article's content is the person's to see: their own mails always; on
        their own tickets also the desk's (replies, notes, status mails)."""
        author = article.from_addr.lower()
        if author == self.email:
            return True
        return own and (article.direction == "out" or self.shown(author) != OTHER)

    def article(self, article: Article, number: int, full: bool, folder: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "number": number,
            "created_at": article.created_at.isoformat(),
            "kind": article.kind,
            "direction": article.direction,
        }
        if not full:
            self.report.withheld += 1
            entry["content"] = "withheld"
            entry["attachments"] = len(article.attachments)
            return entry
        self.report.articles += 1
        entry.update(
            content="stored",
            **{"from": self.shown(article.from_addr)},
            to=[self.shown(a) for a in article.to_addrs or []],
            cc=[self.shown(a) for a in article.cc_addrs or []],
            subject=article.subject,
            body=article.body,
            original=self.original(article, number, folder),
        )
        return entry

    def original(self, article: Article, number: int, folder: str) -> str | None:
        """The person's own received mail, byte-exact, while it is kept."""
        if article.direction != "in" or article.from_addr.lower() != self.email:
            return None
        try:
            raw = original_of(self.session, article)
        except SealError:
            self.report.unreadable += 1
            return None
        if raw is None:
            return None
        name = f"{folder}/originale/artikel-{number:02d}.eml"
        self.archive.writestr(name, raw)
        self.report.originals += 1
        return name

    def attachment(self, attachment: Attachment, number: int, folder: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "number": number,
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "sha256": attachment.sha256,
            "text_state": attachment.text_state,
            "text": attachment.text,
            "file": None,
        }
        try:
            data = self.blobs.get(attachment.address)
        except (BlobMissing, SealError):
            self.report.unreadable += 1
            entry["error"] = "missing or unreadable"
            return entry
        safe = _SAFE.sub("_", attachment.filename).strip(". ") or "anhang"
        name = f"{folder}/anhaenge/{number:02d}-{safe[:120]}"
        self.archive.writestr(name, data)
        self.report.attachments += 1
        entry["file"] = name
        return entry

    def event(self, event: Event) -> dict[str, Any]:
        return {
            "created_at": event.created_at.isoformat(),
            "kind": event.kind,
            "actor": self.shown(event.actor),
            "detail": dict(event.detail or {}),
        }


def readme(settings: Settings, now: datetime, report: ExportReport) -> str:
    """The README of the ZIP: what it holds and what it leaves out, German then English."""
    return README.format(
        service=settings.service.name,
        address=settings.service.address,
        created=now.strftime("%Y-%m-%d %H:%M UTC"),
        tickets=len(report.tickets),
        days=settings.redaction.raw_retention_days,
        other=OTHER,
    )


README = """\
Auskunft nach Art. 15 DSGVO — {service} <{address}>
Erstellt: {created}    Tickets: {tickets}

Diese Datei enthält alles, was der Servicedesk zu Ihrer E-Mail-Adresse gespeichert hat.

Inhalt
- auskunft.json: alle Angaben in maschinenlesbarer Form (JSON, UTF-8). Zeitangaben in UTC
  (ISO 8601).
- tickets/<Nummer>/anhaenge/: die Dateianhänge, Byte für Byte so, wie sie eingegangen sind.
- tickets/<Nummer>/originale/: Ihre eigenen E-Mails im Original (.eml), soweit sie noch
  aufbewahrt werden (Originale werden nach {days} Tagen gelöscht).

Texte sind geschwärzt gespeichert
Der Servicedesk speichert den Text jeder E-Mail nur geschwärzt: Namen, Geburtsdaten,
Telefonnummern, Adressen Dritter, Bankverbindungen und ähnliche Angaben sind schon beim
Eingang durch Platzhalter wie [NAME-1] ersetzt. In auskunft.json steht der Text so, wie er
gespeichert ist. Welche Angabe hinter einem Platzhalter stand, wird nicht gespeichert; sie
steht nur in den Originalen, solange diese aufbewahrt werden.

Was enthalten ist
- Tickets, die Sie gestellt haben ("role": "requester"): Betreff, Status, Daten, jede
  Nachricht (Ihre E-Mails, Antworten und Notizen des Servicedesks, Statusmitteilungen), die
  Anhänge, Ihre Originale, die Beteiligten und das Protokoll der Bearbeitung ("events": wer
  wann was geändert oder eingesehen hat).
- Tickets, in denen Sie nur in Kopie ("cc") oder als Empfänger genannt ("mentioned") sind:
  Nummer, Betreff, Status, Daten und Ihre eigenen Nachrichten vollständig.

Was zum Schutz anderer Personen nicht enthalten ist (Art. 15 Abs. 4 DSGVO)
- Nachrichten anderer Personen (z. B. der Antragstellerin eines Tickets, in dem Sie in Kopie
  sind): nur Zeitpunkt und Art ("content": "withheld"), ohne Inhalt und Anhänge.
- E-Mail-Adressen anderer Personen: ersetzt durch "{other}".
- Auf Tickets, in denen Sie nur in Kopie sind: die Beteiligten und das Protokoll.

English summary
This archive holds everything the service desk stores about your e-mail address (GDPR
Art. 15). auskunft.json has the tickets, their messages and the processing log (times in UTC);
tickets/<ref>/anhaenge/ holds the attachments byte-exact, tickets/<ref>/originale/ your own
mails as received while they are kept ({days} days). Message texts are stored redacted:
names, dates of birth, phone numbers and similar data were replaced by placeholders such as
[NAME-1] on arrival, and what a placeholder stood for is not stored. To protect other people,
messages written by others appear without content ("withheld"), other people's addresses as
"{other}", and on tickets where you were only copied in ("cc") or named ("mentioned") only
the ticket's reference, subject, dates and your own messages are included.
"""
