"""Values every instance on one database must agree on (the server secret's fingerprint):
the first instance stores its value, the others compare theirs with it."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from storage.models import ClusterFact, utcnow
from storage.spool import insert_unless_present

_FACTS = cast(Table, ClusterFact.__table__)


def agree(session: Session, name: str, value: str) -> str:
    """The value stored under `name`: `value` if none was stored yet (then stored now; two
    instances starting at once store one of theirs, and both read that one back)."""
    statement = insert_unless_present(session.get_bind().dialect.name, _FACTS)
    session.execute(statement, {"name": name, "value": value, "created_at": utcnow()})
    return str(session.execute(select(_FACTS.c.value).where(_FACTS.c.name == name)).scalar_one())


def replace(session: Session, name: str, value: str) -> None:
    """Store `value` under `name` whatever was stored (a deliberate change of the secret)."""
    session.execute(delete(_FACTS).where(_FACTS.c.name == name))
    agree(session, name, value)
