"""`postdesk import PATH…`: mail saved as files becomes inbox rows, like mail that came by SMTP.

Authorities move to postdesk with years of mail in exports: single `.eml` files, `.mbox` files,
maildir folders, or folders full of them. This module reads them with the stdlib `mailbox`
module and stores every message byte-exact through `storage.spool.add_inbox_items`.

- Idempotent: the inbox key is the SHA-256 of the raw bytes, so importing the same export twice
  stores each message once (`already_present` counts the rest).
- Fast and safe: rows are committed in batches; if a batch fails, its messages are retried one by
  one, so one bad message costs only itself, and every message not stored is named in the report
  by file and position. Re-running an import after a failure is always harmless.
- Never crashes on bad input: missing paths, unreadable files, non-mail files and Outlook `.msg`
  files (no permissively licensed reader exists; extract-msg is GPL-3.0) become one line each in
  `ImportReport.errors`, and the rest is imported.

mbox quoting: a writer turns body lines starting with `From ` into `>From ` (the stdlib does this
too) and mboxrd writers add one more `>` to lines already quoted. The stdlib reader undoes
neither, so this module removes one `>` from every line matching `>+From ` (the mboxrd rule),
which restores what the sender sent for both kinds of writer.

In directories, `.eml`, `.mbox` and `.msg` files are taken by name, maildirs by their `cur/` and
`new/` folders, and files without any suffix only if they start with `From ` (Thunderbird
folders, Apple Mail `X.mbox/mbox`); anything else (README, LICENSE, …) is skipped.
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway import logs
from gateway.intake.conversation import keyed
from storage.engine import Database
from storage.models import InboxItem
from storage.spool import NewInboxItem, add_inbox_items

SOURCE = "import"
BATCH_SIZE = 200
SNIFF_BYTES = 16_384

_KNOWN_SUFFIXES = (".eml", ".mbox", ".msg")
_MBOX_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_HEADER_FIELD = re.compile(rb"^[!-9;-~]+[ \t]*:", re.MULTILINE)  # RFC 5322 field name + colon
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # ESC stays: ISO-2022-JP
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg is an OLE compound file
_MSG_UNSUPPORTED = (
    "Outlook .msg files are not supported (no permissively licensed reader); "
    "save the mail as .eml instead"
)


@dataclass
class ImportReport:
    """What an import did: messages newly stored, messages already stored, one line per problem."""

    added: int = 0
    already_present: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Message:
    where: str  # file, or "file: message N" inside an mbox or maildir
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Failure:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


_Item = _Message | _Failure
_Namer = Callable[[str, int], str]  # (mailbox key, 1-based number) -> position in a report


class _Aborted(Exception):
    """The database refused a whole batch even message by message: stop the import."""


def import_paths(
    db: Database, paths: Sequence[Path | str], *, batch_size: int = BATCH_SIZE
) -> ImportReport:
    """Store every message found under `paths` as an inbox row (source "import")."""
    report = ImportReport()
    batch = _Batch(db, report, batch_size)
    try:
        for path in paths:
            for item in _read_path(Path(path)):
                if isinstance(item, _Failure):
                    report.errors.append(str(item))
                else:
                    batch.add(item)
        batch.flush()
    except _Aborted as stop:
        report.errors.append(str(stop))
    logs.event(
        "import.done",
        added=report.added,
        already_present=report.already_present,
        errors=len(report.errors),
    )
    return report


# --- storing ------------------------------------------------------------------------------


def _key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class _Batch:
    """Collects messages and commits them `size` at a time."""

    def __init__(self, db: Database, report: ImportReport, size: int) -> None:
        self.db = db
        self.report = report
        self.size = max(1, size)
        self.pending: list[_Message] = []

    def add(self, message: _Message) -> None:
        self.pending.append(message)
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            added, present = self._store(batch)
        except SQLAlchemyError:
            self._store_one_by_one(batch)
            return
        self.report.added += added
        self.report.already_present += present
        logs.event("import.batch", added=added, already_present=present)

    def _store(self, batch: Sequence[_Message]) -> tuple[int, int]:
        """One transaction; returns (added, already present)."""
        with self.db.session() as session:
            seen = _stored_keys(session, [_key(m.raw) for m in batch])
            new: list[NewInboxItem] = []
            for message in batch:
                key = _key(message.raw)
                if key not in seen:
                    seen.add(key)
                    new.append(NewInboxItem(source=SOURCE, source_key=key, raw=message.raw))
            add_inbox_items(session, keyed(self.db, new))
        return len(new), len(batch) - len(new)

    def _store_one_by_one(self, batch: Sequence[_Message]) -> None:
        stored = 0
        for message in batch:
            try:
                added, present = self._store([message])
            except SQLAlchemyError as exc:
                self.report.errors.append(f"{message.where}: not stored ({_db_reason(exc)})")
                continue
            stored += 1
            self.report.added += added
            self.report.already_present += present
        logs.event("import.batch_retried", stored=stored, failed=len(batch) - stored)
        if stored == 0:
            raise _Aborted(
                f"import stopped after {batch[-1].where}: the database stores nothing; "
                "messages from there on were not imported (importing again is safe)"
            )


def _stored_keys(session: Session, keys: Sequence[str]) -> set[str]:
    query = select(InboxItem.source_key).where(
        InboxItem.source == SOURCE, InboxItem.source_key.in_(set(keys))
    )
    return set(session.scalars(query))


def _db_reason(exc: BaseException) -> str:
    """The driver's own message: SQLAlchemy's str() would include the parameters (mail bytes).

    Looks through the exception context too: the spool reads a refused insert as a concurrent
    duplicate and then fails with NoResultFound, which hides the real cause."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DBAPIError) and cause.orig is not None:
            name = type(cause.orig).__name__
            first_line = (str(cause.orig).strip().splitlines() or [""])[0]
            return f"{name}: {first_line}" if first_line else name
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


# --- reading ------------------------------------------------------------------------------


def _read_path(path: Path) -> Iterator[_Item]:
    """Everything one command-line argument names."""
    if path.is_dir():
        yield from _read_tree(path)
    elif path.is_file():
        yield from _read_file(path, by_name_only=False)
    elif path.is_symlink() and not path.exists():
        yield _Failure(str(path), "broken symbolic link")
    elif path.exists():
        yield _Failure(str(path), "not a regular file or directory")
    else:
        yield _Failure(str(path), "no such file or directory")


def _read_tree(root: Path) -> Iterator[_Item]:
    """Every .eml, .mbox, .msg, suffix-less mbox and maildir below `root`, in name order."""
    walk_errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_errors.append):
        yield from _walk_failures(walk_errors, root)
        folder = Path(dirpath)
        dirnames.sort()
        if _is_maildir(folder):
            yield from _read_maildir(folder)
            dirnames[:] = [d for d in dirnames if d not in ("cur", "new", "tmp")]
        for name in sorted(filenames):
            path = folder / name
            if path.is_file():  # never open a FIFO or device: reading it could block forever
                yield from _read_file(path, by_name_only=True)
            elif path.suffix.lower() in _KNOWN_SUFFIXES:
                yield _Failure(str(path), "not a regular file (broken link, FIFO or device)")
    yield from _walk_failures(walk_errors, root)


def _walk_failures(errors: list[OSError], root: Path) -> Iterator[_Failure]:
    """Folders os.walk could not list (it reports them through a callback)."""
    while errors:
        error = errors.pop(0)
        yield _Failure(str(error.filename or root), _os_reason(error))


def _read_file(path: Path, *, by_name_only: bool) -> Iterator[_Item]:
    """One file. Inside a tree only known kinds are read; a named file is sniffed if need be."""
    suffix = path.suffix.lower()
    if suffix == ".msg":
        yield _Failure(str(path), _MSG_UNSUPPORTED)
    elif suffix == ".mbox":
        yield from _read_mbox(path)
    elif suffix == ".eml":
        yield from _read_eml(path)
    elif by_name_only and suffix:
        return
    else:
        try:
            with path.open("rb") as file:
                starts_as_mbox = file.read(5) == b"From "
        except OSError as exc:
            yield _Failure(str(path), _os_reason(exc))
            return
        if starts_as_mbox:
            yield from _read_mbox(path)
        elif not by_name_only:
            yield from _read_eml(path)


def _read_eml(path: Path) -> Iterator[_Item]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield _Failure(str(path), _os_reason(exc))
        return
    problem = _not_mail(raw)
    yield _Failure(str(path), problem) if problem else _Message(str(path), raw)


def _read_mbox(path: Path) -> Iterator[_Item]:
    try:
        with path.open("rb") as file:
            start = file.read(SNIFF_BYTES).lstrip(b"\r\n")
    except OSError as exc:
        yield _Failure(str(path), _os_reason(exc))
        return
    if start and not start.startswith(b"From "):
        yield _Failure(str(path), "not an mbox file (it does not start with a 'From ' line)")
        return
    try:
        box = mailbox.mbox(path, factory=None, create=False)
    except (OSError, mailbox.Error) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
        yield _Failure(str(path), reason)
        return
    try:
        yield from _read_box(box, str(path), lambda key, number: f"message {number}")
    finally:
        box.close()


def _read_maildir(folder: Path) -> Iterator[_Item]:
    box = mailbox.Maildir(folder, factory=None, create=False)
    yield from _read_box(box, str(folder), lambda key, number: f"message {key}")


def _read_box(box: mailbox.Mailbox[mailbox.Message], where: str, name: _Namer) -> Iterator[_Item]:
    """Each message of an mbox or maildir; a read error ends that mailbox with one failure."""
    number = 0
    try:
        keys = sorted(box.keys())
        for number, key in enumerate(keys, start=1):
            label = f"{where}: {name(key, number)}"
            with box.get_file(key) as file:  # the file as stored, no newline conversion
                raw = file.read()
            if isinstance(box, mailbox.mbox):
                raw = _unquote_mbox(raw)
            problem = _not_mail(raw)
            yield _Failure(label, problem) if problem else _Message(label, raw)
    except (OSError, mailbox.Error, KeyError) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
        yield _Failure(where, f"reading stopped at message {max(number, 1)}: {reason}")


def _unquote_mbox(raw: bytes) -> bytes:
    """Undo mbox `From ` quoting (mboxrd rule) and drop the blank line that separates messages.

    The stdlib already drops a LF separator; a CRLF mbox keeps "\\r\\n" as its blank line."""
    raw = _MBOX_QUOTED_FROM.sub(rb"\1", raw)
    return raw[:-2] if raw.endswith(b"\r\n\r\n") else raw


def _is_maildir(folder: Path) -> bool:
    return (folder / "cur").is_dir() and (folder / "new").is_dir()


def _not_mail(raw: bytes) -> str | None:
    """Why `raw` is not a mail, or None. Lenient: anything with a header line is taken."""
    if not raw.strip():
        return "empty, no mail in it"
    if raw.startswith(_OLE_MAGIC):
        return _MSG_UNSUPPORTED
    head = raw[:SNIFF_BYTES]
    if raw.startswith(b"From "):  # an mbox-style envelope line before the headers
        head = head.partition(b"\n")[2]
    end = _HEADER_END.search(head)
    header = head[: end.start()] if end else head
    if _CONTROL_BYTES.search(header):
        return "not a mail (binary data)"
    if not _HEADER_FIELD.search(header):
        return "not a mail (no header lines)"
    return None


def _os_reason(exc: OSError) -> str:
    return f"cannot read ({exc.strerror or type(exc).__name__})"
