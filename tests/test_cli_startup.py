"""The CLI starts fast because heavy libraries are imported only by the commands that use
them. Timing belongs in bench/startup.py; this test guards the cause: which modules a plain
`import gateway.cli` (what every command pays) brings in."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("presidio_analyzer", "spacy", "exchangelib", "msal", "aiosmtpd", "httpx", "apscheduler")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_importing_the_cli_brings_in_no_heavy_library() -> None:
    loaded = _modules_after("import gateway.cli")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
    assert "sqlalchemy" not in loaded  # --help and usage errors need no database


def test_the_pipeline_context_does_not_import_the_stages() -> None:
    """`tickets assign` builds an agent mail from the pipeline's Context type only."""
    loaded = _modules_after("import gateway.pipeline.context")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
    assert "gateway.pipeline.redact" not in loaded
