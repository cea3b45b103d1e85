"""`postdesk init --site DIR` scaffolds a working site from what the package ships, and the
rules/templates folders fall back to the packaged defaults when the config does not name them
(defect 2)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway import packaged
from gateway.cli import main
from gateway.config import load_settings, settings_from_dict
from gateway.errors import ConfigError
from tests.helpers import ROOT


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_packaged_defaults_are_the_checkout_top_level_in_a_source_tree() -> None:
    assert packaged.templates_dir() == ROOT / "templates"
    assert packaged.rules_dir() == ROOT / "rules"
    assert packaged.example_config() == ROOT / "config.example.yaml"


def test_packaged_defaults_prefer_the_copy_inside_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = tmp_path / "gateway" / "defaults"
    (inside / "templates").mkdir(parents=True)
    monkeypatch.setattr(packaged, "PACKAGED", inside)
    assert packaged.templates_dir() == inside / "templates"


def test_rules_and_templates_fall_back_to_the_packaged_defaults(tmp_path: Path) -> None:
    settings = settings_from_dict({}, base=tmp_path)
    assert settings.rules_dir == packaged.rules_dir()
    assert settings.templates_dir == packaged.templates_dir()
    assert (settings.templates_dir / "de" / "requester-received.txt.j2").is_file()


@pytest.mark.parametrize("key", ["rules_dir", "templates_dir"])
def test_a_configured_folder_that_is_missing_is_an_error(tmp_path: Path, key: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"{key}: nowhere\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert f"{key}: " in str(error.value)
    assert f"folder not found: {tmp_path / 'nowhere'}" in str(error.value)


def test_init_site_scaffolds_a_working_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTDESK_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # relative paths in the site's config must not depend on cwd
    site = tmp_path / "site"
    code, out, err = run(capsys, "init", "--site", str(site))
    assert code == 0, err
    assert f"postdesk --config {site / 'config.yaml'} serve" in out
    config = site / "config.yaml"
    assert config.read_text().startswith("# postdesk site configuration")
    assert sorted(p.name for p in (site / "rules").iterdir()) == sorted(
        p.name for p in (ROOT / "rules").iterdir()
    )
    assert (site / "templates" / "de" / "requester-received.txt.j2").is_file()
    assert (site / "templates" / "_layout.txt.j2").is_file()
    key = site / "var" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (site / "var" / "postdesk.db").is_file()

    settings = load_settings(config)
    assert settings.rules_dir == site / "rules"
    assert settings.templates_dir == site / "templates"
    assert settings.data_dir == site / "var"
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, "--config", str(config), "rules", "check")
    assert code == 0, err
    code, out, err = run(capsys, "--config", str(config), "tickets", "list", "--json")
    assert (code, out.strip()) == (0, "[]")


def test_init_site_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTDESK_SECRET_KEY", raising=False)
    site = tmp_path / "site"
    (site / "rules").mkdir(parents=True)
    (site / "rules" / "mine.yaml").write_text("# the deployer's\n")
    code, _out, err = run(capsys, "init", "--site", str(site))
    assert code == 1
    assert err.count("\n") == 1
    assert f"{site / 'rules'} already exists" in err
    assert sorted(p.name for p in site.iterdir()) == ["rules"]  # nothing else written
    assert (site / "rules" / "mine.yaml").read_text() == "# the deployer's\n"


def test_init_without_a_config_points_at_init_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSTDESK_CONFIG", raising=False)
    code, _out, err = run(capsys, "init")
    assert code == 1
    assert "config file not found: config.yaml" in err
    assert "postdesk init --site DIR" in err
