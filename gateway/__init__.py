"""postdesk: an email-gateway ticketing service (see DESIGN.md)."""

__version__ = "0.1.0"
