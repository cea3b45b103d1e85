"""Rotating the server secret: with the previous secret listed, originals and attachments sealed
with it (and plain ones from before encryption) stay readable and the database accepts the new
secret; `postdesk secrets reseal` re-encrypts everything under the new one (resumable, and it
removes blobs an interrupted run left behind); then the previous secret can be dropped."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary, select, type_coerce

from gateway.agents import proof as agentproof
from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.errors import SecretMismatch
from gateway.mail.model import Address
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline import identify
from gateway.redaction import KeyedPseudonyms
from gateway.secrets import Keys, derive, sealer
from storage import spool
from storage.blobs import BlobStore, open_store
from storage.engine import Database, open_database
from storage.models import Article, Attachment, Blob, InboxItem, OutboxItem
from tests.helpers import make_mail, open_ticket_row, parsed_mail, stage_context, write_config
from tests.test_attachments import PDF_LINES, deliver, mail_with_attachments, pdf

OLD, NEW = "o" * 48, "n" * 48


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTDESK_SECRET_KEY", raising=False)
    monkeypatch.delenv("POSTDESK_PREVIOUS_SECRET_KEYS", raising=False)


def settings_with(make_settings: Callable[..., Settings], tmp_path: Path, store: str,
                  secret: str, previous: list[str]) -> Settings:
    (tmp_path / "secret.key").write_text(secret + "\n")
    files = []
    for number, value in enumerate(previous):
        path = tmp_path / f"previous-{number}.key"
        path.write_text(value + "\n")
        files.append(str(path))
    return make_settings(blobs={"store": store},
                         secrets={"key_file": str(tmp_path / "secret.key"),
                                  "previous_key_files": files})


def stored(app: App) -> list[bytes]:
    """Every sealed value as stored: originals (inbox, outbox) and attachment blobs."""
    with app.db.reading() as session:
        values = [bytes(v) for model in (InboxItem, OutboxItem) for v in session.scalars(
            select(type_coerce(model.raw, LargeBinary)).where(model.raw.is_not(None)))]
        if app.settings.blobs.store == "database":
            values += [bytes(v) for v in session.scalars(select(Blob.data))]
    root = app.settings.data_dir / "blobs"
    values += [path.read_bytes() for path in root.glob("??/??/*")]
    return values


def add_legacy(app: App) -> str:
    """An attachment as stored before 0007 and before encryption: plain, named by its sha256,
    its row without `blob`; and a plain original in the inbox."""
    data = b"Alte Datei ohne Verschluesselung: Frau Sommerfeld"
    plain = open_store(app.settings.blobs.store, app.settings.data_dir / "blobs", app.db)
    digest = plain.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    with app.db.session() as session:
        article_id = session.scalar(select(Attachment.article_id))
        session.add(Attachment(article_id=article_id, filename="alt.txt",
                               content_type="text/plain", size=len(data), sha256=digest))
    legacy_db = open_database(app.settings.database.url)  # no sealer: writes plain
    with legacy_db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="import", source_key="legacy", raw=b"Subject: alt\n\nklartext",
            envelope_from="x@example.net")])
    legacy_db.dispose()
    app.worker.drain()  # processed; the plain original stays stored (retention)
    return digest


@pytest.mark.parametrize("store", ["filesystem", "database"])
def test_rotate_read_with_previous_reseal_then_drop_it(
    make_settings: Callable[..., Settings], tmp_path: Path, store: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = App.build(settings_with(make_settings, tmp_path, store, OLD, []),
                       sender=RecordingSender())
    before.init_database()
    deliver(before, mail_with_attachments())
    legacy = add_legacy(before)
    before.db.dispose()

    # the new secret alone is refused: the database was set up with another
    alone = App.build(settings_with(make_settings, tmp_path, store, NEW, []))
    with pytest.raises(SecretMismatch):
        alone.init_database()
    alone.db.dispose()

    # with the previous secret listed: accepted, and everything old stays readable
    settings = settings_with(make_settings, tmp_path, store, NEW, [OLD])
    config = write_config(tmp_path / "config.yaml", settings)
    after = App.build(settings, sender=RecordingSender())
    after.init_database()
    assert main(["--config", str(config), "tickets", "original", "LDS-1", "1"]) == 0
    assert "Unterlagen" in capsys.readouterr().out
    out = tmp_path / "a.pdf"
    assert main(["--config", str(config), "tickets", "attachment", "LDS-1", "1", "-o",
                 str(out)]) == 0
    assert out.read_bytes() == pdf(PDF_LINES)
    new_only = sealer(NEW.encode())
    assert not all(new_only.current(value) for value in stored(after))

    capsys.readouterr()
    assert main(["--config", str(config), "secrets", "reseal", "--batch", "2", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["attachments resealed"] == 6 and counts["inbox resealed"] == 2
    assert counts.get("outbox resealed", 0) >= 1
    values = stored(after)
    assert values and all(new_only.current(value) for value in values)
    assert all(b"Sommerfeld" not in value for value in values)
    with after.db.reading() as session:
        rows = list(session.scalars(select(Attachment)))
        assert all(row.blob for row in rows) and legacy not in {row.address for row in rows}
    if store == "filesystem":
        assert not list((settings.data_dir / "blobs").glob(f"??/??/{legacy}"))

    # a second run finds nothing to do; a blob an interrupted run left behind is swept
    left = BlobStore(settings.data_dir / "blobs", sealer=sealer(OLD.encode()))
    if store == "database":
        left_store = open_store("database", Path(), after.db, sealer(OLD.encode()), b"k" * 32)
        left_address = left_store.put(b"left behind")
    else:
        left_address = left.put(b"left behind")
    assert main(["--config", str(config), "secrets", "reseal", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert "attachments resealed" not in again and "inbox resealed" not in again
    assert again["leftover blobs removed"] == 1
    gone = open_store(store, settings.data_dir / "blobs", after.db)
    with pytest.raises(FileNotFoundError):
        gone.get(left_address)
    after.db.dispose()

    # a follow-up on the old ticket: the person keeps the placeholder numbered under the old
    # secret (while it is listed)
    follow_up = make_mail(sender="Jens Wagner <jens.wagner@example.net>",
                          subject="Re: [LDS-1] Unterlagen",
                          body="Frau Sommerfeld hat die Unterlagen nachgereicht.\n")
    deliver(after, follow_up.as_bytes(), "2")
    with after.db.reading() as session:
        bodies = list(session.scalars(select(Article.body).where(Article.direction == "in")
                                      .order_by(Article.id)))
    assert "Frau [NAME-1] hat die Unterlagen" in bodies[-1]

    # the previous secret dropped: everything still opens with the new one alone
    settings = settings_with(make_settings, tmp_path, store, NEW, [])
    config = write_config(tmp_path / "config.yaml", settings)
    final = App.build(settings, sender=RecordingSender())
    final.init_database()
    assert Keys.load(settings).previous_fingerprints == ()
    assert main(["--config", str(config), "tickets", "original", "LDS-1", "1"]) == 0
    assert main(["--config", str(config), "tickets", "attachment", "LDS-1", "6", "-o",
                 str(out)]) == 0
    assert out.read_bytes() == b"Alte Datei ohne Verschluesselung: Frau Sommerfeld"
    final.db.dispose()


def test_previous_secrets_from_the_environment(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_with(make_settings, tmp_path, "filesystem", NEW, [])
    monkeypatch.setenv("POSTDESK_PREVIOUS_SECRET_KEYS", f"{OLD}, {'p' * 40}")
    keys = Keys.load(settings)
    assert keys.previous_fingerprints == (Keys.of(OLD.encode()).fingerprint,
                                          Keys.of(b"p" * 40).fingerprint)
    assert keys.sealer.unseal(sealer(OLD.encode()).seal(b"x")) == b"x"
    monkeypatch.setenv("POSTDESK_PREVIOUS_SECRET_KEYS", "short")
    with pytest.raises(Exception, match="at least 32 characters"):
        Keys.load(settings)


def test_pseudonyms_numbered_under_a_previous_secret_keep_their_numbers() -> None:
    old_key, new_key = derive(OLD.encode(), "pseudonyms"), derive(NEW.encode(), "pseudonyms")
    before = KeyedPseudonyms(old_key)
    assert before.number("PERSON", "Mareike Sommerfeld") == 1
    assert before.number("PERSON", "Albrecht Kowalczyk") == 2
    after = KeyedPseudonyms(new_key, before.state, previous=[old_key])
    assert after.number("PERSON", "Sommerfeld") == 1
    assert after.number("PERSON", "albrecht kowalczyk") == 2
    assert after.number("PERSON", "Jens Wagner") == 3
    assert KeyedPseudonyms(new_key, before.state).number("PERSON", "Sommerfeld") == 3


def test_an_agents_reply_to_a_notification_of_the_previous_secret_is_verified(
    db: Database, settings: Settings
) -> None:
    old_key, new_key = derive(OLD.encode(), "agent-proof"), derive(NEW.encode(), "agent-proof")
    anna = "anna.schmidt@example.org"
    to = agentproof.reply_address("servicedesk@example.org",
                                  agentproof.token(old_key, anna, "LDS-1"), "LDS-1")
    mail = parsed_mail(from_=Address("", anna), to=[Address("", to)], subject="AW: Drucker")
    for previous, role in (((old_key,), "agent"), ((), "agent-unverified")):
        with stage_context(db, settings, mail, proof_key=new_key,
                           previous_proof_keys=previous) as ctx:
            ctx.ticket = open_ticket_row(ctx, owner=anna, status="open")
            identify.run(ctx)
            assert ctx.sender_role == role
