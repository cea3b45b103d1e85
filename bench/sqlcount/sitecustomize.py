"""Count SQL statements and commits per process, for bench/e2e.py --count-sql (not loaded
otherwise: e2e puts this folder on PYTHONPATH only then). Every process of the service started
with POSTDESK_BENCH_SQLCOUNT=DIR (serve and its spawned worker and prepare processes inherit
it) writes DIR/<pid>.json every second: {"argv": ..., "statements": {"SELECT inbox": n, ...}}.
No gateway code is changed; the listener hangs on SQLAlchemy's Engine class."""

from __future__ import annotations

import os

if os.environ.get("POSTDESK_BENCH_SQLCOUNT"):
    import atexit
    import json
    import re
    import sys
    import threading
    from collections import Counter
    from pathlib import Path

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _folder = Path(os.environ["POSTDESK_BENCH_SQLCOUNT"])
    _counts: Counter[str] = Counter()
    _table = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE)\s+\"?(\w+)", re.IGNORECASE)

    def _kind(statement: str) -> str:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        table = _table.search(statement)
        return f"{verb} {table.group(1) if table else ''}".strip()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        _counts[_kind(statement) + (" (many)" if executemany else "")] += 1

    @event.listens_for(Engine, "commit")
    def _commit(conn):  # type: ignore[no-untyped-def]
        _counts["COMMIT"] += 1

    def _dump() -> None:
        path = _folder / f"{os.getpid()}.json"
        data = {"argv": " ".join(sys.argv)[:200], "statements": dict(_counts)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def _loop() -> None:
        import time

        while True:
            time.sleep(1)
            _dump()

    threading.Thread(target=_loop, daemon=True, name="sqlcount").start()
    atexit.register(_dump)
