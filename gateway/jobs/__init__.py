"""The scheduler and the timed jobs (outbox, mailbox polls, reminders, retention)."""
