"""What the status page says, in German and English: the status in plain words, a due moment in
business terms ("bis Donnerstag, 19.11., 11:00 Uhr") and the page's fixed texts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

STATUS = {
    "de": {"new": "Eingegangen – noch nicht in Bearbeitung", "open": "In Bearbeitung",
           "pending": "Wir warten auf Ihre Antwort", "resolved": "Erledigt",
           "closed": "Abgeschlossen"},
    "en": {"new": "Received – not yet being handled", "open": "Being handled",
           "pending": "Waiting for your reply", "resolved": "Resolved", "closed": "Closed"},
}  # fmt: skip

_WEEKDAYS = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "title": "Stand Ihres Anliegens",
        "skip": "Zum Inhalt springen",
        "ref": "Vorgangsnummer",
        "subject": "Betreff",
        "no_subject": "(ohne Betreff)",
        "status": "Stand",
        "received": "Eingegangen am",
        "expected": "Antwort voraussichtlich",
        "expected_solution": "Erledigung voraussichtlich",
        "expected_none": "Ein Termin steht noch nicht fest.",
        "conversation": "Verlauf",
        "conversation_empty": "Noch keine Nachrichten.",
        "you": "Sie",
        "resolved_title": "Mein Anliegen hat sich erledigt",
        "resolved_help": "Ist Ihr Anliegen erledigt, können Sie den Vorgang hier abschließen. "
                         "Sie erhalten eine Bestätigung per E-Mail.",
        "resolved_button": "Mein Anliegen hat sich erledigt",
        "message_title": "Nachricht ergänzen",
        "message_label": "Ihre Nachricht",
        "message_help": "Ihre Nachricht wird dem Vorgang hinzugefügt, als hätten Sie uns "
                        "eine E-Mail geschrieben. Anhänge senden Sie bitte per E-Mail.",
        "message_button": "Nachricht senden",
        "done_resolved": "Vielen Dank. Der Vorgang ist als erledigt markiert; eine "
                         "Bestätigung ist per E-Mail unterwegs.",
        "done_message": "Vielen Dank. Ihre Nachricht ist eingegangen und erscheint hier, "
                        "sobald sie erfasst ist.",
        "closed_note": "Dieser Vorgang ist abgeschlossen. Für ein neues Anliegen schreiben "
                       "Sie uns bitte eine E-Mail.",
        "privacy": "Dieser Link ist Ihr persönlicher Zugang zu diesem Vorgang. Bitte geben "
                   "Sie ihn nicht weiter. Personenbezogene Angaben sind in der Anzeige "
                   "durch Platzhalter ersetzt.",
        "status_heading": "Überblick",
        "error_empty": "Bitte geben Sie eine Nachricht ein.",
        "error_prefix": "Fehler:",
        "contact": "Kontakt",
        "actions": "Was Sie tun können",
    },
    "en": {
        "title": "Status of your request",
        "skip": "Skip to content",
        "ref": "Reference",
        "subject": "Subject",
        "no_subject": "(no subject)",
        "status": "Status",
        "received": "Received on",
        "expected": "Answer expected",
        "expected_solution": "Resolution expected",
        "expected_none": "No date has been set yet.",
        "conversation": "Conversation",
        "conversation_empty": "No messages yet.",
        "you": "You",
        "resolved_title": "My request has been settled",
        "resolved_help": "If your request is settled, you can close it here. You will get "
                         "a confirmation by email.",
        "resolved_button": "My request has been settled",
        "message_title": "Add a message",
        "message_label": "Your message",
        "message_help": "Your message is added to the request as if you had sent us an "
                        "email. Please send attachments by email.",
        "message_button": "Send message",
        "done_resolved": "Thank you. The request is marked as resolved; a confirmation is "
                         "on its way by email.",
        "done_message": "Thank you. Your message has arrived and will appear here once it "
                        "has been recorded.",
        "closed_note": "This request is closed. For a new request, please send us an email.",
        "privacy": "This link is your personal key to this request. Please do not pass it "
                   "on. Personal data is shown replaced by placeholders.",
        "status_heading": "Overview",
        "error_empty": "Please enter a message.",
        "error_prefix": "Error:",
        "contact": "Contact",
        "actions": "What you can do",
    },
}


def language(value: str | None) -> str:
    return value if value in TEXTS else "de"


def status(value: str, lang: str) -> str:
    return STATUS[language(lang)].get(value, value)


def moment(value: datetime, lang: str, zone: str) -> str:
    """A time as people say it: "Donnerstag, 19.11.2026, 11:00 Uhr" / "Thursday, 19 Nov 2026,
    11:00"."""
    local = value.astimezone(ZoneInfo(zone))
    day = _WEEKDAYS[language(lang)][local.weekday()]
    if language(lang) == "de":
        return f"{day}, {local:%d.%m.%Y}, {local:%H:%M} Uhr"
    return f"{day}, {local.day} {_MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M}"


def due(value: datetime, lang: str, zone: str, now: datetime) -> str:
    """A due moment in business terms: "bis Donnerstag, 19.11., 11:00 Uhr" (the year only when
    it is not this year's)."""
    local = value.astimezone(ZoneInfo(zone))
    this_year = local.year == now.astimezone(ZoneInfo(zone)).year
    day = _WEEKDAYS[language(lang)][local.weekday()]
    if language(lang) == "de":
        date = f"{local:%d.%m.}" if this_year else f"{local:%d.%m.%Y}"
        return f"bis {day}, {date}, {local:%H:%M} Uhr"
    date = f"{local.day} {_MONTHS_EN[local.month - 1]}" + ("" if this_year else f" {local.year}")
    return f"by {day}, {date}, {local:%H:%M}"
