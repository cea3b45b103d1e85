"""CLI start-up benchmark: build a small initialised SQLite site in a temp folder (the example
config, one imported mail = ticket LDS-1), then run each command N times through the venv's
`postdesk` and print the median (and min/max) wall time. Read commands should stay <= 0.3 s
on the 2-core machine. Not a test; it only prints.

    .venv/bin/python bench/startup.py [--runs 7] [--only "tickets list"]
    .venv/bin/python bench/startup.py --postdesk /tmp/old/postdesk --postdesk .venv/bin/postdesk

With several `--postdesk` executables (say, an older checkout's), their runs alternate, so a
machine busy with other work slows them alike and the comparison stays fair.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
POSTDESK = Path(sys.executable).parent / "postdesk"

# (label, arguments after `postdesk --config CONFIG`); {mail} is the sample .eml.
COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("tickets list", ["tickets", "list"]),
    ("tickets show", ["tickets", "show", "LDS-1"]),
    ("status", ["status"]),
    ("inbox list", ["inbox", "list"]),
    ("outbox list", ["outbox", "list"]),
    ("rules test", ["rules", "test", "{mail}"]),
    ("tickets assign", ["tickets", "assign", "LDS-1", "anna.schmidt@example.org"]),
    ("tickets status", ["tickets", "status", "LDS-1", "open"]),
]


def make_site(folder: Path) -> tuple[Path, Path]:
    """The example config with its paths pointed into `folder`, initialised, one ticket."""
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    config["database"]["url"] = f"sqlite:///{folder / 'postdesk.db'}"
    config["data_dir"] = str(folder / "var")
    config["secrets"]["key_file"] = str(folder / "secret.key")
    config["rules_dir"] = str(ROOT / "rules")
    config["templates_dir"] = str(ROOT / "templates")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    mail = EmailMessage()
    mail["From"] = "Erika Muster <erika.muster@example.net>"
    mail["To"] = "servicedesk@example.org"
    mail["Subject"] = "Drucker im 3. OG defekt"
    mail["Message-ID"] = "<bench-startup-1@example.net>"
    mail.set_content("Guten Tag,\nder Drucker im 3. OG druckt nicht mehr.\nViele Grüße\n")
    eml = folder / "one.eml"
    eml.write_bytes(mail.as_bytes())
    for args in (["init"], ["import", str(eml)]):
        subprocess.run([str(POSTDESK), "--config", str(path), *args], check=True,
                       capture_output=True, env=_env())
    return path, eml


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POSTDESK_SECRET_KEY"}
    env.pop("POSTDESK_CONFIG", None)
    return env


def time_commands(
    programs: list[Path], config: Path, args: list[str], runs: int
) -> list[list[float]]:
    """Wall times per program, the programs' runs interleaved."""
    times: list[list[float]] = [[] for _ in programs]
    for _ in range(runs):
        for program, measured in zip(programs, times, strict=True):
            argv = [str(program), "--config", str(config), *args]
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, env=_env())
            measured.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{shlex.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", action="append", help="Label of a command to time (repeatable)")
    parser.add_argument("--postdesk", action="append", type=Path,
                        help=f"Executable to time (repeatable; default {POSTDESK})")
    options = parser.parse_args()
    programs: list[Path] = options.postdesk or [POSTDESK]
    for program in programs:
        if not program.exists():
            raise SystemExit(f"{program} not found: run `make venv` first")
    folder = Path(tempfile.mkdtemp(prefix="postdesk-startup-"))
    try:
        config, eml = make_site(folder)
        for number, program in enumerate(programs, 1):
            print(f"[{number}] {program}")
        print(f"{'command':<16}" + "".join(f" {f'[{n}] median':>11} {'min':>7}"
                                         for n in range(1, len(programs) + 1))
              + f"   ({options.runs} runs)")
        for label, args in COMMANDS:
            if options.only and label not in options.only:
                continue
            argv = [a.replace("{mail}", str(eml)) for a in args]
            times = time_commands(programs, config, argv, options.runs)
            print(f"{label:<16}" + "".join(f" {statistics.median(t):>10.3f}s {min(t):>6.3f}s"
                                             for t in times), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
