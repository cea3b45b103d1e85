"""Create or upgrade the schema with Alembic (`postdesk init`, and every `serve` at start),
shipped inside the package.

On PostgreSQL the upgrade runs under a transaction-level advisory lock: instances started at
once on one database take turns, and the second finds the schema at head (the lock ends with
the upgrade's transaction, so a crashed instance never leaves it held). SQLite needs none: its
write transaction (BEGIN IMMEDIATE) serialises the upgrade already."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from storage.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK = 0x706F_7374_6465_736B  # "postdesk": the advisory lock key of the upgrade


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.engine.url.render_as_string(hide_password=False))
    return config


def upgrade(db: Database) -> None:
    """Bring the database to the newest schema; safe to run on every start."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        config = alembic_config(db)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
