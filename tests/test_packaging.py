"""The zoo installs with the package: from a wheel (not only an editable install), a spec is found
by its zoo name and `include:` can name a zoo block library. The wheel is built offline from a
copy of the sources."""

import os
import shutil
import subprocess
import sys

import pytest

from builder import load_spec

from .conftest import ROOT


def test_a_zoo_spec_is_found_by_name_and_its_blocks_by_include(write_spec):
    assert load_spec("resnet18").name == "resnet18"
    assert load_spec("lenet5.yaml").file == str(ROOT / "specs" / "lenet5.yaml")
    mine = write_spec("""
        include: [blocks/resnet.yaml]
        input: [32, 32, 3]
        layers:
          - basic: {filters: 8}
    """)
    assert load_spec(mine).graph.nodes


def test_an_unknown_name_lists_the_zoo():
    from builder import SpecError

    with pytest.raises(SpecError, match=r"resnet19:1:1: no such file, and no zoo spec of that name; did you mean "
                                        r"'resnet18'\? \(zoo: alexnet, "):
        load_spec("resnet19")


@pytest.mark.slow
def test_a_wheel_install_carries_the_zoo(tmp_path):
    source = tmp_path / "source"
    for name in ("builder", "layers", "trainers", "specs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("keras_blueprint-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.yaml").write_text("include: [blocks/vgg.yaml]\ninput: [32, 32, 3]\n"
                                         "layers:\n  - block: {filters: 8, convs: 2}\n")
    code = ("import sys, builder; from builder.cli import main; print('FROM', builder.__file__); "
            "sys.exit(main(['validate', 'resnet50', 'mine.yaml']))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=elsewhere, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"FROM {site}" in result.stdout
    assert "resnet50: ok (" in result.stdout and "mine.yaml: ok (" in result.stdout
