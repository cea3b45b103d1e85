"""Separating an agent's answer from the agent mail it quotes, and the final scan before relay
(pure functions; the clients over real SMTP are in test_agent_reply_clients.py)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from gateway.agents.reply import DELIMITER, leaks, own_lines, replace_addresses, separate

SPACE = " "  # the signature separator "-- " ends in one
NOTIFICATION = f"""\
{DELIMITER}

Guten Tag Anna Schmidt,

für Sie bzw. Ihr Team ist ein neues Ticket eingegangen.

Ticket:       LDS-1
Zuständig:    anna.schmidt@example.org
Anfrage von:  erika.muster@example.net

Nachricht:
> das VPN bricht ständig ab.

Befehle am Anfang Ihrer Antwort, je eine Zeile (werden nicht mitgesendet):
  #zuweisen NAME|me
  #priorität niedrig|normal|hoch|dringend

Mit freundlichen Grüßen
IT-Servicedesk
servicedesk@example.org

--{SPACE}
Diese Nachricht wurde automatisch erstellt.
##- Ende der Benachrichtigung LDS-1/0a1b2c3d -##
"""
ANSWER = "Das VPN-Profil wurde neu verteilt.\nBitte starten Sie neu."


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.rstrip("\n").split("\n"))


OUTLOOK_HEAD = (
    "-----Ursprüngliche Nachricht-----\nVon: IT-Servicedesk <servicedesk@example.org>\n"
    "Gesendet: Montag, 23. November 2026 10:02\nAn: Anna Schmidt <anna.schmidt@example.org>\n"
    "Antwort an: IT-Servicedesk <servicedesk+LDS-1.abcdefghijklmnopqrst@example.org>\n"
    "Betreff: [LDS-1] Neues Ticket: VPN\n\n"
)


@pytest.mark.parametrize(
    "body",
    [
        f"{ANSWER}\n\nViele Grüße\nAnna\n\n{OUTLOOK_HEAD}{NOTIFICATION}",
        f"{ANSWER}\n\n-- \nAnna\n\nAm 23.11.26 um 10:02 schrieb IT-Servicedesk:\n"
        f"{quoted(NOTIFICATION)}\n",
        f"{ANSWER}\n\nOn Mon, Nov 23, 2026 at 10:02 AM IT-Servicedesk <servicedesk@example.org>\n"
        f"wrote:\n\n{quoted(NOTIFICATION)}\n",
        f"{ANSWER}\n\n{quoted('Am 23.11.2026 um 10:02 schrieb IT-Servicedesk <s@e.org>:')}\n"
        f">\n{quoted(NOTIFICATION)}\n",
        f"Am 23.11.26 um 10:02 schrieb IT-Servicedesk:\n{quoted(NOTIFICATION)}\n\n{ANSWER}\n\n"
        "-- \nAnna\n",  # bottom-posted
        f"{OUTLOOK_HEAD}{NOTIFICATION}\n{ANSWER}\n",  # bottom-posted below an unquoted original
    ],
    ids=["outlook", "thunderbird", "gmail-wrapped", "apple-mail", "bottom", "outlook-bottom"],
)
def test_the_answer_is_separated_however_the_client_quotes(body: str) -> None:
    assert separate(body).text == ANSWER and separate(body).problem is None


def test_text_between_quoted_lines_cannot_be_separated() -> None:
    lines = quoted(NOTIFICATION).split("\n")
    lines.insert(8, "Das mache ich.")
    assert separate("Am 23.11.26 schrieb X:\n" + "\n".join(lines)).problem == "inline"


def test_text_above_and_below_the_quote_cannot_be_separated() -> None:
    body = f"{ANSWER}\n\n{quoted(NOTIFICATION)}\n\nNoch etwas ganz anderes.\n"
    assert separate(body).problem == "above-and-below"


def test_without_markers_the_usual_reply_split_applies() -> None:
    assert separate(f"{ANSWER}\n\nAm 1.2.2026 um 10:00 schrieb X <x@y.de>:\n> alt\n").text == (
        ANSWER
    )


def test_agent_addresses_become_the_central_address() -> None:
    text = "Mail: Anna.Schmidt@example.org, <mailto:ben@example.org>; nicht xben@example.org"
    assert replace_addresses(text, ["anna.schmidt@example.org", "ben@example.org"],
                             "servicedesk@example.org") == (
        "Mail: servicedesk@example.org, <mailto:servicedesk@example.org>; nicht xben@example.org"
    )


def raw(text: str) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "x"
    msg.set_content(text)
    return bytes(msg)


def test_own_lines_leave_out_the_requesters_text_and_the_closing() -> None:
    lines = own_lines([raw(NOTIFICATION)])
    assert "zuständig anna schmidt example org" in lines
    assert "nachricht" not in lines and not any("vpn bricht" in line for line in lines)
    assert "mit freundlichen grüßen" not in lines


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Siehe ##- Ende der Benachrichtigung LDS-1/0a1b2c3d -##", "marker"),
        ("bitte oberhalb dieser Zeile antworten", "marker"),
        ("an servicedesk+LDS-1.abcdefghijklmnopqrst@example.org", "token"),
        ("<pd.LDS-1.abcdefghijklmnopqrst.77@example.org>", "token"),
        ("Kontakt: ANNA.schmidt@example.org", "agent-address"),
        ("#priorität niedrig|normal|hoch|dringend", "help"),
        ("Zuständig: anna schmidt\nexample.org", "notification"),  # rewrapped, punctuation gone
    ],
)
def test_the_final_scan_finds_agent_only_content(text: str, reason: str) -> None:
    found = leaks(text, agent_addresses=["anna.schmidt@example.org"],
                  notification_lines=own_lines([raw(NOTIFICATION)]))
    assert reason in found


def test_the_final_scan_passes_an_ordinary_answer() -> None:
    text = ("Ihr Ticket LDS-1 ist erledigt: Das VPN bricht ab, weil das Profil alt war.\n"
            "IT-Servicedesk\nservicedesk@example.org")
    assert leaks(text, agent_addresses=["anna.schmidt@example.org"], tokens=["x" * 20],
                 notification_lines=own_lines([raw(NOTIFICATION)]),
                 ignore=["IT-Servicedesk", "servicedesk@example.org"]) == []


def test_an_html_only_reply_converted_to_text_is_separated() -> None:
    """A client that sends HTML only: the parser turns it into text (inscriptis), where the
    quoted notification is indented, not `> ` quoted; its marker lines still frame it."""
    from inscriptis import get_text

    notification = "".join(f"<p>{line}</p>" for line in NOTIFICATION.split("\n") if line)
    html = (f"<div>{ANSWER.replace(chr(10), '<br>')}</div><div class='gmail_quote'>Am 23.11."
            f"2026 schrieb X:<blockquote>{notification}</blockquote></div>")
    assert separate(get_text(html)).text.split() == ANSWER.split()
