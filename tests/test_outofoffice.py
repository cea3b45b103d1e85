"""The out-of-office word list (gateway.mail.outofoffice): German and English vacation replies are
recognised by subject or opening words; an agent's real answer — which may quote a ticket about
out-of-office settings — is not."""

from __future__ import annotations

import pytest

from gateway.mail.outofoffice import BODY_CHARS, verdict

NOTIFICATION_SUBJECT = "[LDS-7] Neues Ticket: VPN Störung seit heute"


@pytest.mark.parametrize(
    "subject",
    [
        f"Abwesenheitsnotiz: {NOTIFICATION_SUBJECT}",  # Outlook/Exchange, German
        f"Automatische Antwort: {NOTIFICATION_SUBJECT}",
        f"Automatic reply: {NOTIFICATION_SUBJECT}",  # Outlook, English
        f"Out of Office: {NOTIFICATION_SUBJECT}",
        "Out of the office",
        "Autoreply: Re: [LDS-7]",
        "Auto-Reply",
        f"Auto: {NOTIFICATION_SUBJECT}",  # Sieve vacation
        "Abwesend bis 14.12.",
        "  abwesenheitsnachricht",
        "AUTOMATISCHE ANTWORT: AW: [LDS-7]",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert verdict(subject, "") == "out-of-office subject"


@pytest.mark.parametrize(
    "body",
    [
        "Vielen Dank für Ihre Nachricht.\nIch bin bis einschließlich 14.12.2026 nicht im Büro.",
        "Guten Tag,\n\nich bin vom 1.12. bis zum 14.12. nicht im Büro und habe keinen Zugriff.",
        "Bis zum 3. Januar bin ich leider nicht erreichbar. In dringenden Fällen …",
        "Dies ist eine automatische Antwort. Ihre Nachricht wird nicht weitergeleitet.",
        "Abwesenheitsnotiz\n\nIch bin im Urlaub.",
        "Thank you for your message. I am currently out of the office until Monday.",
        "I'm away until 4 January with limited access to e-mail.",
        "I will be on vacation until 2 January.",
        "This is an automatic reply to your message.",
    ],
)
def test_out_of_office_bodies(body: str) -> None:
    assert verdict("AW: " + NOTIFICATION_SUBJECT, body) == "out-of-office text"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("AW: " + NOTIFICATION_SUBJECT, "Das VPN-Profil wurde neu verteilt. Bitte neu starten."),
        ("Re: [LDS-7] Neues Ticket: Out of Office lässt sich nicht einschalten",
         "Ich habe die Abwesenheit in Ihrem Postfach eingerichtet."),
        ("AW: [LDS-7] Neues Ticket: Abwesenheitsnotiz funktioniert nicht",
         "#erledigt\n\nDie Regel ist wieder aktiv."),
        ("AW: [LDS-7] Automatische Antworten", "Auto-Antworten sind jetzt erlaubt."),
        ("Autohaus Müller: Rechnung", "Bitte prüfen."),
        ("Re: [LDS-7]", "Wir sind nicht im Büro gewesen, als der Fehler auftrat."),
    ],
)
def test_real_answers_are_not_out_of_office(subject: str, body: str) -> None:
    assert verdict(subject, body) is None


def test_only_the_opening_words_count() -> None:
    late = "Die Lösung steht unten.\n" + "x " * BODY_CHARS + "\nIch bin bis Montag nicht im Büro."
    assert verdict("AW: [LDS-7]", late) is None
