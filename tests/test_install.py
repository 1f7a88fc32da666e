"""The install resolves to one TensorFlow distribution, with the GPU extra too: checked with pip's own
resolver (`pip install --dry-run --report`), offline, against stand-in wheels of our dependencies
written here (their names, versions and extras; no code), so nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from .conftest import ROOT

pytestmark = pytest.mark.backend_free

TENSORFLOWS = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos"}
# What the real distributions' extras add, as far as a resolver sees it.
EXTRAS = {"tensorflow": {"and-cuda": ["nvidia-cudnn-cu12"]}, "jax": {"cuda12": ["jax-cuda12-plugin"]}}


def _stand_in(folder: Path, name: str, extras: dict) -> None:
    """A wheel that declares `name` 99.0 and what its extras require, and holds nothing else."""
    normalized = name.replace("-", "_")
    info = f"{normalized}-99.0.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 99.0"]
    for extra, needs in extras.items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f'Requires-Dist: {need}; extra == "{extra}"' for need in needs]
    with zipfile.ZipFile(folder / f"{normalized}-99.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{info}/METADATA", "\n".join(metadata) + "\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")


def _stand_ins(folder: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["cuda"]]
    names = {requirement.name for requirement in requirements} | TENSORFLOWS
    names |= {need for extras in EXTRAS.values() for needs in extras.values() for need in needs}
    for name in names:
        _stand_in(folder, name, EXTRAS.get(name, {}))


def _installed_by(target: str, wheels: Path, report: Path) -> set[str]:
    """The distributions `pip install TARGET` would install into a new virtual environment (this
    one's packages ignored), from pip's resolution report."""
    result = subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--quiet",
                             "--ignore-installed", "--no-index", "--find-links", str(wheels), "--no-build-isolation",
                             "--report", str(report), "-e", target], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}


def test_the_gpu_install_leaves_exactly_one_tensorflow(tmp_path):
    _stand_ins(tmp_path)
    plain = _installed_by(str(ROOT), tmp_path, tmp_path / "plain.json")          # README command 1
    gpu = _installed_by(f"{ROOT}[cuda]", tmp_path, tmp_path / "cuda.json")       # the GPU install
    assert plain & TENSORFLOWS == {"tensorflow"}, plain
    assert gpu & TENSORFLOWS == {"tensorflow"} and "nvidia-cudnn-cu12" in gpu, gpu  # its CUDA libraries
    assert "jax-cuda12-plugin" in gpu
    # after command 1 the GPU install adds to the same distribution: still one TensorFlow
    assert (plain | gpu) & TENSORFLOWS == {"tensorflow"}
