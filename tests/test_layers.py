"""scripts/check-layers: the house rules of DESIGN.md (no import circles, imports point down
the layer table), checked on small trees written here and on the real tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check-layers"


def check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("gateway", "storage"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_a_tree_that_follows_the_table_passes(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "gateway/errors.py": "",
        "gateway/mail/__init__.py": "",
        "gateway/mail/model.py": "from gateway.errors import *\n",
        "gateway/routing/evaluate.py": "from gateway.mail.model import ParsedMail\n",
        "gateway/pipeline/route.py": "from gateway.routing import evaluate\nimport storage.x\n",
        "gateway/app.py": "from gateway.pipeline import route\n",
        "storage/x.py": "",
    })
    done = check(root)
    assert done.returncode == 0, done.stdout
    assert "0 import circle(s)" in done.stdout


def test_an_import_up_the_table_fails_with_file_line_and_rule(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "gateway/mail/model.py": "\n\ndef f():\n    from gateway.pipeline import route\n",
        "gateway/pipeline/route.py": "",
        "storage/x.py": "from gateway import app\n",
        "gateway/app.py": "",
    })
    done = check(root)
    assert done.returncode == 1
    assert ("gateway/mail/model.py:4: gateway.mail.model -> gateway.pipeline.route (local)"
            "  [gateway.mail may not import gateway.pipeline]") in done.stdout
    assert "storage.x -> gateway.app  [storage may not import gateway]" in done.stdout
    summary = check(root, "--summary")
    assert "    1  gateway.mail may not import gateway.pipeline" in summary.stdout


def test_a_runtime_circle_fails_a_type_checking_one_is_listed(tmp_path: Path) -> None:
    typing_only = tree(tmp_path / "a", {
        "gateway/app.py": "from gateway import jobs\n",
        "gateway/jobs.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from gateway.app import App\n",
    })
    done = check(typing_only)
    # jobs -> app is also an import up the table; the circle itself is only listed
    assert "circle through TYPE_CHECKING imports only (allowed): " in done.stdout
    assert "0 import circle(s)" in done.stdout
    runtime = tree(tmp_path / "b", {
        "gateway/routing/a.py": "from . import b\n",
        "gateway/routing/b.py": "from gateway.routing.a import x\n",
    })
    done = check(runtime)
    assert done.returncode == 1
    assert "circle 1: gateway.routing.a -> gateway.routing.b -> gateway.routing.a" in done.stdout


def test_a_flat_module_outside_the_table_is_reported(tmp_path: Path) -> None:
    root = tree(tmp_path, {"gateway/compose.py": ""})
    done = check(root)
    assert done.returncode == 1
    assert "gateway.compose is outside the layer table" in done.stdout


def test_the_tree_follows_the_layer_table_without_any_circle() -> None:
    done = check(ROOT, "--strict")  # TYPE_CHECKING-only circles fail too
    assert done.returncode == 0, done.stdout
