"""Where the defaults that ship with postdesk are: mail templates, example rules and the example
config. They are kept at the top of the repository (the product's face for a deployer); a
wheel carries copies in `gateway/defaults/` (setup.py puts them there at build time). A source
checkout or an editable install has no such copy and reads the repository's top level."""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "defaults"
CHECKOUT = Path(__file__).resolve().parent.parent


def root() -> Path:
    """The folder holding templates/, rules/ and config.example.yaml."""
    if PACKAGED.is_dir() or not (CHECKOUT / "pyproject.toml").is_file():
        return PACKAGED  # an installed package (if it is missing, errors name this path)
    return CHECKOUT


def templates_dir() -> Path:
    return root() / "templates"


def rules_dir() -> Path:
    return root() / "rules"


def example_config() -> Path:
    return root() / "config.example.yaml"
