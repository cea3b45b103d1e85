"""Outgoing mail: templates -> letters, senders, outbox delivery."""
