"""The house rules, checked by the tools that own them: import-linter for the dependency
contracts in pyproject.toml (layers <- builder <- trainers, builder's and trainers' floors, no
backend in the spec language, no import cycles) and ruff for style and the banned private APIs;
and folders small enough to show what they hold."""

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
    assert "Contracts: 6 kept, 0 broken." in result.stdout


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


def test_trainers_folders_stay_small_and_their_modules_do_not_repeat_the_folder_name():
    """A folder that holds more than about a dozen modules hides its structure again, and
    `detection/detection_anchors.py` says twice what the path already says once."""
    crowded, repeating = [], []
    for folder in [ROOT / "trainers", *(path.parent for path in (ROOT / "trainers").glob("*/__init__.py"))]:
        modules = [path.stem for path in folder.glob("*.py") if path.stem != "__init__"]
        if len(modules) > 12:
            crowded.append(f"{folder.relative_to(ROOT)}: {len(modules)} modules")
        repeating += [f"{folder.name}/{name}.py" for name in modules if folder.name.rstrip("s") in name.split("_")]
    assert crowded == [] and repeating == [], (crowded, repeating)
