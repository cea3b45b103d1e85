"""A deployer's site on disk: scaffold one from what the package ships (`postdesk init --site`),
and keep an existing one's data private (`postdesk init` after an upgrade)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway import packaged
from gateway.config import Settings
from gateway.errors import PostdeskError
from storage import private

SITE_HEADER = """\
# postdesk site configuration, written by `postdesk init --site`. Relative paths are relative to
# this file's folder: rules/ and templates/ beside it are this site's own copies (edit them;
# `postdesk rules check` first), var/ holds the database, the secret key, attachments and
# outgoing mail (kept private to the service's user). Adapt service, smtp, agents and teams.
"""
_JUNK = shutil.ignore_patterns(".*", "*~", "__pycache__")


def scaffold(site: Path) -> Path:
    """Write `site`/config.yaml, rules/ and templates/ from the packaged defaults and return the
    config's path. Never overwrites: if any of them exists, nothing is written."""
    config = site / "config.yaml"
    for target in (config, site / "rules", site / "templates"):
        if target.exists() or target.is_symlink():
            raise PostdeskError(
                f"{target} already exists; init --site never overwrites (move it away or "
                "choose a new folder)"
            )
    sources = (packaged.example_config(), packaged.rules_dir(), packaged.templates_dir())
    for source in sources:
        if not source.exists():
            raise PostdeskError(f"this installation lacks its packaged defaults ({source})")
    site.mkdir(parents=True, exist_ok=True)
    with config.open("x", encoding="utf-8") as handle:
        handle.write(site_config(packaged.example_config().read_text(encoding="utf-8")))
    shutil.copytree(packaged.rules_dir(), site / "rules", ignore=_JUNK)
    shutil.copytree(packaged.templates_dir(), site / "templates", ignore=_JUNK)
    return config


def site_config(example: str) -> str:
    """The example config with a header for a site instead of the repository's: its relative
    paths (rules, templates, var/) already mean 'beside this file'."""
    lines = example.splitlines(keepends=True)
    body = 0
    while body < len(lines) and lines[body].startswith("#"):
        body += 1
    return SITE_HEADER + "".join(lines[body:])


def tighten_private_paths(settings: Settings) -> list[str]:
    """Take group and other permissions off the data of a site created before postdesk set
    modes (folders 0700, files 0600); one line per path changed or left as it was."""
    data = settings.data_dir
    paths = [data, data / "blobs", data / "outgoing", data / "health", settings.secrets.key_file]
    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        suffixes = ("", "-wal", "-shm", "-journal", "-writelock", "-writelock-waiting")
        paths += [Path(url.database + suffix) for suffix in suffixes]
    lines = []
    for path in dict.fromkeys(paths):
        try:
            changed = private.tighten(path)
        except OSError as exc:
            lines.append(f"permissions of {path} not tightened: {exc.strerror}")
            continue
        if changed is not None:
            lines.append(f"permissions tightened: {path} {changed[0]:04o} -> {changed[1]:04o}")
    return lines
