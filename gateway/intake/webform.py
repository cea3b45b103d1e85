"""A requester's "Nachricht ergänzen" on the status page (gateway.web) becomes an inbox row like
a mail: the page builds an RFC 5322 message from the requester to the central address, and it
is stored here byte-exact through `storage.spool.add_inbox_items`, as SMTP and file intake do,
so the pipeline threads, redacts and records it exactly as a mail (source "web")."""

from __future__ import annotations

import hashlib

from gateway import logs
from gateway.intake.conversation import keyed
from storage.engine import Database
from storage.spool import NewInboxItem, add_inbox_items, message_hash

SOURCE = "web"


def store_message(db: Database, raw: bytes, *, sender: str, recipient: str) -> int:
    """Commit `raw` as an inbox row (source "web"); its id comes back."""
    item = NewInboxItem(source=SOURCE, source_key=hashlib.sha256(raw).hexdigest(), raw=raw,
                        envelope_from=sender, envelope_to=(recipient,))
    with db.session() as session:
        [row_id] = add_inbox_items(session, keyed(db, [item]))
    logs.event("intake.stored", source=SOURCE, inbox=row_id, msg=message_hash(raw))
    return row_id
