"""The ticket vocabulary agents and admins write in German or English: status and priority
words, compared in a folded form (case, spacing, umlauts typed as `ue`, accents). Shared by the
agents' #commands, the routing rules' `priority:` and the CLI: all three accept the same words."""

from __future__ import annotations

import unicodedata

STATUS = {
    "erledigt": "resolved", "close": "resolved", "resolve": "resolved",
    "warten": "pending", "wartet": "pending", "pending": "pending",
    "offen": "open", "open": "open",
}  # fmt: skip
PRIORITIES = {
    "niedrig": "low", "low": "low",
    "normal": "normal", "mittel": "normal", "medium": "normal",
    "hoch": "high", "high": "high",
    "dringend": "urgent", "urgent": "urgent",
}  # fmt: skip
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def status_word(text: str) -> str | None:
    """The status a word names ('erledigt', 'Offen', 'pending'), else None."""
    return STATUS.get(fold(text))


def priority_word(text: str) -> str | None:
    """The priority a word names ('hoch', 'Dringend', 'high'), else None."""
    return PRIORITIES.get(fold(text))


def fold(text: str) -> str:
    """Folded form for comparing words and names: case, spacing, umlauts (ü = ue), accents."""
    composed = unicodedata.normalize("NFC", " ".join(text.split()))
    folded = composed.casefold().translate(_UMLAUTS)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(char for char in decomposed if not unicodedata.combining(char))
