"""Routing rules: every condition and action, the merge rule, the fallback, exact `file:line`
errors for every kind of mistake, explanations, and the shipped German rules against the example
config and real mail samples."""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.errors import RulesetInvalid
from gateway.mail.language import detect
from gateway.pipeline.parse import parse_mail
from gateway.routing.ruleset import MailFacts, RouteDecision, Ruleset, load_ruleset
from tests.helpers import ROOT, eml

AGENTS = ["anna.schmidt@example.org", "ben.mueller@example.org"]
TEAMS = ["it", "fachverfahren"]
TEMPLATES = ["requester-received", "requester-reopened", "requester-new-linked"]
TUESDAY_10 = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Berlin (CET)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(directory: Path, **overrides: Any) -> Ruleset:
    options: dict[str, Any] = {"agents": AGENTS, "teams": TEAMS, "templates": TEMPLATES,
                               "timezone": "Europe/Berlin", "default_queue": "allgemein"}
    return load_ruleset(directory, **{**options, **overrides})


def rules(tmp_path: Path, text: str) -> Ruleset:
    """A ruleset from one file, `10-test.yaml`."""
    write(tmp_path / "rules", "10-test.yaml", text)
    return load(tmp_path / "rules")


def errors(directory: Path) -> list[str]:
    with pytest.raises(RulesetInvalid) as caught:
        load(directory)
    return [str(error) for error in caught.value.errors]


def facts(**overrides: Any) -> MailFacts:
    base = MailFacts(
        from_addr="erika.muster@landkreis-beispiel.de", from_name="Erika Muster",
        to=("servicedesk@example.org",), cc=(), subject="Frage", body="Guten Tag",
        headers={}, attachments=(), language="de", sender_is_agent=False,
        received_at=TUESDAY_10)
    return replace(base, **overrides)


def matches(ruleset: Ruleset, **overrides: Any) -> bool:
    """Whether the first rule of `ruleset` matches a mail with these facts."""
    return bool(ruleset.evaluate(facts(**overrides)).hits)


def one_rule(tmp_path: Path, when: str) -> Ruleset:
    body = textwrap.indent(textwrap.dedent(when).strip(), " " * 4)
    return rules(tmp_path, f"- name: r\n  when:\n{body}\n  then: {{queue: q}}\n")


# --- conditions ---------------------------------------------------------------------------------


def test_from_matches_address_domain_and_glob_case_insensitively(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, """
        from: [chef@example.org, "@landkreis-beispiel.de", "*@*.bund.de"]
    """)
    assert matches(ruleset, from_addr="Chef@Example.ORG")
    assert matches(ruleset, from_addr="x@landkreis-beispiel.de")
    assert matches(ruleset, from_addr="y@bva.bund.de")
    assert not matches(ruleset, from_addr="x@sub.landkreis-beispiel.de")  # a domain is exact
    assert not matches(ruleset, from_addr="y@bund.de")
    assert not matches(ruleset, from_addr="")


def test_to_and_cc_map_service_addresses_to_queues(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: buerger
          when: {to: buergerservice@example.org}
          then: {queue: buerger}
        - name: kopie
          when: {cc: "it-*@example.org"}
          then: {queue: it}
    """)
    decide = ruleset.evaluate
    assert decide(facts(to=("a@x.de", "Buergerservice@example.org"))).decision.queue == "buerger"
    assert decide(facts(cc=("it-leitung@example.org",))).decision.queue == "it"
    assert decide(facts(cc=("buergerservice@example.org",))).decision.queue == "allgemein"


@pytest.mark.parametrize("subject", [
    "STÖRUNG im Netz", "störung", "Stoerung Telefon", "Netzwerkstörung", "STOERUNG",
    unicodedata.normalize("NFD", "Störung"),  # decomposed umlaut, as some Mac clients send
])
def test_contains_is_case_and_umlaut_insensitive(tmp_path: Path, subject: str) -> None:
    ruleset = one_rule(tmp_path, "subject: {contains: [Störung, Ausfall]}")
    assert matches(ruleset, subject=subject)


def test_contains_folds_sharp_s_spacing_and_written_ae(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, "body: {contains: [Straße gesperrt, geht nicht, Schluessel]}")
    assert matches(ruleset, body="Die STRASSE GESPERRT?")
    assert matches(ruleset, body="Das VPN geht\n   nicht mehr")  # wrapped line
    assert matches(ruleset, body="Schlüssel verloren")
    assert not matches(ruleset, body="alles gut")


def test_a_keyword_starting_with_a_space_only_matches_at_a_word_start(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, "subject: {contains: [' Akte']}")
    assert matches(ruleset, subject="Akte fehlt") and matches(ruleset, subject="Die AKTE")
    assert not matches(ruleset, subject="eAkte startet nicht")


def test_matches_is_a_case_insensitive_regex_search(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, r"subject: {matches: '\bSAP\b'}")
    assert matches(ruleset, subject="sap-Anmeldung klappt nicht")
    assert not matches(ruleset, subject="Sapporo")


def test_header_contains_and_matches(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: wichtig
          when: {header: {name: X-Priority, matches: '^1\\b'}}
          then: {priority: high}
        - name: monitoring
          when: {header: {name: X-Mailer, contains: [Nagios, Icinga]}}
          then: {queue: monitoring}
    """)
    urgent = ruleset.evaluate(facts(headers={"x-priority": ["1 (Highest)"]}))
    assert urgent.decision.priority == "high"
    icinga = ruleset.evaluate(facts(headers={"x-mailer": ["ICINGA 2.14"]}))
    assert icinga.decision.queue == "monitoring"
    plain = ruleset.evaluate(facts())
    assert [m.reason for m in plain.misses] == ["header x-priority is absent",
                                                "header x-mailer is absent"]


def test_attachment_present_absent_filename_and_content_type(tmp_path: Path) -> None:
    pdf = (("AU-Bescheinigung.PDF", "application/pdf"),)
    photo = (("IMG_0001.jpg", "image/jpeg"),)
    has_any = one_rule(tmp_path / "a", "attachment: true")
    assert matches(has_any, attachments=pdf) and not matches(has_any)
    has_none = one_rule(tmp_path / "b", "attachment: false")
    assert matches(has_none) and not matches(has_none, attachments=pdf)
    by_name = one_rule(tmp_path / "c", "attachment: {filename: ['*.pdf', '*.docx']}")
    assert matches(by_name, attachments=photo + pdf) and not matches(by_name, attachments=photo)
    by_type = one_rule(tmp_path / "d", "attachment: {content_type: 'image/*'}")
    assert matches(by_type, attachments=photo) and not matches(by_type, attachments=pdf)
    both = one_rule(tmp_path / "e", "attachment: {filename: '*.jpg', content_type: '*/pdf'}")
    assert not matches(both, attachments=photo + pdf)  # one attachment must satisfy both


def test_language_and_sender_is_agent(tmp_path: Path) -> None:
    english = one_rule(tmp_path / "a", "language: en")
    assert matches(english, language="en") and not matches(english, language="de")
    agent = one_rule(tmp_path / "b", "sender_is_agent: true")
    assert matches(agent, sender_is_agent=True) and not matches(agent, sender_is_agent=False)


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC instant given as Berlin wall-clock time (the rules' own view)."""
    from zoneinfo import ZoneInfo

    local = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin"))
    return local.astimezone(UTC)


def test_time_window_uses_weekdays_and_hours_in_the_service_timezone(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, """
        time: {weekdays: [mo, di, mi, do, fr], hours: "07:00-18:00"}
    """)
    assert matches(ruleset, received_at=berlin(2024, 3, 4, 7, 0))  # Monday 07:00: start counts
    assert not matches(ruleset, received_at=berlin(2024, 3, 4, 18, 0))  # end is exclusive
    assert not matches(ruleset, received_at=berlin(2024, 3, 9, 10, 0))  # Saturday
    assert matches(ruleset, received_at=berlin(2024, 3, 8, 17, 59))  # Friday


def test_time_window_follows_daylight_saving_time(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, 'time: {weekdays: [mon-fri], hours: "07:00-18:00"}')
    # 05:30 UTC is 06:30 in winter (CET, outside) but 07:30 in summer (CEST, inside).
    assert not matches(ruleset, received_at=datetime(2024, 3, 29, 5, 30, tzinfo=UTC))
    assert matches(ruleset, received_at=datetime(2024, 4, 2, 5, 30, tzinfo=UTC))
    # The Sunday of the switch: 01:30 UTC is 03:30 CEST, already Sunday and outside.
    assert not matches(ruleset, received_at=datetime(2024, 3, 31, 1, 30, tzinfo=UTC))
    # Late October, back to CET: 16:30 UTC is 17:30 local, inside; 17:30 UTC is 18:30, outside.
    assert matches(ruleset, received_at=datetime(2024, 10, 28, 16, 30, tzinfo=UTC))
    assert not matches(ruleset, received_at=datetime(2024, 10, 28, 17, 30, tzinfo=UTC))


def test_time_window_across_midnight_and_weekend_range(tmp_path: Path) -> None:
    night = one_rule(tmp_path / "a", 'time: {hours: "22:00-06:00"}')
    assert matches(night, received_at=berlin(2024, 3, 5, 23, 15))
    assert matches(night, received_at=berlin(2024, 3, 6, 5, 59))
    assert not matches(night, received_at=berlin(2024, 3, 6, 6, 0))
    weekend = one_rule(tmp_path / "b", "time: {weekdays: sa-so}")
    assert matches(weekend, received_at=berlin(2024, 3, 10, 12))  # Sunday
    assert not matches(weekend, received_at=berlin(2024, 3, 11, 12))  # Monday


def test_not_around_time_means_outside_office_hours(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, """
        not: {time: {weekdays: [mo, di, mi, do, fr], hours: "07:00-18:00"}}
    """)
    saturday = ruleset.evaluate(facts(received_at=berlin(2024, 3, 9, 20, 15)))
    assert saturday.hits[0].reason == (
        "received sa 20:15 (Europe/Berlin), outside mo,di,mi,do,fr 07:00-18:00")
    tuesday = ruleset.evaluate(facts())
    assert tuesday.misses[0].reason == (
        "not: received di 10:00 (Europe/Berlin), within mo,di,mi,do,fr 07:00-18:00")


def test_all_any_not_and_implicit_and(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, """
        language: de
        all:
          - any:
              - subject: {contains: [VPN]}
              - body: {contains: [VPN]}
          - not: {from: "@example.org"}
    """)
    assert matches(ruleset, subject="VPN kaputt")
    assert matches(ruleset, body="mein vpn")
    assert not matches(ruleset, subject="VPN", from_addr="anna.schmidt@example.org")
    assert not matches(ruleset, subject="VPN", language="en")
    assert not matches(ruleset, subject="Drucker")


def test_empty_or_absent_when_matches_every_mail(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: leer
          when:
          then: {tags: [a]}
          stop: false
        - name: ohne
          then: {tags: [b]}
    """)
    evaluation = ruleset.evaluate(facts())
    assert evaluation.decision.tags == ("a", "b")
    assert evaluation.hits[0].reason == "no conditions (matches every mail)"


# --- actions, merging, fallback ----------------------------------------------------------------


def test_every_action_lands_in_the_decision(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: alles
          then:
            queue: it-stoerung
            owner: Anna.Schmidt@example.org
            priority: urgent
            tags: [netz, vpn]
            template: none
    """)
    assert ruleset.evaluate(facts()).decision == RouteDecision(
        queue="it-stoerung", owner="anna.schmidt@example.org", team=None, assign=None,
        priority="urgent", tags=("netz", "vpn"), template="none", rules=("alles",))


@pytest.mark.parametrize("mode", ["round_robin", "least_open"])
def test_team_with_assign_mode(tmp_path: Path, mode: str) -> None:
    ruleset = rules(tmp_path, f"""
        - name: team
          then: {{team: fachverfahren, assign: {mode}, template: requester-received}}
    """)
    decision = ruleset.evaluate(facts()).decision
    assert (decision.team, decision.assign, decision.owner) == ("fachverfahren", mode, None)
    assert decision.template == "requester-received"
    assert decision.queue == "allgemein"  # no rule set a queue: the default


def test_stop_false_accumulates_and_the_first_value_set_wins(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: ausfall
          when: {subject: {contains: [Totalausfall]}}
          then: {priority: high, tags: [grossstoerung]}
          stop: false
        - name: nachts
          then: {tags: [nachts, grossstoerung], priority: low, team: it}
          stop: false
        - name: stoerung
          when: {subject: {contains: [ausfall]}}
          then: {queue: it-stoerung, priority: normal, owner: ben.mueller@example.org,
                 tags: [it]}
        - name: nie
          then: {queue: nie}
    """)
    evaluation = ruleset.evaluate(facts(subject="Totalausfall Server"))
    assert evaluation.decision == RouteDecision(
        queue="it-stoerung", owner=None, team="it", assign=None, priority="high",
        tags=("grossstoerung", "nachts", "it"), template=None,
        rules=("ausfall", "nachts", "stoerung"))
    assert evaluation.misses[0].reason == "not evaluated: earlier rule 'stoerung' stopped"


def test_first_stopping_match_wins(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: eins
          when: {subject: {contains: [Drucker]}}
          then: {queue: eins}
        - name: zwei
          when: {subject: {contains: [Drucker]}}
          then: {queue: zwei}
    """)
    assert ruleset.evaluate(facts(subject="Drucker")).decision.rules == ("eins",)


def test_fallback_when_nothing_matches(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: vpn
          when: {subject: {contains: [VPN]}}
          then: {queue: netz, owner: anna.schmidt@example.org}
    """)
    evaluation = ruleset.evaluate(facts(subject="Drucker"))
    assert evaluation.decision == RouteDecision(queue="allgemein")
    assert evaluation.decision.rules == () and evaluation.hits == []


def test_an_empty_rules_directory_routes_everything_to_the_default_queue(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    ruleset = load(tmp_path / "rules", default_queue="eingang")
    assert ruleset.rules == () and ruleset.evaluate(facts()).decision.queue == "eingang"


def test_files_load_in_name_order_yml_included_dotfiles_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    write(directory, "20-b.yml", "- {name: b, then: {tags: [b]}, stop: false}\n")
    write(directory, "10-a.yaml", "- {name: a, then: {tags: [a]}, stop: false}\n")
    write(directory, ".#10-a.yaml", "kaputt: [\n")  # an editor's lock file
    write(directory, "30-c.yaml.bak", "kaputt: [\n")
    write(directory, "15-leer.yaml", "# nur ein Kommentar\n")
    ruleset = load(directory)
    assert [p.name for p in ruleset.files] == ["10-a.yaml", "15-leer.yaml", "20-b.yml"]
    assert ruleset.evaluate(facts()).decision.tags == ("a", "b")


def test_version_changes_with_content_only(tmp_path: Path) -> None:
    path = write(tmp_path / "rules", "10.yaml", "- {name: a, then: {queue: a}}\n")
    first, again = load(path.parent).version, load(path.parent).version
    path.write_text("- {name: a, then: {queue: b}}\n")
    assert first == again and len(first) == 12
    assert load(path.parent).version != first


def test_anchors_and_merge_keys_are_usable(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: a
          when:
            any:
              - subject: &w {contains: [Störung]}
              - body: *w
          then: &t {queue: it, tags: [x]}
        - name: b
          then: {<<: *t, queue: other}
    """)
    assert ruleset.evaluate(facts(body="eine Störung")).decision.queue == "it"
    assert ruleset.evaluate(facts()).decision.queue == "other"


# --- explanations -------------------------------------------------------------------------------


def test_evaluation_lists_every_rule_with_a_reason(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: personal
          when: {subject: {contains: [Krankmeldung, AU-Bescheinigung]}}
          then: {queue: personal}
        - name: stoerung
          when: {subject: {contains: [Störung, Ausfall]}}
          then: {queue: it-stoerung}
        - name: rest
          then: {queue: rest}
    """)
    evaluation = ruleset.evaluate(facts(subject="Störung Telefonanlage"))
    file = str(tmp_path / "rules" / "10-test.yaml")
    assert evaluation.to_json() == {
        "ruleset": ruleset.version,
        "decision": {"queue": "it-stoerung", "owner": None, "team": None, "assign": None,
                     "priority": None, "tags": [], "template": None, "rules": ["stoerung"]},
        "hits": [{"rule": "stoerung", "file": file, "line": 4,
                  "reason": "subject contains 'Störung'"}],
        "misses": [
            {"rule": "personal", "file": file, "line": 1,
             "reason": "subject does not contain any of 'Krankmeldung', 'AU-Bescheinigung'"},
            {"rule": "rest", "file": file, "line": 7,
             "reason": "not evaluated: earlier rule 'stoerung' stopped"},
        ],
    }
    assert evaluation.explain() == [
        f"- personal ({file}:1): subject does not contain any of 'Krankmeldung', "
        "'AU-Bescheinigung'",
        f"+ stoerung ({file}:4): subject contains 'Störung'",
        f"- rest ({file}:7): not evaluated: earlier rule 'stoerung' stopped",
        "→ rule 'stoerung' → queue it-stoerung",
    ]


def test_reasons_name_the_first_failing_condition(tmp_path: Path) -> None:
    ruleset = one_rule(tmp_path, """
        from: "@example.org"
        to: [a@example.org, b@example.org]
        attachment: {filename: "*.pdf"}
        any:
          - subject: {contains: [x]}
          - body: {matches: 'y+z'}
    """)
    def reason(**overrides: Any) -> str:
        return ruleset.evaluate(facts(**overrides)).results[0].reason

    assert reason() == "from does not match '@example.org'"
    assert reason(from_addr="q@example.org") == (
        "no to address matches any of 'a@example.org', 'b@example.org'")
    assert reason(from_addr="q@example.org", to=("b@example.org",)) == (
        "no attachment matches file name '*.pdf'")
    everything = {"from_addr": "q@example.org", "to": ("b@example.org",),
                  "attachments": (("a.pdf", "application/pdf"),)}
    assert reason(**everything) == (
        "subject does not contain 'x' and body does not match /y+z/")
    assert reason(**everything, body="yyz") == (
        "from matches '@example.org' and to matches 'b@example.org' and an attachment "
        "matches file name '*.pdf' and body matches /y+z/")


def test_decision_describe_for_the_ticket_event() -> None:
    decision = RouteDecision(queue="netz", owner="anna.schmidt@example.org", priority="high",
                             tags=("a", "b"), rules=("netz-stoerung",))
    assert decision.describe() == ("rule 'netz-stoerung' → queue netz, owner "
                                   "anna.schmidt@example.org, priority high, tags a, b")
    assert RouteDecision(queue="allgemein").describe() == "no rule matched → queue allgemein"


# --- validation errors --------------------------------------------------------------------------


def bad(tmp_path: Path, text: str) -> list[str]:
    """Errors of a one-file rules directory, with the file prefix cut off as `F`."""
    path = write(tmp_path / "rules", "20-priority.yaml", text)
    return [line.replace(str(path), "F") for line in errors(path.parent)]


def test_error_example_from_the_issue(tmp_path: Path) -> None:
    assert bad(tmp_path, """\
        - name: eskalation
          description: Beschwerden sofort hoch
          when:
            subject:
              contains: [Beschwerde]
          then:
            priority: sehr hoch
    """) == ["F:7: then.priority: 'sehr hoch' is not one of low, normal, high, urgent"]


@pytest.mark.parametrize(("text", "expected"), [
    ("- name: a\n  when: {subject: {contains: [x]}\n  then: {queue: q}\n",
     "F:3: invalid YAML: expected ',' or '}', but got '<scalar>' (while parsing a flow mapping "
     "that starts on line 2)"),
    ("- name: a\n\tthen: {queue: q}\n",
     "F:2: invalid YAML: found character '\\t' that cannot start any token"),
    ("- name: a\n  then: {queue: q}\n  then: {queue: r}\n", "F:3: duplicate key 'then'"),
    ("name: a\nthen: {queue: q}\n", "F:1: expected a list of rules, each starting with '- name:'"),
    ("- name: a\n  when:\n    subjekt: {contains: [x]}\n  then: {queue: q}\n",
     "F:3: when.subjekt: unknown key (did you mean 'subject'?)"),
    ("- name: a\n  then: {queue: q}\n  stopp: false\n",
     "F:3: stopp: unknown key (did you mean 'stop'?)"),
    ("- name: a\n  then: {queue: q, colour: red}\n",
     "F:2: then.colour: unknown key (allowed here: queue, owner, team, assign, priority, tags, "
     "template)"),
    ("- name: a\n  when:\n    body:\n      matches: '(Drucker'\n  then: {queue: q}\n",
     "F:4: when.body.matches: invalid regular expression: missing ), unterminated subpattern at "
     "position 0"),
    ("- name: a\n  when: {subject: {matches: 'Störung|'}}\n  then: {queue: q}\n",
     "F:2: when.subject.matches: regular expression 'Störung|' matches empty text, so nearly "
     "every mail (a stray '|'? to exclude words use not:)"),
    ("- name: a\n  then:\n    owner: anna.schmit@example.org\n",
     "F:3: then.owner: 'anna.schmit@example.org' is not a known agent "
     "(did you mean 'anna.schmidt@example.org'?)"),
    ("- name: a\n  then: {team: netz}\n",
     "F:2: then.team: 'netz' is not a known team (known: fachverfahren, it)"),
    ("- name: a\n  then: {template: eingang}\n",
     "F:2: then.template: 'eingang' is not a known template (known: none, requester-new-linked, "
     "requester-received, requester-reopened)"),
    ("- name: a\n  then: {owner: anna.schmidt@example.org, team: it}\n",
     "F:2: then: give owner or team, not both"),
    ("- name: a\n  then: {queue: q, assign: round_robin}\n", "F:2: then: assign needs a team"),
    ("- name: a\n  then: {}\n",
     "F:2: then: give at least one of queue, owner, team, priority, tags, template"),
    ("- name: a\n  when: {subject: {contains: []}}\n  then: {queue: q}\n",
     "F:2: when.subject.contains: must not be empty"),
    ("- name: a\n  when: {subject: {contains: [x], matches: y}}\n  then: {queue: q}\n",
     "F:2: when.subject: give exactly one of contains, matches"),
    ("- name: a\n  when:\n    subject:\n  then: {queue: q}\n",
     "F:3: when.subject: has no value (give one or remove the key)"),
    ("- name: a\n  when: {any: [{language: de}, {}]}\n  then: {queue: q}\n",
     "F:2: when.any: item 2 is an empty condition"),
    ("- name: a\n  when: {from: example.org}\n  then: {queue: q}\n",
     "F:2: when.from: 'example.org' is not an address (name@example.org), a domain "
     "(@example.org) or a pattern (*@*.example.org)"),
    ("- name: a\n  when: {time: {weekdays: [mo, fri, feiertag]}}\n  then: {queue: q}\n",
     "F:2: when.time.weekdays: 'feiertag' is not a weekday (mo, di, mi, do, fr, sa, so) or a "
     "range like mo-fr"),
    ("- name: a\n  when: {time: {hours: '7-18'}}\n  then: {queue: q}\n",
     "F:2: when.time.hours: '7-18' is not a time range like '07:00-18:00'"),
    ("- name: a\n  when: {time: {hours: '08:00-25:00'}}\n  then: {queue: q}\n",
     "F:2: when.time.hours: '08:00-25:00': 25:00 is not a time of day"),
    ("- name: a\n  when: {language: fr}\n  then: {queue: q}\n",
     "F:2: when.language: 'fr' is not one of de, en"),
    ("- name: a\n  when: {sender_is_agent: ja}\n  then: {queue: q}\n",
     "F:2: when.sender_is_agent: expected true or false, got text 'ja'"),
    ("- name: a\n  then: {queue: q}\n  stop: 0\n",
     "F:3: stop: expected true or false, got the number 0"),
    ("- name: a\n  when: {attachment: 'pdf'}\n  then: {queue: q}\n",
     "F:2: when.attachment: expected true, false or a mapping with filename / content_type"),
    ("- name: a\n  then: {tags: [ok, no]}\n",
     "F:2: then.tags[1]: expected text, got false (YAML reads yes/no/on/off as true/false: put "
     "it in quotes)"),
    ("- name: a\n  when:\n    not:\n      all:\n        - {subject: {contains: 42}}\n"
     "  then: {queue: q}\n",
     "F:5: when.not.all[0].subject.contains: expected text, got the number 42 (put it in "
     "quotes)"),
    ("- name: a\n  then: {queue: IT Störung}\n",
     "F:2: then.queue: 'IT Störung' is not a valid name: use letters, digits, '-', '_' or '.', "
     "no spaces, at most 64 characters"),
    ("- description: ohne Namen\n  then: {queue: q}\n", "F:1: name: required key is missing"),
    ("- name: a\n", "F:1: then: required key is missing"),
    ("- Störung\n", "F:1: expected a mapping, got text 'Störung'"),
])
def test_every_error_names_file_line_and_key_path(tmp_path: Path, text: str,
                                                  expected: str) -> None:
    assert bad(tmp_path, text) == [expected]


def test_all_errors_of_all_files_are_reported_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    write(directory, "10-queues.yaml", """\
        - name: vpn
          when: {subject: {contains: [VPN]}}
          then: {queue: netz}
        - name: drucker
          when: {subjekt: {contains: [Drucker]}}
          then: {priority: sehr hoch}
    """)
    write(directory, "20-owners.yaml", """\
        - name: vpn
          then: {queue: netz}
        - name: ohne-team
          then: {team: nirgendwo}
    """)
    write(directory, "30-kaputt.yaml", "- name: [\n")
    first, second, third = (str(directory / n) for n in
                            ("10-queues.yaml", "20-owners.yaml", "30-kaputt.yaml"))
    assert errors(directory) == [
        f"{first}:5: when.subjekt: unknown key (did you mean 'subject'?)",
        f"{first}:6: then.priority: 'sehr hoch' is not one of low, normal, high, urgent",
        f"{second}:1: name: 'vpn' is already used at {first}:1",
        f"{second}:4: then.team: 'nirgendwo' is not a known team (known: fachverfahren, it)",
        f"{third}:2: invalid YAML: expected the node content, but found '<stream end>'",
    ]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules" / "10-latin1.yaml"
    path.parent.mkdir()
    path.write_bytes("- name: a\n  when: {subject: {contains: [Störung]}}\n".encode("latin-1"))
    assert errors(path.parent) == [
        f"{path}:2: not valid UTF-8 (byte 0xf6); save the file as UTF-8"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rules" / "10-bom.yaml"
    path.parent.mkdir()
    path.write_bytes("\ufeff- {name: a, then: {queue: q}}\n".encode())
    assert load(path.parent).rules[0].name == "a"


def test_missing_directory_and_bad_timezone(tmp_path: Path) -> None:
    assert errors(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: rules directory not found"]
    (tmp_path / "rules").mkdir()
    with pytest.raises(RulesetInvalid, match="unknown time zone 'Mars/Olympus'"):
        load(tmp_path / "rules", timezone="Mars/Olympus")


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    text = "- name: bomb\n  description: x\n  x:\n" + "".join(f"    {lv}\n" for lv in levels)
    [message] = bad(tmp_path, text)
    assert message.startswith("F:") and "more than 100000 values" in message


# --- the shipped rules --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Ruleset:
    """`rules/` loaded exactly as `serve` would with the example config."""
    settings = load_settings(ROOT / "config.example.yaml")
    templates = {p.name.split(".")[0] for p in (settings.templates_dir / "de").glob("*.j2")}
    return load_ruleset(settings.rules_dir, agents=[a.email for a in settings.agents],
                        teams=settings.team_names(), templates=templates,
                        timezone=settings.service.timezone,
                        default_queue=settings.routing.default_queue)


def test_shipped_rules_validate_against_the_example_config(shipped: Ruleset) -> None:
    assert [p.name for p in shipped.files] == [
        "10-postfaecher.yaml", "20-personal.yaml", "30-markierungen.yaml", "40-themen.yaml"]
    assert len(shipped.rules) >= 9
    for path in shipped.files:
        assert path.read_text(encoding="utf-8").startswith("# ")  # a German how-to comment


def from_sample(name: str) -> MailFacts:
    mail = parse_mail(eml(name), domain="example.org")
    assert mail.date is not None
    return MailFacts.from_parsed(mail, language=detect(f"{mail.subject}\n{mail.text}"),
                                 sender_is_agent=False, received_at=mail.date)


@pytest.mark.parametrize(("sample", "expected"), [
    ("outlook-reply-aw.eml", RouteDecision(queue="it-stoerung", team="it", assign="round_robin",
                                           rules=("it-stoerung",))),
    ("alternative-de.eml", RouteDecision(queue="it-anforderung", team="it", assign="least_open",
                                         rules=("it-anforderung",))),
    ("plain-de.eml", RouteDecision(queue="allgemein")),
    ("html-only.eml", RouteDecision(queue="allgemein", tags=("englisch",),
                                    rules=("englischsprachig",))),
])
def test_shipped_rules_route_real_sample_mails(shipped: Ruleset, sample: str,
                                               expected: RouteDecision) -> None:
    assert shipped.evaluate(from_sample(sample)).decision == expected


SATURDAY_NIGHT = berlin(2024, 3, 9, 22, 30)


@pytest.mark.parametrize(("mail", "expected"), [
    ({"subject": "Krankmeldung", "body": "anbei meine AU-Bescheinigung",
      "attachments": (("AU.pdf", "application/pdf"),)},
     RouteDecision(queue="personal", priority="normal", tags=("vertraulich",),
                   template="requester-received", rules=("krankmeldung",))),
    ({"subject": "Termin", "to": ("buergerservice@example.org",), "body": "Krankmeldung"},
     RouteDecision(queue="buerger", rules=("buergerservice",))),
    ({"subject": "Totalausfall: Server down", "received_at": SATURDAY_NIGHT},
     RouteDecision(queue="it-stoerung", team="it", assign="round_robin", priority="high",
                   tags=("grossstoerung", "ausserhalb-dienstzeit"),
                   rules=("grossstoerung", "ausserhalb-dienstzeit", "it-stoerung"))),
    ({"subject": "VOIS: Fehler beim Speichern"},
     RouteDecision(queue="fachverfahren", team="fachverfahren", assign="round_robin",
                   rules=("fachverfahren",))),
    ({"subject": "SAP-Anmeldung gesperrt"},
     RouteDecision(queue="fachverfahren", team="fachverfahren", assign="round_robin",
                   rules=("fachverfahren",))),
    ({"subject": "Heizung in Raum 3.12 ausgefallen"},
     RouteDecision(queue="haus", rules=("haustechnik",))),
    ({"subject": "Lizenzschlüssel für Software"},
     RouteDecision(queue="it-anforderung", team="it", assign="least_open",
                   rules=("it-anforderung",))),
    ({"subject": "Stoerung Telefon Zimmer 12"},
     RouteDecision(queue="it-stoerung", team="it", assign="round_robin", rules=("it-stoerung",))),
    ({"subject": "Neuer Arbeitsplatz für Frau Krämer ab 1.4."},
     RouteDecision(queue="it-anforderung", team="it", assign="least_open",
                   rules=("it-anforderung",))),
])
def test_shipped_rules_route_typical_german_mails(shipped: Ruleset, mail: dict[str, Any],
                                                  expected: RouteDecision) -> None:
    assert shipped.evaluate(facts(**mail)).decision == expected


def test_priorities_may_be_written_in_german_as_in_the_mail_commands(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, """
        - name: chef
          when: {from: chef@example.org}
          then: {priority: dringend}
          stop: false
        - name: drucker
          when: {subject: {contains: [Drucker]}}
          then: {priority: Hoch}
    """)
    assert ruleset.evaluate(facts(from_addr="chef@example.org")).decision.priority == "urgent"
    assert ruleset.evaluate(facts(subject="Drucker")).decision.priority == "high"
    write(tmp_path / "rules", "10-test.yaml", """
        - name: x
          when: {subject: {contains: [x]}}
          then: {priority: sofort}
    """)
    [error] = errors(tmp_path / "rules")
    assert error.endswith("then.priority: 'sofort' is not one of low, normal, high, urgent")
