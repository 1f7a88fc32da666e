"""Hostile specs, bad data and interrupted runs end in one clear message, never a crash."""

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from builder import SpecError, load_spec

from ...conftest import BUILDER, ROOT, SPECS

PACKAGES = ("builder", "layers", "trainers")

# Ways code could turn spec text into code; none may exist in the packages.
FORBIDDEN = {
    r"(?<![\w.])eval\(": "eval",
    r"(?<![\w.])exec\(": "exec",
    r"__import__\(": "__import__",
    r"import_module\(": "importlib.import_module",
    r"yaml\.load\(": "yaml.load (use the safe loader)",
    r"unsafe_load|yaml\.Loader\b|FullLoader|UnsafeLoader": "an unsafe YAML loader",
    r"pickle\.loads?\(": "plain pickle.load (only the restricted CIFAR unpickler is allowed)",
    r"safe_mode\s*=\s*False": "load_model(safe_mode=False)",
    r"globals\(\)|locals\(\)": "globals()/locals() lookups",
}


# The one module that imports by name: it maps a module path that Python code imports (the flat
# `trainers.settings` of earlier versions) to the module holding that code now, through its own fixed
# table; names reach it from import statements, never from a spec (tests/trainers/test_layout.py).
IMPORTS_BY_NAME = Path("trainers/former_paths.py")


def _sources():
    for package in PACKAGES:
        yield from sorted(path for path in (ROOT / package).rglob("*.py") if path != ROOT / IMPORTS_BY_NAME)


def test_no_code_path_from_spec_text_to_code():
    hits = []
    for path in _sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN.items():
                if re.search(pattern, code):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {what}")
            # getattr with a computed attribute name is how a string could pick code; literals cannot
            for target, attribute in re.findall(r"getattr\(\s*([\w.]+)\s*,\s*([^,)]+)", code):
                if not re.fullmatch(r"\s*(\"[\w]+\"|'[\w]+')\s*", attribute):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: getattr({target}, {attribute.strip()})")
    assert not hits, "\n".join(hits)


def test_yaml_python_tags_are_refused(write_spec):
    path = write_spec("""
        input: !!python/object/apply:os.system ["echo owned"]
        layers: [relu]
    """)
    tag = "tag:yaml.org,2002:python/object/apply:os.system"
    with pytest.raises(SpecError, match=rf"spec.yaml:1:8: the YAML tag '{tag}' is not allowed"):
        load_spec(path)
    scalar = write_spec("input: !!python/name:os.system\nlayers: [relu]\n", "scalar.yaml")
    with pytest.raises(SpecError, match="is not allowed"):
        load_spec(scalar)


def _refused_quickly(tmp_path, spec_text, fragment, build=True):
    """Run in a fresh process, measuring time and memory from after the imports."""
    spec = tmp_path / "bomb.yaml"
    spec.write_text(textwrap.dedent(spec_text).lstrip())
    warm_up = "import keras; keras.Input((1,))" if build else "pass"  # a backend, warmed up; loading needs none
    code = textwrap.dedent(f"""
        import resource, sys, time
        import builder
        {warm_up}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            builder.{'build_model' if build else 'load_spec'}({str(spec)!r})
            print("NOT REFUSED")
        except builder.SpecError as exc:
            print("REFUSED", exc)
        print("SECONDS", time.perf_counter() - start)
        print("MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = result.stdout
    assert "REFUSED" in out and fragment in out, out + result.stderr[-2000:]
    seconds = float(re.search(r"SECONDS (\S+)", out).group(1))
    megabytes = float(re.search(r"MB (\S+)", out).group(1))
    # The bound separates a refusal from a runaway expansion (the nested bomb's 10^8 nodes expanded in full
    # would take over half an hour), not a speed target: a refusal that walks up to MAX_NODES takes about 0.4 s
    # here and about 1 s on CI's two slower cores, so the bound leaves room for a loaded machine.
    assert seconds < 10.0 and megabytes < 200, (seconds, megabytes)


@pytest.mark.backend_free  # the spec is refused while it loads, before any backend
def test_yaml_alias_bomb(tmp_path):
    rows = ['a0: &a0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]']
    rows += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
             f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    text = "params:\n" + "\n".join("  " + row for row in rows) + "\ninput: [4]\nlayers: *a8\n"
    _refused_quickly(tmp_path, text, "alias bomb", build=False)


@pytest.mark.backend_free  # the spec is refused while it loads, before any backend
def test_repeat_bomb(tmp_path):
    _refused_quickly(tmp_path, """
        input: [4]
        layers:
          - repeat:
              times: "${10 ** 9}"
              layers: [relu]
    """, "exceeds the node limit", build=False)


@pytest.mark.backend_free  # the spec is refused while it loads, before any backend
def test_nested_repeat_bomb(tmp_path):
    _refused_quickly(tmp_path, """
        input: [4]
        layers:
          - repeat:
              times: 10000
              layers:
                - repeat:
                    times: 10000
                    layers: [relu]
    """, "more than 20000 nodes", build=False)


def test_parameter_bomb_is_refused_before_allocation(tmp_path):
    _refused_quickly(tmp_path, """
        input: [100000]
        layers:
          - dense: {units: 100000}
          - dense: {units: 10}
    """, "would have 10,001,100,010 parameters")


def test_absurd_input_shape(tmp_path):
    _refused_quickly(tmp_path, """
        input: [100000, 100000, 3]
        layers:
          - conv: {filters: 4, kernel: 3}
    """, "input 'input' would output 30,000,000,000 values per example")


def test_absurd_activation(tmp_path):
    _refused_quickly(tmp_path, """
        input: [64, 64, 3]
        layers:
          - upsampling: {size: 512}
    """, "upsampling 'upsampling1' would output")


def test_blocks_calling_each_other(write_spec):
    path = write_spec("""
        blocks:
          ping: {layers: [pong]}
          pong: {layers: [ping]}
        input: [4]
        layers: [ping]
    """)
    with pytest.raises(SpecError, match=r"block 'ping' uses itself \(ping -> pong -> ping\)"):
        load_spec(path)


def test_parameter_limit_is_configurable():
    import builder

    with pytest.raises(SpecError, match="over the limit of 1,000"):
        builder.build_models(SPECS / "lenet5.yaml", max_params=1000)


# -- training faults ------------------------------------------------------------------------------
def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_good_checkpoint(tmp_path):
    import keras
    import numpy as np

    from trainers import run_training
    from trainers.errors import TrainingFault

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                layer = self.model.get_layer("dense3")
                kernel, bias = layer.get_weights()
                layer.set_weights([kernel * np.nan, bias])

    with pytest.raises(TrainingFault) as info:
        run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 3}, out=tmp_path, verbose=0,
                     extra_callbacks=[PoisonAfterFirstEpoch()])
    message = str(info.value)
    assert "the loss became nan at epoch 2, step 1" in message and "the last good checkpoint is epoch 1" in message
    folder = next(tmp_path.glob("lenet5/*"))
    state = json.loads((folder / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1
    model = keras.saving.load_model(folder / "checkpoints" / state["checkpoint"])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def _start(args, log):
    """The run under test takes Ctrl-C as a terminal's foreground program does: a test runner
    started in the background has SIGINT ignored, which a child would inherit, so the runner
    holds Python's own handler while it starts the child (handlers reset to the default on exec)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([*BUILDER, "train", *args, "--quiet"], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**__import__("os").environ, "PYTHONUNBUFFERED": "1"})
    finally:
        signal.signal(signal.SIGINT, previous)


def _checkpoint_is_whole(folder):
    import keras

    import layers  # noqa: F401
    from trainers.run import optimization  # noqa: F401

    state = json.loads((folder / "checkpoints" / "state.json").read_text())
    keras.saving.load_model(folder / "checkpoints" / state["checkpoint"])
    return state["epoch"]


def test_repeated_sigkill_never_corrupts_the_latest_checkpoint(tmp_path):
    rng = __import__("random").Random(0)
    log = open(tmp_path / "log.txt", "ab")
    process = _start([str(SPECS / "lenet5.yaml"), "--epochs", "300", "--out", str(tmp_path)], log)
    folder, epochs_seen = None, []
    try:
        for _ in range(4):
            deadline = time.time() + 120
            while time.time() < deadline:
                states = list(tmp_path.glob("lenet5/*/checkpoints/state.json"))
                if states and json.loads(states[0].read_text())["epoch"] > (epochs_seen[-1] if epochs_seen else 0):
                    break
                time.sleep(0.1)
            folder = states[0].parent.parent
            time.sleep(rng.uniform(0.0, 1.0))  # land anywhere in an epoch, checkpoint writes included
            process.send_signal(signal.SIGKILL)
            process.wait()
            epochs_seen.append(_checkpoint_is_whole(folder))
            process = _start(["--resume", str(folder)], log)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    assert epochs_seen == sorted(epochs_seen) and epochs_seen[-1] >= 4
    assert _checkpoint_is_whole(folder) >= epochs_seen[-1]


def test_ctrl_c_leaves_a_resumable_run(tmp_path):
    log = open(tmp_path / "log.txt", "wb")
    process = _start([str(SPECS / "lenet5.yaml"), "--epochs", "300", "--out", str(tmp_path)], log)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("lenet5/*/checkpoints/state.json")):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    log.close()
    output = (tmp_path / "log.txt").read_text()
    assert code == 130, output[-2000:]
    assert "is saved. Continue with: python -m builder train --resume" in output and "Traceback" not in output
    assert "Ctrl-C: stopping at the end of this step" in output


def test_unwritable_output_is_reported_before_training(tmp_path, capsys):
    from builder.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", str(SPECS / "lenet5.yaml"), "--out", str(blocker / "runs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("data error: cannot write the run folder") and "--out" in err


def test_full_disk_is_reported_before_training(tmp_path, monkeypatch, capsys):
    import shutil

    from builder.cli import main

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1024, 1024))
    assert main(["train", str(SPECS / "lenet5.yaml"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "MiB free but checkpoints need about" in err
    assert not list(tmp_path.glob("lenet5/*/checkpoints/state.json"))
