"""Intake adapters: each one turns mail arriving from outside (SMTP, Exchange, files) into
durable inbox rows, and acknowledges the mail only after that row is committed."""
