"""Names nobody listed (issue 15): a name known only from the From header and the signature,
the configured agents' names, names after "Frau"/"Herr" and in signatures, lists and runs of
words that are no German or English word (Ukrainian, Vietnamese, Sorbian, Turkish, Arabic), and
the words that only look like names (surnames and places used as words, products) staying."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.outgoing.senders import RecordingSender
from gateway.redaction import DEFAULT_ENTITIES, KeyedPseudonyms, Redactor, detect_language
from gateway.redaction.vocabulary import is_word, name_like
from storage import spool
from tests.helpers import make_mail, write_config

KEY = b"test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(entities=DEFAULT_ENTITIES, staff_names=["Zschockelt, Sebastian (IT)"])


def redact(redactor: Redactor, text: str, **kwargs: Any) -> str:
    kwargs.setdefault("language", detect_language(text))
    kwargs.setdefault("pseudonyms", KeyedPseudonyms(KEY))
    return redactor.redact(text, **kwargs).text


def test_a_name_only_in_the_from_header_and_signature_is_redacted_everywhere(
    redactor: Redactor,
) -> None:
    text = (
        "Hallo,\n\nbitte Rückruf, Pietzsch hat die Nummer. Kathrin ist bis 14 Uhr da.\n\n"
        "Grüße\nK. Pietzsch\n"
    )
    without = redact(redactor, text)
    assert "Pietzsch hat" in without  # a lone unknown word in running text: no evidence
    with_header = redact(redactor, text, known_names=["Pietzsch, Kathrin (LDS)"])
    for secret in ("Pietzsch", "Kathrin"):
        assert secret not in with_header, with_header
    assert "bitte Rückruf, [NAME-1] hat die Nummer." in with_header


def test_configured_agents_names_are_redacted_in_every_form(redactor: Redactor) -> None:
    text = (
        "Sehr geehrter Herr Zschockelt,\n\nwie mit Sebastian besprochen, sende ich die Unterlagen."
        "\n\nMit freundlichen Grüßen\nOlena Kovalenko\n"
    )
    result = redact(redactor, text)
    for secret in ("Zschockelt", "Sebastian", "Olena", "Kovalenko"):
        assert secret not in result, result
    assert "wie mit [NAME-1] besprochen" in result  # the agent, one number in every form


@pytest.mark.parametrize(
    "text, secrets",
    [
        ("Frau Kovalenko hat den Antrag gestellt.", ["Kovalenko"]),
        ("Bitte melden Sie sich bei Frau Nguyễn Thị Hằng.", ["Nguyễn", "Thị", "Hằng"]),
        ("Herr Šołta ist heute nicht im Büro.", ["Šołta"]),
        ("Rücksprache mit Zschoche ist erfolgt, laut Braun fehlt die Unterschrift.",
         ["Zschoche", "Braun"]),
        ("Die Freigabe kam von Frau Dr. Thi Thuy Truong.", ["Thi", "Thuy", "Truong"]),
        ("Viele Grüße\nHanka Šołta\nLandratsamt Bautzen\n", ["Hanka", "Šołta"]),
        ("Mit freundlichen Grüßen\n\nTkachenko, Taras\nReferat 23\n", ["Tkachenko", "Taras"]),
        ("Best regards,\nVan Minh Tran\n", ["Van", "Minh", "Tran"]),
        ("bitte das Notebook an Ayşe Kaya übergeben.", ["Ayşe", "Kaya"]),
        ("Rasha Youssef from our Leipzig office cannot log in.", ["Rasha", "Youssef"]),
        ("Verteiler: Mehmet Yılmaz, Jurij Krawc, Abdulrahman Sabbagh\n",
         ["Yılmaz", "Krawc", "Sabbagh", "Abdulrahman"]),
        ("angemeldet sind:\n- Kowaltschuk, Wolodymyr\n- Zschoche, Rico\n",
         ["Kowaltschuk", "Wolodymyr", "Zschoche"]),
        ("Participants: Halyna Bondarenko; Mr Al-Hassan\n", ["Halyna", "Bondarenko", "Hassan"]),
        ("Die Kollegen Scholze und Pönitz sind informiert.", ["Pönitz"]),
        # a list of lone words, most of them names: the surnames that are words go too
        ("Verteiler: Haupt, Fiedler, Nestler, Kaden\n", ["Haupt", "Fiedler", "Nestler", "Kaden"]),
        # a second given name nobody listed after Herr/Frau takes the name on
        ("Bitte richten Sie für Herrn Thanh Tung Dang einen Arbeitsplatz ein.",
         ["Thanh", "Tung", "Dang"]),
        # after Frau/Herr a month is a name, alone or as a given name
        ("Frau Mai Linh Pham hat den Termin abgesagt.", ["Mai", "Linh", "Pham"]),
        ("Im Mai hat Frau Mai angerufen.", ["Frau Mai"]),
        # a sign-off of a dash and the name (seen in the shared corpus's reply bodies)
        ("Having the function would be great.\n\n-Abhishek Kona\n", ["Abhishek", "Kona"]),
        # initials before a surname nobody listed
        ("Grüße\nK. Pietzsch\n", ["Pietzsch"]),
        ("Author(s): A. Luotonen, K.-H. Zschoche\n", ["Luotonen", "Zschoche"]),
        # surname first, given name nobody listed, where the name plainly ends
        ("Der Antrag von Manço, Sunay (geboren am 09.09.1990) liegt vor.", ["Manço", "Sunay"]),
        # a mention, a salutation of two, a family
        ("@Mykola Shevchuk kannst du dir das ansehen?", ["Mykola", "Shevchuk"]),
        ("Hi Ngozi and Chinonso,\nthe share is back.", ["Ngozi", "Chinonso"]),
        ("Hallo Ngozi und Team,\nder Drucker geht.", ["Ngozi"]),
        ("c/o Familie Hashemi, Bautzner Str. 12", ["Hashemi"]),
        ("Drucker geht wieder.\ngruß, heiko zenker", ["heiko", "zenker"]),
        # Romanian letters (Latin Extended-B), a form in capitals, who said it, whose laptop
        ("Der Antrag von Ionuț Popescu ist eingegangen.", ["Ionuț", "Popescu"]),
        ("Ștefan Mureșan ruft zurück.", ["Ștefan", "Mureșan"]),
        ("NAME: RENÉ JÄHNIG\nANLIEGEN: NEUES PASSWORT", ["RENÉ", "JÄHNIG"]),
        ("Jun Wei said the VPN drops every hour.", ["Jun", "Wei"]),
        ("Das Update läuft. Aleksandra meinte, es dauert.", ["Aleksandra"]),
        ("Ayodele's laptop will not boot after the update.", ["Ayodele"]),
        # on whose behalf (the surname is a German compound to the dictionary: "war|same")
        ("Forwarding this from Ivaylo on behalf of Abdirahman Warsame.",
         ["Abdirahman", "Warsame"]),
        ("Der Antrag wurde im Auftrag von Maik Scheibe gestellt.", ["Maik", "Scheibe"]),
    ],
)  # fmt: skip
def test_names_in_no_list_are_redacted(redactor: Redactor, text: str, secrets: list[str]) -> None:
    result = redact(redactor, text)
    for secret in secrets:
        assert secret not in result, result


@pytest.mark.parametrize(
    "sentence, kept",
    [
        ("Der Koch der Kantine meldet einen Defekt.", ["Koch"]),
        ("Seit heute sitzt ein Vogel am Fenster.", ["Vogel"]),
        ("Der Reißwolf im 3. OG ist verstopft.", ["Reißwolf"]),
        ("Im Kühlschrank steht noch Müller-Milch.", ["Müller-Milch"]),
        ("Die Außenstelle in Chemnitz ist betroffen, Hoyerswerda auch.",
         ["Chemnitz", "Hoyerswerda"]),
        ("Seit dem Update startet Outlook nicht, Citrix Workspace auch nicht.",
         ["Outlook", "Citrix Workspace"]),
        ("Am Montag im Oktober war alles in Ordnung.", ["Montag", "Oktober"]),
        ("Im Mai hat Frau Mai angerufen.", ["Im Mai"]),
        ("Der Richter am Amtsgericht Zwickau hat den Beschluss geschickt.", ["Richter", "Zwickau"]),
        ("Landratsamt Beispielkreis – Ordnungsamt\nWohngeldantrag Hortplatzvergabe",
         ["Landratsamt Beispielkreis", "Wohngeldantrag Hortplatzvergabe"]),
        ("Verteiler: Wohngeldstelle, Hausmeisterei, Jira\n", ["Wohngeldstelle", "Hausmeisterei"]),
        ("Empfänger: Dresden, Leipzig, Zwickau\n", ["Dresden", "Leipzig", "Zwickau"]),
        ("Verteiler: Bauhof, Kämmerei, Wertstoffhof\n", ["Bauhof", "Kämmerei", "Wertstoffhof"]),
        ("Teilnehmer: IT-Service, Personalrat, Datenschutz\n",
         ["IT-Service", "Personalrat", "Datenschutz"]),
        ("Frau Schubert Bescheid geben, dass der Laptop fertig ist.", ["Bescheid", "Laptop"]),
        ("Die Daten kommen von Dataport, laut Handbuch; Rücksprache mit Citrix.",
         ["Dataport", "Handbuch", "Citrix"]),
        ("Please sync the date of the duplicates with Case creation.", ["Case"]),
        ("Äpfel und Birnen, Dresden und Leipzig, Word und Excel sowie Outlook.",
         ["Birnen", "Leipzig", "Excel", "Outlook"]),
        ("- Druckertreiber Aktualisierung\n- Bürgerbüro Öffnungszeiten\n",
         ["Druckertreiber Aktualisierung", "Bürgerbüro Öffnungszeiten"]),
        ("Offen:\n-Neuer Drucker\n-Laptop Rückgabe\n-Reset Password\n",
         ["Neuer Drucker", "Laptop Rückgabe", "Reset Password"]),
        ("Siehe Anlage C. Bitte prüfen, z. B. Outlook; § 5 Abs. 2 S. 1 BGB.",
         ["C. Bitte", "B. Outlook", "S. 1 BGB"]),
        ("Hallo, der Drucker\nim 2. OG geht nicht.", ["der Drucker"]),
        ("Viele Grüße\nder Drucker", ["der Drucker"]),
        ("Dresden, Leipzig (Sachsen) und Drucker, Scanner (2. OG) sind betroffen.",
         ["Dresden, Leipzig", "Drucker, Scanner"]),
        ("Hallo Outlook und Teams,\nbeide gehen nicht. Mail an it@Example.org Bitte.",
         ["Outlook und Teams", "] Bitte."]),  # the domain after "@" is no mention
        ("Familie und Beruf: @Servicedesk bitte prüfen.", ["Familie und Beruf", "Servicedesk"]),
        ("Danke, super!\nGruß\nmorgen geht es weiter. Thanks, will do", ["super", "morgen",
                                                                         "will do"]),
        ("Customer Service said the case is closed. Red Hat said so too.",
         ["Customer Service", "Red Hat"]),
        ("Deutsche Bahn meldet Verspätung. Kaspersky Endpoint reports a threat.",
         ["Deutsche Bahn", "Kaspersky Endpoint"]),
        ("Windows Update meldet einen Fehler. Microsoft Teams says I am away.",
         ["Windows Update", "Microsoft Teams"]),
        ("Microsoft's account portal is down, Outlook's mailbox is full.",
         ["Microsoft's", "Outlook's"]),
        ("ANLIEGEN: NEUES PASSWORT\nKontaktperson: IT-SERVICE\nNAME: SERVER01",
         ["NEUES PASSWORT", "IT-SERVICE", "SERVER01"]),
        # an office after "im Auftrag von", also as a closing line
        ("Bescheid\nim Auftrag von Landratsamt Meißen", ["Landratsamt Meißen"]),
        ("Das Gutachten kam im Auftrag von Microsoft, on behalf of Dataport.",
         ["Microsoft", "Dataport"]),
    ],
)  # fmt: skip
def test_words_that_look_like_names_survive(
    redactor: Redactor, sentence: str, kept: list[str]
) -> None:
    result = redact(redactor, sentence)
    for word in kept:
        assert word in result, result


def test_the_vocabulary_tells_words_from_names() -> None:
    assert is_word("Koch") and is_word("Chemnitz") and is_word("Citrix")
    assert is_word("Landratsamt") and is_word("Wohngeldantrag")  # compounds
    assert not is_word("Kretzschmar") and not is_word("Kovalenko") and not is_word("Yılmaz")
    assert name_like("Schmidt")  # a word ("schmidt" is in the dictionary) but a listed name


# ---------------------------------------------------------------- through the pipeline


@pytest.fixture
def app(make_settings: Any) -> Iterator[App]:
    settings = make_settings(
        agents=[{"email": "s.zschockelt@example.org", "name": "Zschockelt, Sebastian",
                 "teams": ["it", "fachverfahren"]}],
        teams=[{"name": "it", "lead": "s.zschockelt@example.org"}, {"name": "fachverfahren"}],
    )  # fmt: skip
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def _deliver_and_show(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes
) -> dict[str, Any]:
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key="k1", raw=raw, envelope_from="x@example.net")])  # fmt: skip
    [outcome] = app.worker.drain()
    assert outcome.state == "done"
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "tickets", "show", "LDS-1", "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_stored_ticket_has_no_header_signature_or_agent_name(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        "Guten Tag Herr Zschockelt,\n\nSebastian meinte, ich soll mich hier melden: Lenka kann "
        "sich seit Montag nicht in Citrix anmelden. Der Koch der Kantine hat dasselbe Problem."
        "\n\nViele Grüße\nLenka Wićaz\nBürgerbüro Bautzen\n"
    )
    mail = make_mail(sender='"Wićaz, Lenka" <l.wicaz@example.net>', subject="Citrix", body=body)
    ticket = _deliver_and_show(app, tmp_path, capsys, mail.as_bytes())
    everything = json.dumps(ticket, ensure_ascii=False)
    for secret in ("Wićaz", "Lenka", "Zschockelt", "Sebastian"):
        assert secret not in everything, everything
    text = ticket["articles"][0]["body"]
    assert "Der Koch der Kantine hat dasselbe Problem." in text
    assert "nicht in Citrix anmelden" in text
