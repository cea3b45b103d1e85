"""Files and folders that hold personal data (database, attachments, outgoing mail, the secret)
are private to the service's user: folders 0700, files 0600.

The modes are given to mkdir/open, so the umask still applies: a stricter umask makes them
stricter, a looser one (the usual 022) cannot make them world-readable. Nothing here ever adds a
permission bit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_dirs(path: Path) -> Path:
    """Create `path` and its missing parents, each 0700; existing folders are left alone."""
    missing: list[Path] = []
    current = path
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
    return path


def create_file(path: Path) -> None:
    """Create an empty file 0600 unless it exists (SQLite then gives its -wal and -shm files
    the same mode as the database file)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def tighten(path: Path) -> tuple[int, int] | None:
    """Take group and other bits off an existing file or folder (one made before postdesk set
    modes); returns (old, new) mode if it changed anything."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return None  # a link the operator placed: its target is theirs to judge
    old = stat.S_IMODE(info.st_mode)
    new = old & (DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE)
    if new == old:
        return None
    path.chmod(new)
    return old, new
