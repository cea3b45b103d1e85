"""Persistence for postdesk: engine, models, durable inbox/outbox queues, ticket queries, blobs.

The package imports nothing itself, so a light submodule (`storage.states`) can be imported
without SQLAlchemy; use `storage.engine.Database` / `open_database`.
"""
