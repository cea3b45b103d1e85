"""No personal data in the logs (issue 15): a real `postdesk serve` at DEBUG, fed over SMTP with
mails full of names, birth dates and addresses — new tickets, a Cc, an attachment, a follow-up,
agents' replies with commands and text, a command error, `#original`, a forged `#original` —
delivering its mail to a relay on loopback. Its whole log (serve, worker and prepare process,
every level) is then searched for every name, date and address the test sent: none appears."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import yaml
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from storage.models import Event, InboxItem, OutboxItem
from tests.fakes.smtp import Sink
from tests.helpers import send, wait_for

ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"

# Everything personal the run sends: names (display names, in bodies, subjects, file names),
# birth dates in the ways people write them, and the addresses.
PEOPLE = ["Erika Muster", "Swetlana Kowalczyk", "Jonas Keller", "Mehmet Yılmaz",
          "Nguyễn Văn An", "Oksana Petrenko", "Gisela Pietzsch", "Uwe Zschoche",
          "Anna Schmidt", "Ben Müller"]
BIRTH_DATES = ["14.07.1991", "3. März 1978", "1985-11-23", "02.02.1962", "21.9.1970"]
ADDRESSES = ["erika.muster@example.net", "jonas.keller@example.net",
             "mehmet.yilmaz@example.com", "o.petrenko@example.com", ANNA, BEN]


def mail(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = headers.pop("to", "servicedesk@example.org")
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.net")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def answer(notification: EmailMessage, sender: str, body: str) -> EmailMessage:
    """An agent's proven reply to a notification, quoting it as Outlook does."""
    quoted = notification.get_body(("plain",)).get_content()
    return mail(sender, f"AW: {notification['Subject']}", body + "\n\n" + quoted,
                to=notification["Reply-To"].addresses[0].addr_spec,
                In_Reply_To=notification["Message-ID"], References=notification["Message-ID"])


def listening(settings: Settings) -> bool:
    try:
        with socket.create_connection((settings.smtp.host, settings.smtp.port), timeout=1):
            return True
    except OSError:
        return False


def settled(app: App) -> bool:
    with app.db.session() as session:
        inbox = set(session.scalars(select(InboxItem.state)))
        outbox = set(session.scalars(select(OutboxItem.state)))
    return bool(inbox) and inbox <= {"done"} and outbox <= {"sent"}


def notification(sink: Sink, agent: str, ref: str) -> EmailMessage | None:
    for (_, rcpts, _), parsed in zip(sink.messages, sink.parsed(), strict=True):
        if agent in rcpts and f"[{ref}]" in str(parsed["Subject"]) and parsed["Reply-To"]:
            return parsed
    return None


def owner_notification(sink: Sink, ref: str) -> tuple[str, EmailMessage]:
    def find() -> tuple[str, EmailMessage] | None:
        for agent in (ANNA, BEN):
            found = notification(sink, agent, ref)
            if found is not None:
                return agent, found
        return None
    return wait_for(find, timeout=240)  # type: ignore[no-any-return]


def test_a_whole_run_at_debug_logs_no_name_date_or_address(
    make_settings: Callable[..., Settings], sink: Sink, tmp_path: Path
) -> None:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        agents=[{"email": ANNA, "name": "Anna Schmidt", "teams": ["it"]},
                {"email": BEN, "name": "Ben Müller", "teams": ["it"]}],
        redaction={"agent_view": {"it-stoerung": "original"}},
    )
    data = settings.model_dump(mode="json")
    data["log_level"] = "DEBUG"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    app = App.build(settings, sender=RecordingSender())  # reads the database only
    app.init_database()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: listening(settings) or serve.poll() is not None, timeout=120)
        assert serve.poll() is None
        _run_the_mails(settings, app, sink)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=120)
        app.db.dispose()
    text = log_path.read_text(encoding="utf-8")
    assert code == 0 and "Traceback" not in text
    assert " DEBUG " in text and "original.disclosed" in text and "original.refused" in text

    names = [*PEOPLE, *(part for name in PEOPLE for part in name.split() if len(part) > 2)]
    found = {name for name in names if re.search(rf"\b{re.escape(name)}\b", text, re.I)}
    others = [*BIRTH_DATES, *ADDRESSES, *(a.split("@")[0] for a in ADDRESSES)]
    found |= {value for value in others if value.lower() in text.lower()}
    assert not found, f"personal data in the log: {sorted(found)}"


def _run_the_mails(settings: Settings, app: App, sink: Sink) -> None:
    # LDS-1: a request with a Cc, a name and birth date in body, subject and file name
    first = mail("Erika Muster <erika.muster@example.net>",
                 "Zugang für neue Mitarbeiterin Swetlana Kowalczyk",
                 "Guten Tag,\n\nbitte richten Sie für Frau Swetlana Kowalczyk (geb. 14.07.1991)\n"
                 "einen Zugang ein.\n\nMit freundlichen Grüßen\nErika Muster\n",
                 Cc="Jonas Keller <jonas.keller@example.net>")
    first.add_attachment(b"%PDF-1.4 Kowalczyk 14.07.1991", maintype="application",
                         subtype="pdf", filename="Ausweis Kowalczyk.pdf")
    send(settings, first)
    # LDS-2: a fault (queue it-stoerung: agents see originals) in German, a third person
    send(settings, mail("Mehmet Yılmaz <mehmet.yilmaz@example.com>", "Drucker defekt",
                        "Hallo,\nder Drucker von Herrn Nguyễn Văn An (geboren am 3. März 1978)\n"
                        "druckt nicht.\nGruß\nMehmet Yılmaz\n"))
    # LDS-3: English, a date of birth in ISO form
    send(settings, mail("Oksana Petrenko <o.petrenko@example.com>", "Account request",
                        "Hello,\nplease set up an account for Uwe Zschoche, date of birth "
                        "1985-11-23.\nBest regards\nOksana Petrenko\n"))
    agent1, note1 = owner_notification(sink, "LDS-1")
    agent2, note2 = owner_notification(sink, "LDS-2")
    # the requester writes again on LDS-1, with another person and date
    send(settings, mail("Erika Muster <erika.muster@example.net>",
                        "AW: [LDS-1] Zugang für neue Mitarbeiterin",
                        "Nachtrag: Frau Gisela Pietzsch (geb. 02.02.1962) braucht ihn auch.\n",
                        In_Reply_To=first["Message-ID"], References=first["Message-ID"]))
    # agents: #original, an answer with a status, a command error naming a person
    send(settings, answer(note1, agent1, "#original"))
    send(settings, answer(note1, agent1, "#erledigt\n\nSehr geehrte Frau Muster,\nder Zugang "
                                         "für Frau Kowalczyk (geb. 14.07.1991) ist eingerichtet."))
    send(settings, answer(note2, agent2, "#zuweisen Gisela Pietzsch\n\nErledigt."))
    send(settings, answer(note2, agent2, "#original 1\n#warten\n\nHerr Nguyễn, bitte "
                                         "melden Sie sich (21.9.1970 ist nicht Ihr Datum?)."))
    # a forged #original: the agent's From, no proof
    send(settings, mail(f"Anna Schmidt <{ANNA}>", "AW: [LDS-3] Account request",
                        "#original 1\n", Reply_To="Oksana Petrenko <o.petrenko@example.com>"))

    def done() -> bool:
        with app.db.session() as session:
            kinds = list(session.scalars(select(Event.kind)))
        return (kinds.count("original-viewed") >= 3 and "original-refused" in kinds
                and "commands-rejected" in kinds and settled(app))
    wait_for(done, timeout=300)
    # the data did flow: the agents got it unredacted (by #original, and in the notification
    # of the queue that shows originals), so a careless log line would have shown it
    said = [str(parsed.get_body(("plain",)).get_content())
            for (_, rcpts, _), parsed in zip(sink.messages, sink.parsed(), strict=True)
            if ANNA in rcpts or BEN in rcpts]
    assert any("Pietzsch (geb. 02.02.1962)" in text for text in said)  # LDS-1's #original
    assert any("Nguyễn Văn An (geboren am 3. März 1978)" in text for text in said)  # LDS-2
