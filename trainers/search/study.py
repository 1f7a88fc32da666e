"""A study on Optuna's storages: where it lives, how it samples and prunes, and how several
processes (on one machine or many) share it by running the same command.

The study counts a trial once it has ended on its own (complete, pruned, or failed with a reason)
and stops at `--trials` of those. A trial whose process died (Ctrl-C, kill -9, a lost machine)
is marked failed and queued to run again with the same values: on this machine at once (its
process is gone), elsewhere when Optuna's heartbeat has been silent for `GRACE_SECONDS` (database
storages only: a journal file keeps no heartbeat).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from builder.language.search_space import Dimension

from ..errors import DataError
from .objective import TrialFailed, TrialPlan, run_trial

SAMPLERS = {
    "tpe": "Tree-structured Parzen Estimator: models good and bad values (Optuna's default)",
    "random": "independent uniform draws",
    "grid": "every combination once (ranges need a step; int ranges are whole)",
    "cmaes": "covariance matrix adaptation, for numeric ranges",
}
PRUNERS = {
    "median": "after the first quarter of its epochs, stop a trial worse than the median of earlier trials at "
              "the same epoch",
    "hyperband": "successive halving over several brackets of epoch budgets",
    "none": "every trial runs all its epochs",
}
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 300
JOURNAL_PREFIX = "journal:"
STORAGE_ATTEMPTS = 4


@dataclass
class StudyPlan:
    """A `tune` command: the trials' plan, and the study's own settings."""

    trial: TrialPlan
    direction: str
    sampler: str = "tpe"
    pruner: str = "median"
    trials: int = 20
    timeout_minutes: float | None = None
    seed: int | None = None
    storage_url: str = ""
    epochs: int = 1

    @property
    def name(self) -> str:
        return self.trial.study


def default_storage(folder: Path) -> str:
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def shown_storage(url: str) -> str:
    """The storage URL without a password."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def make_storage(url: str):
    """An Optuna storage from `--storage`: a database URL (sqlite, postgresql, mysql) or
    `journal:PATH`, a journal file that processes on one file system share."""
    import optuna
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from sqlalchemy.exc import DatabaseError  # Optuna's RDB storage runs on SQLAlchemy

    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise DataError(f"--storage {url}: expected a database URL (sqlite:///FILE, postgresql://..., mysql://...) "
                        f"or {JOURNAL_PREFIX}FILE")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with _quiet_experimental():
                return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                  grace_period=GRACE_SECONDS,
                                  heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1))
        except (ImportError, ModuleNotFoundError) as exc:
            raise DataError(f"--storage {shown_storage(url)} needs a database driver: {exc}") from None
        except Exception as exc:  # SQLAlchemy's errors: a server that does not answer, a bad URL
            # Processes started together on a new database race to create its tables: the loser
            # finds them made a moment later.
            if isinstance(exc, DatabaseError) and attempt + 1 < STORAGE_ATTEMPTS:
                time.sleep(1.0 + attempt)
                continue
            raise DataError(f"cannot open the storage {shown_storage(url)}: {str(exc).splitlines()[0]}") from None


def make_sampler(plan: StudyPlan):
    import optuna

    name, dimensions = plan.sampler, plan.trial.dimensions
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=plan.seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=plan.seed)
    if name == "cmaes":
        with _quiet_experimental():
            return optuna.samplers.CmaEsSampler(seed=plan.seed, warn_independent_sampling=False)
    grid = grid_of(dimensions)
    return optuna.samplers.GridSampler(grid, seed=plan.seed)


def grid_of(dimensions: list[Dimension]) -> dict:
    """Each dimension's values for the grid sampler; a continuous range is refused."""
    continuous = [str(dimension) for dimension in dimensions if dimension.grid() is None]
    if continuous:
        raise DataError(f"--sampler grid needs every range on a grid; give {', '.join(continuous)} a step=S")
    return {dimension.name: dimension.grid() for dimension in dimensions}


def grid_size(dimensions: list[Dimension]) -> int:
    size = 1
    for values in grid_of(dimensions).values():
        size *= len(values)
    return size


def make_pruner(plan: StudyPlan):
    import optuna

    if plan.pruner == "median":
        # epochs report as steps 1, 2, ...; a step below n_warmup_steps is never pruned
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=plan.epochs // 4 + 1)
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(plan.epochs, 1))
    return optuna.pruners.NopPruner()


SEARCH_ATTRIBUTE = "search"  # the study's metric, direction and space, as its first command set them


def open_study(plan: StudyPlan, storage):
    """The study of that name in `storage`, created or continued; refused when it already
    searches another space or metric."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what each trial did
    study = optuna.create_study(study_name=plan.name, storage=storage, direction=plan.direction,
                                pruner=make_pruner(plan), load_if_exists=True)
    if plan.seed is not None:  # a continued study draws on from where it stands, not from its first trial again
        plan.seed += len(study.get_trials(deepcopy=False))
    with _quiet_experimental():
        study.sampler = make_sampler(plan)
    settings = {"metric": plan.trial.metric, "direction": plan.direction,
                "space": [str(dimension) for dimension in plan.trial.dimensions]}
    # One attribute, written in one storage call: a process that opens the study while another is
    # creating it sees all of the search or none of it.
    recorded = study.user_attrs.get(SEARCH_ATTRIBUTE)
    if recorded is None and "metric" in study.user_attrs:  # a study begun before the one attribute
        recorded = {key: study.user_attrs.get(key) for key in settings}
    if recorded is None:
        study.set_user_attr(SEARCH_ATTRIBUTE, settings)
    elif recorded != settings or study.direction.name.lower() != plan.direction:
        raise DataError(f"the study '{plan.name}' in {shown_storage(plan.storage_url)} searches "
                        f"{', '.join(recorded['space'])} for the {recorded['direction']} {recorded['metric']}; "
                        "this command asks for "
                        f"{', '.join(settings['space'])} for the {plan.direction} {plan.trial.metric}. Give the new "
                        "search its own --study NAME")
    return study


def finished(study) -> int:
    """Trials that ended on their own: complete, pruned, or failed with a reason."""
    from optuna.trial import TrialState

    return sum(1 for trial in study.get_trials(deepcopy=False)
               if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (trial.state == TrialState.FAIL and "failure" in trial.user_attrs))


def rerun_orphans(study, storage) -> list[int]:
    """Trials left running by a process of this machine that is gone: marked failed and queued
    to run again with the same values. Returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    orphans = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("process", "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "interrupted", "its process ended before the trial did")
        if storage.set_trial_state_values(trial_id, TrialState.FAIL):
            study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
            orphans.append(trial.number)
    return orphans


def requeue_interrupted(study, number: int) -> None:
    """Queue a trial this process stopped (Ctrl-C) to run again with the same values."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number and trial.params:
            study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_study(plan: StudyPlan, study) -> None:
    """Run trials until the study has `plan.trials` finished ones (or the time is up)."""
    _quiet_retracing_notes()
    deadline = time.monotonic() + plan.timeout_minutes * 60 if plan.timeout_minutes else None
    current: dict = {}

    def objective(trial):
        current["number"] = trial.number
        return run_trial(trial, plan.trial)

    try:
        while finished(study) < plan.trials:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                print(f"--timeout: {plan.timeout_minutes:g} minutes are up", flush=True)
                break
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), gc_after_trial=False)
            current.clear()
    except KeyboardInterrupt:
        if current:
            requeue_interrupted(study, current["number"])
            print(f"\ninterrupted; when the same command continues the study, trial {current['number']}'s values "
                  "train again from the start", file=sys.stderr, flush=True)
        raise


def _quiet_retracing_notes() -> None:
    """Every trial builds a new model, so TensorFlow's note that functions are traced again and
    again is expected here, not advice."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def _quiet_experimental():
    """Optuna marks some of what we use experimental, with a warning on every call."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
