"""One trial of a search: sample the space, train an ordinary run, hand its value to the study.

The trial's run folder is the study folder's `trials/NNNN/`; its run.json records the study, the
trial and the sampled values. Each epoch's value of the metric goes to Optuna's pruner, which may
stop the run early (the folder then holds a shorter, complete run). A trial that fails (a
combination that does not build, a non-finite loss, out of memory) is recorded as failed with its
reason, and the study goes on.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from builder import BlueprintError
from builder.language.search_space import Dimension, apply_values

from ..errors import DataError

# Metric names whose last word starts with one of these are lowered, or raised, by training.
LOWER_IS_BETTER = ("loss", "error", "eer", "distance", "mse", "mae", "kid", "fd")
HIGHER_IS_BETTER = ("accuracy", "auc", "iou", "map", "recall", "precision", "f1", "dice", "rate")


def direction_of(metric: str) -> str | None:
    """"minimize" or "maximize" for a metric's name (the last word that tells: val_loss,
    test_top5_accuracy, map50), or None when its name does not say."""
    for word in reversed(metric.lower().split("_")):
        if word.startswith(LOWER_IS_BETTER):
            return "minimize"
        if word.startswith(HIGHER_IS_BETTER):
            return "maximize"
    return None


class TrialFailed(Exception):
    """A trial that ended without a value; its reason is the trial's `failure` attribute."""


@dataclass
class TrialPlan:
    """What every trial of a study shares."""

    spec_file: str
    dimensions: list[Dimension]
    metric: str
    study: str
    storage: str  # shown in run.json, without a password
    folder: Path
    overrides: dict = field(default_factory=dict)        # --set
    train_overrides: dict = field(default_factory=dict)  # --train, --epochs, --batch-size, --data
    verbose: int = 0
    notes: set = field(default_factory=set)


def suggest(trial, dimension: Dimension):
    if dimension.kind == "choice":
        return trial.suggest_categorical(dimension.name, list(dimension.choices))
    if dimension.kind == "int":
        return trial.suggest_int(dimension.name, dimension.low, dimension.high, step=dimension.step or 1,
                                 log=dimension.log)
    return trial.suggest_float(dimension.name, dimension.low, dimension.high, step=dimension.step, log=dimension.log)


def run_trial(trial, plan: TrialPlan) -> float:
    """Train the trial's run and return its value; raise `optuna.TrialPruned` when the pruner
    stopped it, `TrialFailed` when it failed."""
    import optuna

    values = {dimension.name: suggest(trial, dimension) for dimension in plan.dimensions}
    params, train = apply_values(values)
    folder = plan.folder / "trials" / f"{trial.number:04d}"
    trial.set_user_attr("run", str(folder))
    trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
    report = _epoch_report(trial, plan.metric)
    start = time.monotonic()
    print(f"trial {trial.number}: " + ", ".join(f"{name}={shown(value)}" for name, value in values.items()),
          flush=True)
    try:
        _, metrics = _train(plan, params, train, folder, report, trial, values)
    except BlueprintError as exc:
        _fail(trial, exc.cli_message())
    except Exception as exc:  # out of memory and the like: the trial fails, the study goes on
        _fail(trial, f"{type(exc).__name__}: {_first_line(exc)}")
    finally:
        _forget_models()
    epochs = report.epochs or _epochs_trained(folder)
    trial.set_user_attr("epochs", epochs)
    trial.set_user_attr("minutes", round((time.monotonic() - start) / 60, 3))
    value = _value(plan, report, metrics)
    if not math.isfinite(value):
        _fail(trial, f"{plan.metric} is {value}")
    _record(folder, state="pruned" if report.pruned else "complete", value=value, epochs=epochs)
    if report.pruned:
        print(f"trial {trial.number}: pruned after epoch {epochs} ({plan.metric} {value:.4f})", flush=True)
        raise optuna.TrialPruned(f"pruned after epoch {epochs}")
    print(f"trial {trial.number}: {plan.metric} {value:.4f} after {epochs} epochs", flush=True)
    return value


def _train(plan: TrialPlan, params: dict, train: dict, folder: Path, report, trial, values: dict):
    from ..run.training import run_training

    record = {"trial": {"study": plan.study, "storage": plan.storage, "number": trial.number, "params": values}}
    return run_training(plan.spec_file, {**plan.overrides, **params}, {**plan.train_overrides, **train},
                        verbose=plan.verbose, extra_callbacks=[report], check_expect=False, run_folder=folder,
                        record=record, resume_hint=False)


def _value(plan: TrialPlan, report, metrics: dict) -> float:
    """The metric at the run's last epoch, else among its final figures (metrics.json)."""
    if report.values:
        value = report.values[-1]
    elif plan.metric in metrics:
        value = float(metrics[plan.metric])
        if "end" not in plan.notes:
            plan.notes.add("end")
            split = "" if plan.metric.startswith("final_") else " on the test split"
            print(f"note: {plan.metric} is measured once, after training{split}: no trial is pruned, and the "
                  "best trial's figure is the one it was chosen by, not an independent estimate", flush=True)
    else:
        known = sorted({*report.seen, *(key for key in metrics if key != "test_examples")})
        raise DataError(f"the runs report no '{plan.metric}'; choose --metric among: {', '.join(known)}")
    return value


def _epochs_trained(folder: Path) -> int:
    """Epochs a run completed, from its last checkpoint (a trainer with its own loop reports none)."""
    from ..run.folder import last_checkpoint

    state = last_checkpoint(folder)
    return state[0] if state else 0


def _fail(trial, reason: str):
    trial.set_user_attr("failure", reason)
    folder = Path(trial.user_attrs["run"])
    if (folder / "run.json").is_file():
        _record(folder, state="failed", failure=reason)
    print(f"trial {trial.number} failed: {reason}", flush=True)
    raise TrialFailed(reason)


def _record(folder: Path, **entries) -> None:
    from ..run.folder import add_to_run_record

    add_to_run_record(folder, "trial", **entries)


def _epoch_report(trial, metric: str):
    """A Keras callback that hands each epoch's `metric` to the trial and stops the run when the
    pruner says so."""
    import keras

    class EpochReport(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values: list = []
            self.seen: set = set()
            self.epochs = 0
            self.pruned = False

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.epochs = epoch + 1
            self.seen.update(logs)
            if metric not in logs:
                return
            value = float(logs[metric])
            self.values.append(value)
            last = epoch + 1 >= self.params.get("epochs", 0)  # a trial at its end has nothing left to save
            if math.isfinite(value):
                trial.report(value, epoch + 1)
                if not last and trial.should_prune():
                    self.pruned = True
                    self.model.stop_training = True

    return EpochReport()


def _forget_models() -> None:
    """Free the trial's models before the next trial builds its own."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def shown(value) -> str:
    """A sampled value as people read it: four significant digits for a float."""
    return f"{tidy(value):.4g}" if isinstance(value, float) else str(value)


def tidy(value):
    """A sampled float without the binary noise of a step grid (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.12g}") if isinstance(value, float) else value
