"""Personal-data redaction for postdesk: Presidio, offline, German and English.

    redactor = Redactor(entities=DEFAULT_ENTITIES)          # once per process (slow part)
    result = redactor.redact(text, language=detect_language(text),
                             known_names=["Schmidt, Anna-Lena (BA Mitte)"],
                             pseudonyms=KeyedPseudonyms(key, state_of_this_ticket))
    result.text    # "Guten Tag Frau [NAME-1], … geb. [GEBURTSDATUM] …"
    result.counts  # {"PERSON": 2, "DATE_OF_BIRTH": 1}

Nothing here touches the network, the database or the logs; the pipeline stage does."""

from gateway.redaction.engine import (
    ALL_ENTITIES,
    DEFAULT_ENTITIES,
    Analysis,
    Finding,
    Redaction,
    Redactor,
    apply_analysis,
    part_of,
)
from gateway.redaction.language import Language, detect_language
from gateway.redaction.names import PersonName, parse_display_name
from gateway.redaction.placeholders import PLACEHOLDERS, KeyedPseudonyms, Pseudonyms, placeholder

__all__ = [
    "ALL_ENTITIES",
    "DEFAULT_ENTITIES",
    "PLACEHOLDERS",
    "Analysis",
    "Finding",
    "KeyedPseudonyms",
    "Language",
    "PersonName",
    "Pseudonyms",
    "Redaction",
    "Redactor",
    "apply_analysis",
    "detect_language",
    "parse_display_name",
    "part_of",
    "placeholder",
]
