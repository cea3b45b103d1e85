"""A ticket's life after it was recorded: business calendars, SLA clocks with reminders and
escalation, auto-close, deletion periods and data-subject requests. Policies per queue come
from `rules/lifecycle/queues.yaml` (policy.py); the timed parts run as jobs (gateway.jobs)."""
