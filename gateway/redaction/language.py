"""Language detection for redaction lives in `gateway.language` (light, also used for
templates); re-exported here for the redaction package's public surface."""

from gateway.language import Language, detect_language

__all__ = ["Language", "detect_language"]
