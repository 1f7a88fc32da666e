"""Training strategies, data, and run folders: the `trainers` plugin of Keras Blueprint.

Importing this package registers the built-in trainers, datasets, optimizers, schedules,
augmentations, losses and metrics, and the train / evaluate / predict / data commands; it does not
import Keras (`run_training` does). The package is loaded by `builder` as the entry point
`trainers` of the group `keras_blueprint.plugins`, so `builder` never imports it.

Public API:
    run_training(spec, overrides=None, train_overrides=None, out="runs", resume=None) -> (folder, metrics)
    load_model(path, training_state=False) -> keras.Model  (a model or checkpoint a run wrote)
    register_trainer(TrainerClass) ; Trainer, TrainingJob, ResumePoint
    register_dataset(name, loader, description, path=None)
    DataError, TrainingFault (both `builder.BlueprintError`s)
"""

from __future__ import annotations

from builder.language.train_section import TRAINERS

from . import builtin, commands, former_paths  # noqa: F401  (register the built-in entries and commands)
from .errors import DataError, TrainingFault
from .registries import DATASETS, DatasetEntry
from .run.settings import TrainerEntry
from .run.trainer import ResumePoint, Trainer, TrainingJob

former_paths.install()  # the flat module paths of earlier versions still import

__all__ = ["DATASETS", "TRAINERS", "DataError", "ResumePoint", "Trainer", "TrainingFault", "TrainingJob",
           "load_model", "register_dataset", "register_trainer", "run_training"]


def register_trainer(trainer: type[Trainer], replace: bool = False) -> TrainerEntry:
    """Make `train: {trainer: <trainer.name>}` train with this `Trainer` subclass."""
    if not (isinstance(trainer, type) and issubclass(trainer, Trainer)) or not trainer.name:
        raise TypeError(f"register_trainer takes a Trainer subclass with a name; got {trainer!r}")
    entry = TrainerEntry(trainer.name, trainer.description, lambda: trainer, tuple(trainer.honours),
                         dict(trainer.options))
    entry.schema()  # refuses unknown common settings now, not at the first spec
    return TRAINERS.register(trainer.name, entry, replace=replace)


def register_dataset(name: str, loader, description: str = "", path: str | None = None,
                     replace: bool = False) -> DatasetEntry:
    """Make `data: {dataset: name}` (and `--data name`, or `--data name:PATH` when `path` is
    "folder" or "file") load through `loader(data_config) -> trainers.data.datasets.Splits`."""
    if path not in (None, "folder", "file"):
        raise ValueError(f"path is None, 'folder' or 'file'; got {path!r}")
    return DATASETS.register(name, DatasetEntry(loader, description or name, path), replace=replace)


def load_model(path, training_state: bool = False):
    """A `.keras` file that a run wrote, with every trainer's classes registered first: a model,
    or a checkpoint (compiled with its optimizer state when `training_state`; see `trainers.run.saving`)."""
    from .run.saving import load_model as _load

    return _load(path, training_state)


def run_training(*args, **kwargs):
    """Train a spec into a new run folder, or continue one (see `trainers.run.training`)."""
    from .run.training import run_training as _run

    return _run(*args, **kwargs)
