"""Ctrl-C during training stops at a step boundary, keeps the place, and resumes to the same weights."""

import json
import os
import signal

import keras
import numpy as np
import pytest

from trainers.run.interruption import ANNOUNCEMENT, stop_at_step_end

from ...conftest import SPECS


@pytest.fixture(autouse=True)
def python_handles_ctrl_c():
    """Python's own Ctrl-C handling, as in a terminal: a shell that starts the tests in the
    background hands them SIGINT ignored, which the loops rightly leave alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_the_first_ctrl_c_asks_and_the_second_interrupts_at_once(capfd):
    with stop_at_step_end() as stop:
        _ctrl_c()
        assert stop.asked and ANNOUNCEMENT.strip() in capfd.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        stop.asked = False  # so that leaving the block does not raise
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        _ctrl_c()


def test_a_request_the_loop_never_checked_is_raised_when_the_loop_ends():
    with pytest.raises(KeyboardInterrupt), stop_at_step_end():
        _ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_loop_inside_a_loop_shares_the_request():
    with stop_at_step_end() as outer:
        with stop_at_step_end() as inner:
            assert inner is outer
        assert signal.getsignal(signal.SIGINT) == outer.on_sigint
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class CtrlCAt(keras.callbacks.Callback):
    """Ctrl-C after the `at`-th training batch of the run (counted across epochs)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            _ctrl_c()


def _lenet_run(out, callbacks=(), resume=None):
    from trainers import run_training

    if resume is not None:
        return run_training(resume=resume, verbose=0)
    # per-image random crops: Keras's batch augmentation layers would restart their random state on resume
    settings = {"epochs": 2, "batch_size": 64, "checkpoint_every_steps": 4,
                "augment": [{"random_resized_crop": {"scale": [0.6, 1.0]}}]}
    return run_training(SPECS / "lenet5.yaml", None, settings, out, verbose=0, extra_callbacks=callbacks)


def _state(folder):
    state = json.loads((folder / "checkpoints" / "state.json").read_text())
    return state["epoch"], state["step"]


@pytest.mark.parametrize("at, kept", [(27, (1, 7)), (20, (1, 0))], ids=["mid-epoch", "last-step-of-an-epoch"])
def test_ctrl_c_in_fit_keeps_the_step_it_stopped_at_and_resumes_to_the_same_weights(tmp_path, capsys, at, kept):
    """digits: 20 steps an epoch at batch 64. Ctrl-C after step 27 keeps epoch 1 and 7 steps of the
    next (not the step-24 checkpoint); after step 20, the epoch's own checkpoint."""
    from trainers.run.loop import load_trained_model

    whole, _ = _lenet_run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        _lenet_run(tmp_path / "stopped", [CtrlCAt(at)])
    stopped = next((tmp_path / "stopped" / "lenet5").iterdir())
    assert _state(stopped) == kept
    err = capsys.readouterr().err
    where = f"epoch {kept[0]} and {kept[1]} steps of the next" if kept[1] else f"epoch {kept[0]}"
    assert f"interrupted; {where} is saved" in err
    _lenet_run(None, resume=stopped)
    for a, b in zip(load_trained_model(whole).get_weights(), load_trained_model(stopped).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_in_the_adversarial_loop_stops_after_the_step_and_keeps_the_last_epoch(tmp_path, monkeypatch, capsys):
    """dcgan_digits' small run: Ctrl-C during step 5 of epoch 2 lets the step finish (the progress
    bar's update returns), then stops with epoch 1's checkpoint."""
    from builder import load_spec
    from trainers import run_training

    finished_updates = []

    class CtrlCInEpochTwo(keras.utils.Progbar):
        def update(self, current, values=None, finalize=None):
            if len(finished_updates) == 22 + 5 - 1:  # 22 steps an epoch at batch 64
                _ctrl_c()
            super().update(current, values, finalize)
            finished_updates.append(current)

    monkeypatch.setattr(keras.utils, "Progbar", CtrlCInEpochTwo)
    with pytest.raises(KeyboardInterrupt):
        run_training(SPECS / "dcgan_digits.yaml", load_spec(SPECS / "dcgan_digits.yaml").test_overrides,
                     {"epochs": 3, "batch_size": 64}, out=tmp_path, verbose=0)
    assert finished_updates[-1] == 5 and len(finished_updates) == 22 + 5
    folder = next((tmp_path / "dcgan_digits").iterdir())
    assert json.loads((folder / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert "interrupted; epoch 1 is saved" in capsys.readouterr().err
