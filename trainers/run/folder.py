"""The run folder: everything a training run leaves behind, written so that a crash loses at
most the current epoch.

    runs/<spec>/<timestamp>/
        run.json             spec path, params, overrides, train config, backend, versions, seed
        spec.yaml            a copy of the spec as it was
        checkpoints/         epoch_NNN.keras (model + optimizer state), or epoch_NNN_step_NNNNNN.keras
                             mid-epoch (train.checkpoint_every_steps); state.json names the newest
        history.csv          one row per completed epoch
        metrics.json         final test metrics
        model.keras          the final model
        learning_curve.png, confusion_matrix.png, tensorboard/
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras

from builder.language.train_section import TRAINERS

from ..errors import DataError

STATE = "state.json"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_folder(root: str | Path, spec_name: str) -> Path:
    base = Path(root) / spec_name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = base / f"{stamp}-{suffix}"
    return make_run_folder(path)


def make_run_folder(path: Path) -> Path:
    """Create the run folder `path` (new) with its checkpoints folder, after checking it can be written."""
    try:
        (path / "checkpoints").mkdir(parents=True)
        probe = path / ".write-test"
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as exc:
        raise DataError(f"cannot write the run folder {path}: {exc.strerror or exc}; "
                        "choose another with --out") from None
    return path


def ensure_space(folder: Path, model, copies: int = 2) -> None:
    """Refuse to start when the disk cannot hold the checkpoints (weights, optimizer slots, the
    old and new checkpoint side by side during an atomic replace)."""
    need = model.count_params() * 4 * 3 * copies + 50 * 2**20
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DataError(f"{folder} has {free / 2**20:,.0f} MiB free but checkpoints need about "
                        f"{need / 2**20:,.0f} MiB; free some space or choose another --out")


def write_run_record(path: Path, record: dict, spec_file: str) -> None:
    atomic_write(path / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    shutil.copyfile(spec_file, path / "spec.yaml")


def record_data(folder: Path, splits) -> None:
    """Add the data actually used to run.json: examples per split, training examples per class,
    and each image file left out as unreadable (named, with the reason)."""
    _add_data_used(folder, **{name: len(split) for name, split in splits.named().items()},
                   trained_per_class=splits.train.label_counts(splits.num_classes).tolist(),
                   skipped_files=len(splits.skipped),
                   skipped=[{"file": file, "reason": reason} for file, reason in splits.skipped])


def record_trained_classes(folder: Path, counts) -> None:
    """Add to run.json how many of the images a run trained on had each label (a trainer that
    trains on more than the training split, as the adversarial one does)."""
    _add_data_used(folder, trained_per_class=[int(count) for count in counts])


def _add_data_used(folder: Path, **entries) -> None:
    add_to_run_record(folder, "data_used", **entries)


def add_to_run_record(folder: Path, key: str, **entries) -> None:
    """Add `entries` to the mapping `key` of a run's run.json (written whole, atomically)."""
    record = read_run_record(folder)
    record[key] = {**record.get(key, {}), **entries}
    atomic_write(Path(folder) / "run.json", json.dumps(record, indent=2, default=str) + "\n")


def read_run_record(path: Path) -> dict:
    """run.json, its `train` section completed with the settings added since it was written."""
    file = Path(path) / "run.json"
    if not file.is_file():
        raise DataError(f"{path} is not a run folder (no run.json)")
    record = json.loads(file.read_text())
    if isinstance(record, dict) and isinstance(record.get("train"), dict):
        record["train"] = with_later_defaults(record["train"])
    return record


def with_later_defaults(train: dict) -> dict:
    """A recorded `train` section as today's trainer reads it: a setting the record lacks takes
    its default, and a merged setting (`Setting.merged`) its missing keys' defaults. Nothing
    recorded changes, and a section of an unknown trainer is left as it is (the commands that
    read it refuse it by name)."""
    if train.get("trainer") not in TRAINERS:
        return train
    entry = TRAINERS[train["trainer"]]
    defaults = copy.deepcopy(entry.defaults())
    completed = {**{key: value for key, value in defaults.items() if key not in train}, **train}
    for key in entry.merged_keys():
        if isinstance(completed.get(key), dict) and isinstance(defaults[key], dict):
            completed[key] = {**defaults[key], **completed[key]}
    return completed


def require_trainer(run, config: dict, trainer: str, purpose: str, hint: str = "") -> None:
    """Refuse a run folder that another trainer wrote, in one line: what the command does, and
    which trainer the run had."""
    if config["trainer"] != trainer:
        raise DataError(f"{purpose}; {run} was trained by the {config['trainer']} trainer{hint}")


def require_run_for(command: str, run, config: dict, purpose: str, hint: str = "") -> None:
    """`require_trainer` for a command: the run's trainer must be one of those whose runs the
    command's registry entry says it takes (`Command.runs_of`)."""
    from builder.cli import COMMANDS, takes_runs_of

    if not takes_runs_of(COMMANDS.get(command), config["trainer"]):
        raise DataError(f"{purpose}; {run} was trained by the {config['trainer']} trainer{hint}")


def save_checkpoint(model, folder: Path, epochs_done: int, history: list, step: int = 0) -> None:
    """The model with its optimizer state, then the state file that names it (`step`: batches of
    the next epoch already trained); each written atomically, the previous checkpoint removed last."""
    checkpoints = Path(folder) / "checkpoints"
    name = f"epoch_{epochs_done:03d}.keras" if not step else f"epoch_{epochs_done:03d}_step_{step:06d}.keras"
    tmp = checkpoints / f".{name}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, checkpoints / name)
    previous = last_checkpoint(folder)
    atomic_write(checkpoints / STATE, json.dumps({"epoch": epochs_done, "step": step, "checkpoint": name,
                                                  "history": history}, indent=1))
    if previous is not None and previous[1].name != name:
        previous[1].unlink(missing_ok=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: a checkpoint (`save_checkpoint`), then history.csv."""

    def __init__(self, folder: Path, history: list | None = None):
        super().__init__()
        self.folder = Path(folder)
        self.history = list(history or [])

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.history.append(row)
        save_checkpoint(self.model, self.folder, epoch + 1, self.history)
        write_history_csv(self.folder, self.history)


class StepCheckpoint(keras.callbacks.Callback):
    """Every `every` training steps, a checkpoint that records the position in the epoch, so a
    killed run loses at most `every` steps. The input pipeline orders each epoch by (seed, epoch)
    alone, so the position is all a resume needs to see the same examples next."""

    def __init__(self, folder: Path, every: int, epoch_checkpoint: EpochCheckpoint, steps_per_epoch: int,
                 first_step: int = 0):
        super().__init__()
        self.folder, self.every, self.epochs = Path(folder), int(every), epoch_checkpoint
        self.steps_per_epoch, self.offset, self.epoch = steps_per_epoch, int(first_step), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0  # only the epoch a resume starts in begins part-way

    def on_train_batch_end(self, batch, logs=None):
        if (self.offset + batch + 1) % self.every == 0:
            self.save_position(batch)

    def save_position(self, batch: int) -> None:
        """A checkpoint of the place after `batch` (this fit call's count), unless the epoch ends there
        (its own checkpoint follows)."""
        step = self.offset + batch + 1
        if step < self.steps_per_epoch:
            save_checkpoint(self.model, self.folder, self.epoch, self.epochs.history, step)


def write_history_csv(folder: Path, history: list) -> None:
    keys = ["epoch"] + sorted({k for row in history for k in row if k != "epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write(Path(folder) / "history.csv", buffer.getvalue())


def last_checkpoint(folder: Path):
    """(completed epochs, checkpoint path, history, steps into the next epoch) of the newest
    complete checkpoint, or None."""
    state_file = Path(folder) / "checkpoints" / STATE
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    path = Path(folder) / "checkpoints" / state["checkpoint"]
    if not path.is_file():
        return None
    return state["epoch"], path, state.get("history", []), state.get("step", 0)
