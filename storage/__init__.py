"""Persistence for postdesk: engine, models, durable inbox/outbox queues, ticket queries, blobs."""

from storage.engine import Database, open_database

__all__ = ["Database", "open_database"]
