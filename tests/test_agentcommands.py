"""Agent #commands: parsing the block at the top of a reply, and checking its arguments."""

from __future__ import annotations

import pytest

from gateway.agents.commands import (
    Command,
    CommandError,
    CommandValueError,
    misplaced_commands,
    parse_commands,
    resolve_agent,
    resolve_queue,
    validate,
)

ANNA = "anna.schmidt@example.org"
AGENTS = [
    (ANNA, "Anna Schmidt"),
    ("ben.mueller@example.org", "Ben Müller"),
    ("anna.weber@example.org", "Anna Weber"),
    ("chris.meier@example.org", "Chris Meier"),
]
QUEUES = ["it", "Fachverfahren", "poststelle"]


def _kinds(text: str) -> list[tuple[str, str | None]]:
    block = parse_commands(text)
    assert block.errors == []
    return [(c.kind, c.value) for c in block.commands]


def _codes(text: str, **kwargs: object) -> list[tuple[int, str]]:
    block = parse_commands(text)
    args: dict[str, object] = {"agents": AGENTS, "acting_agent": ANNA, "queues": QUEUES}
    args.update(kwargs)
    return [(e.line_no, e.code) for e in validate(block, **args)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("#erledigt", "resolved"), ("#close", "resolved"), ("#resolve", "resolved"),
        ("#warten", "pending"), ("#pending", "pending"),
        ("#offen", "open"), ("#open", "open"),
        ("#ERLEDIGT", "resolved"), ("# erledigt", "resolved"), ("  #Erledigt.  ", "resolved"),
        ("#erledigt!", "resolved"), ("\ufeff#erledigt\u200b", "resolved"),
    ],
)  # fmt: skip
def test_status_words_in_both_languages(line: str, status: str) -> None:
    assert _kinds(line + "\nDanke für Ihre Geduld.") == [("status", status)]


@pytest.mark.parametrize(
    "line",
    ["#übernehmen", "#Übernehmen", "#uebernehmen", "#take", "#zuweisen me", "#assign mich",
     "#zuweisen ich", "#u\u0308bernehmen"],
)  # fmt: skip
def test_take_and_assign_me(line: str) -> None:
    assert _kinds(line) == [("assign", "me")]


@pytest.mark.parametrize(
    ("line", "priority"),
    [
        ("#priorität niedrig", "low"), ("#prioritaet normal", "normal"), ("#prio hoch", "high"),
        ("#priorität dringend", "urgent"), ("#priority low", "low"), ("#priority URGENT", "urgent"),
        ("#Priorität: Hoch", "high"), ("#priority=high", "high"), ("#prio mittel", "normal"),
    ],
)  # fmt: skip
def test_priority_words(line: str, priority: str) -> None:
    assert _kinds(line) == [("priority", priority)]


def test_a_full_block_with_blank_lines_is_removed_from_the_text() -> None:
    text = (
        "\n#erledigt\n\n#priorität hoch\r\n#zuweisen Ben Müller\n#queue Fachverfahren\n"
        "#tag vpn, drucker-3 #homeoffice\n\nGuten Tag Frau Muster,\n\nder Zugang geht wieder.\n"
        "#erledigt steht hier als Text.\n"
    )
    block = parse_commands(text)
    assert block.errors == []
    assert [(c.kind, c.value, c.line_no) for c in block.commands] == [
        ("status", "resolved", 2),
        ("priority", "high", 4),
        ("assign", "Ben Müller", 5),
        ("queue", "Fachverfahren", 6),
        ("tag", "vpn", 7),
        ("tag", "drucker-3", 7),
        ("tag", "homeoffice", 7),
    ]
    assert block.remaining_text == (
        "Guten Tag Frau Muster,\n\nder Zugang geht wieder.\n#erledigt steht hier als Text.\n"
    )
    assert not block.internal


def test_text_without_commands_is_returned_unchanged() -> None:
    text = "Hallo,\n#erledigt\nkommt zu spät und ist Text.\n"
    block = parse_commands(text)
    assert (block.commands, block.errors, block.remaining_text) == ([], [], text)


def test_only_commands_leave_no_text() -> None:
    block = parse_commands("#warten\n\n")
    assert block.remaining_text == ""
    assert [c.kind for c in block.commands] == ["status"]


def test_intern_marks_the_whole_mail_as_a_note() -> None:
    block = parse_commands("#intern\n#warten\nRückfrage beim Hersteller läuft.")
    assert block.internal
    assert block.remaining_text == "Rückfrage beim Hersteller läuft."
    assert parse_commands("#note").internal


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        ("#erledgt", "unknown-command", "did you mean #erledigt"),
        ("#Prioritat hoch", "unknown-command", "#Prioritat"),
        ("#", "unknown-command", "'#'"),
        ("#1 erledigt", "unknown-command", "'#1'"),
        ("#priorität sehr hoch", "bad-priority", "sehr hoch"),
        ("#priority", "missing-argument", "needs an argument"),
        ("#zuweisen", "missing-argument", "needs an argument"),
        ("#erledigt sofort", "unexpected-argument", "takes no argument"),
        ("#take Ben", "unexpected-argument", "takes no argument"),
        ("#queue IT Support", "bad-name", "IT Support"),
        ("#tag a/b", "bad-name", "a/b"),
    ],
)  # fmt: skip
def test_bad_lines_are_errors_naming_the_line(line: str, code: str, words: str) -> None:
    block = parse_commands(f"#erledigt\n{line}\nText für den Antragsteller.")
    assert [(e.line_no, e.line, e.code) for e in block.errors] == [(2, line.strip(), code)]
    assert words in block.errors[0].message
    # the bad line belongs to the block: it is never left in the text for the requester
    assert block.remaining_text == "Text für den Antragsteller."


def test_contradicting_commands_are_an_error() -> None:
    block = parse_commands("#erledigt\n#warten\n#prio hoch\n#priority high\n#take\n#zuweisen me")
    assert [(e.line_no, e.code) for e in block.errors] == [(2, "conflict")]
    assert "line 1" in block.errors[0].message


# --- validate -------------------------------------------------------------------------------


def test_validate_accepts_known_agents_and_queues() -> None:
    text = "#zuweisen ben.mueller@example.org\n#queue it\n#take"
    assert _codes(text) == [(3, "conflict")]  # two owners named differently
    for name in ("Ben Müller", "ben mueller", "BEN", "ben.mueller", "Chris", "anna schmidt"):
        assert _codes(f"#zuweisen {name}\n#queue FACHVERFAHREN") == [], name


def test_validate_reports_unknown_and_ambiguous_agents() -> None:
    assert _codes("#zuweisen Dora") == [(1, "unknown-agent")]
    assert _codes("#zuweisen dora@example.org") == [(1, "unknown-agent")]
    assert _codes("#zuweisen Anna") == [(1, "ambiguous-agent")]


def test_validate_reports_unknown_queue_only_when_queues_are_known() -> None:
    assert _codes("#queue kantine") == [(1, "unknown-queue")]
    assert _codes("#queue kantine", queues=None) == []


def test_validate_returns_syntax_and_argument_errors_in_line_order() -> None:
    text = "#zuweisen Dora\n#priorität sehr hoch\n#erledgt\nText"
    errors = validate(parse_commands(text), agents=AGENTS, acting_agent=ANNA, queues=QUEUES)
    assert [(e.line_no, e.code) for e in errors] == [
        (1, "unknown-agent"),
        (2, "bad-priority"),
        (3, "unknown-command"),
    ]
    assert all(isinstance(e, CommandError) and e.line for e in errors)


def test_resolvers_give_the_canonical_values() -> None:
    assert resolve_agent("me", agents=AGENTS, acting_agent=" Anna.Schmidt@Example.org") == ANNA
    assert resolve_agent("Ben", agents=AGENTS, acting_agent=ANNA) == "ben.mueller@example.org"
    assert resolve_queue("fachverfahren", QUEUES) == "Fachverfahren"
    with pytest.raises(CommandValueError) as info:
        resolve_agent("Anna", agents=AGENTS, acting_agent=ANNA)
    assert info.value.code == "ambiguous-agent"


def test_misplaced_commands_are_found_below_the_top() -> None:
    text = "Hallo Herr Muster,\n\n#erledigt\nich schließe das Ticket. #1 ist\n#zuweisen\n"
    assert [(e.line_no, e.code) for e in misplaced_commands(text)] == [(3, "misplaced")]


def test_commands_are_plain_data() -> None:
    command = parse_commands("#tag vpn").commands[0]
    assert command == Command("tag", "vpn", 1, "#tag vpn")


# --- #original ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("#original", None), ("#Original", None), ("# original.", None), ("#original 3", "3"),
     ("#original: 12", "12"), ("#original 03.", "3")],
)  # fmt: skip
def test_original_takes_an_optional_article_number(text: str, value: str | None) -> None:
    assert _kinds(text + "\nDanke.") == [("original", value)]


@pytest.mark.parametrize("arg", ["x", "0", "-1", "1 2", "²", "1000000"])
def test_original_with_anything_but_an_article_number_is_an_error(arg: str) -> None:
    block = parse_commands(f"#original {arg}\n")
    assert [(e.line_no, e.code) for e in block.errors] == [(1, "bad-article")]
    assert block.commands == []


def test_original_goes_with_other_commands_but_not_with_another_article() -> None:
    assert _kinds("#erledigt\n#original 2\n#intern\n") == [
        ("status", "resolved"), ("original", "2"), ("note", None)]
    assert _codes("#original 1\n#original 2\n") == [(2, "conflict")]
    assert _kinds("#original 2\n#original 2\n") == [("original", "2"), ("original", "2")]
