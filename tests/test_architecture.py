"""The house rules, checked by the tools that own them: import-linter for the dependency
contracts in pyproject.toml (layers <- builder <- trainers, builder's floors, no backend in the
spec language, no import cycles) and ruff for style and the banned private APIs."""

import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.backend_free


def test_import_contracts_are_kept():
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


def test_ruff_finds_nothing_and_bans_private_apis():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    config = (ROOT / "pyproject.toml").read_text()
    assert '"keras.src".msg' in config and '"tensorflow.python".msg' in config


def test_private_apis_appear_only_in_the_modules_named_for_them():
    offenders = []
    for package in ("builder", "layers", "trainers"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if ("keras.src" in text or "tensorflow.python" in text) and not path.name.endswith("_internals.py"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
