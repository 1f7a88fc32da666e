"""Plugins from outside the package: an installed distribution's entry point in the group
`keras_blueprint.plugins` adds a layer type and a trainer that the CLI sees. The distribution is
made by the test (a *.dist-info with entry_points.txt on sys.path): no network, no install."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from builder.language.train_section import TRAINERS

from .conftest import ROOT

PLUGIN = '''
import keras

import builder
import trainers
from trainers.supervised import SupervisedTrainer


@keras.saving.register_keras_serializable(package="doubling_plugin")
class Double(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x


class MarkedSupervised(SupervisedTrainer):
    """The supervised trainer, leaving a mark to show that this class ran."""

    name = "marked"
    description = "supervised, with a mark in the run folder"

    def fit(self, job):
        (job.folder / "marked.txt").write_text("the plugin's trainer ran")
        return super().fit(job)


def register():
    builder.register_layer("double", Double, doc="multiplies by two")
    trainers.register_trainer(MarkedSupervised)
'''

SPEC = """
input: [8, 8, 1]
layers:
  - conv: {filters: 4, kernel: 3, activation: relu}
  - double
  - flatten
  - dense: {units: 10, activation: softmax}
train:
  trainer: marked
  epochs: 3
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.01}}
"""


def _distribution(tmp_path, module_text: str, entry: str):
    site = tmp_path / "site"
    info = site / "doubling_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: doubling-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[keras_blueprint.plugins]\ndoubling = {entry}\n")
    (site / "doubling_plugin.py").write_text(textwrap.dedent(module_text))
    return site


def _cli(site, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "builder", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_a_plugin_layer_type_and_trainer_validate_build_and_train_from_the_cli(tmp_path):
    site = _distribution(tmp_path, PLUGIN, "doubling_plugin:register")
    spec = tmp_path / "doubled.yaml"
    spec.write_text(SPEC)
    validated = _cli(site, "validate", str(spec))
    assert validated.returncode == 0 and ": ok (" in validated.stdout, validated.stderr
    summary = _cli(site, "summary", str(spec), "--format", "json")
    assert summary.returncode == 0, summary.stderr
    assert "Double" in [row["class"] for row in json.loads(summary.stdout)["layers"]]
    trained = _cli(site, "train", str(spec), "--out", str(tmp_path / "runs"), "--quiet")
    assert trained.returncode == 0, trained.stderr
    folder = next((tmp_path / "runs" / "doubled").iterdir())
    assert (folder / "marked.txt").read_text() == "the plugin's trainer ran"
    assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] > 0.5  # chance is 0.1


def test_without_the_plugin_its_names_are_unknown(tmp_path):
    spec = tmp_path / "doubled.yaml"
    spec.write_text(SPEC)
    network_only = tmp_path / "network.yaml"
    network_only.write_text(SPEC.split("train:")[0])
    result = _cli(tmp_path, "validate", str(spec), str(network_only))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{spec}:9:12: train.trainer: unknown trainer 'marked' (known: {', '.join(TRAINERS)})",
        f"{network_only}:5:5: layers[1]: unknown layer type 'double'"]


def test_a_broken_plugin_is_one_line_naming_it(tmp_path):
    site = _distribution(tmp_path, "raise RuntimeError('no licence file found')\n", "doubling_plugin")
    result = _cli(site, "validate", str(ROOT / "specs" / "lenet5.yaml"), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("plugin error: plugin 'doubling' (doubling_plugin) failed: "
                                     "RuntimeError: no licence file found")
