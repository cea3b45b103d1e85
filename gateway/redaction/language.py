"""Language detection for redaction lives in `gateway.mail.language` (light, also used for
templates); re-exported here for the redaction package's public surface."""

from gateway.mail.language import Language, detect_language

__all__ = ["Language", "detect_language"]
