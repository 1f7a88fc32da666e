"""The one interface every trainer implements, for new and resumed runs, one network or several.

`trainers.run.training.run_training` builds the spec's models (or, resuming, asks the trainer
for them), makes a `TrainingJob` and calls `fit`; `python -m builder evaluate` calls `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .settings import FIT_SETTINGS


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run stopped: completed epochs, the checkpoint file, the history so
    far, and the batches of the next epoch already trained (a step checkpoint)."""

    epoch: int
    checkpoint: Path
    history: list
    step: int = 0


@dataclass
class TrainingJob:
    """Everything a trainer needs for one run: the spec's models by name (`main` is the spec's
    main model), the resolved `train:` config, the run folder, and where to resume from."""

    models: dict
    main: str
    config: dict
    folder: Path
    resume: ResumePoint | None = None
    verbose: int = 1
    extra_callbacks: tuple = field(default=())
    placement: object = None  # a trainers.run.distribution.Placement; None: one device

    @property
    def distributed(self) -> bool:
        return self.placement is not None and self.placement.distributed

    @property
    def model(self):
        """The network a single-network trainer trains."""
        return self.models[self.main]

    @property
    def initial_epoch(self) -> int:
        return self.resume.epoch if self.resume else 0

    @property
    def history(self) -> list | None:
        return self.resume.history if self.resume else None

    @property
    def initial_step(self) -> int:
        """Batches of `initial_epoch` trained before an interruption."""
        return self.resume.step if self.resume else 0


class Trainer:
    """A training strategy. Subclasses set `name` and `description`, the common settings they
    `honours` (see `trainers.run.settings.COMMON`) and their own `options` (setting name ->
    `trainers.run.settings.Setting`), and implement `fit` and `evaluate`. Register one with
    `trainers.register_trainer(MyTrainer)`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    honours: ClassVar[tuple] = FIT_SETTINGS
    options: ClassVar[dict] = {}
    process_groups: ClassVar[bool] = False  # trains in a group of processes (see trainers.run.distribution)
    # What `tune` optimises unless told otherwise: a per-epoch log (history.csv) or a metrics.json
    # entry; None when the trainer measures nothing worth optimising on its own.
    search_metric: ClassVar[str | None] = "val_loss"

    def fit(self, job: TrainingJob) -> dict:
        """Train (a new run, or on from `job.resume`), write the run folder; return test metrics."""
        raise NotImplementedError

    def evaluate(self, model, config: dict) -> dict:
        """Test metrics of a trained model (the `evaluate` command)."""
        raise NotImplementedError(f"the {self.name} trainer has no evaluate")

    def summary_figures(self, model, config: dict) -> dict:
        """{name: value} that `summary` adds for a spec this trainer trains, from the built model
        and the resolved `train:` config (the detector's anchor count); none by default."""
        return {}

    def unmeasured(self, metric: str, config: dict) -> str | None:
        """Why runs with the resolved `train:` config would not report `metric`, and what to set
        so that they do; None when they may (`tune` asks before its first trial)."""
        return None

    def resume_models(self, spec_file: str, params: dict, resume: ResumePoint) -> dict:
        """The models a resumed run continues with: by default the main model as checkpointed
        (optimizer state included), under the name `main`."""
        from .saving import load_model

        return {"main": load_model(resume.checkpoint, training_state=True)}
