"""Build step: the wheel carries the product's top level — templates/, rules/ and
config.example.yaml — as gateway/defaults/, so an installed postdesk has what `init --site`
copies and what rules_dir/templates_dir fall back to (gateway/packaged.py finds them).

They stay at the top of the repository, where deployers and the README expect them; a copy at
build time keeps a single source without symlinks or a second tree to keep in step. Everything
else about the build is declared in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DEFAULTS = ("templates", "rules", "config.example.yaml")  # MANIFEST.in puts them in the sdist


class BuildWithDefaults(build_py):
    """`build_py` plus the copy of the defaults into the built gateway package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout itself
            return
        target = Path(self.build_lib) / "gateway" / "defaults"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        junk = shutil.ignore_patterns(".*", "*~", "__pycache__")
        for name in DEFAULTS:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=junk)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithDefaults})
