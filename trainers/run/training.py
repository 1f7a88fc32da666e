"""Running a trainer: a new run into a new run folder, or an interrupted one resumed."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from builder.cli.native_logs import route_native_logs
from builder.language.train_section import TRAINERS, resolve_train

from ..errors import DataError
from .trainer import ResumePoint, Trainer, TrainingJob


def trainer_for(config: dict) -> Trainer:
    """The `Trainer` instance `train.trainer` names."""
    return TRAINERS.get(config["trainer"]).load()()


def run_training(spec_path=None, overrides=None, train_overrides=None, out="runs", resume=None,
                 verbose=1, extra_callbacks=(), cluster=None, check_expect=True, run_folder=None, record=None,
                 resume_hint=True):
    """Train a spec into a new run folder, or continue the run folder `resume`, on the devices
    `train.distribution` asks for, in the process group `cluster` (a
    `trainers.run.distribution.Cluster`; None: this process alone). Returns (run folder, test
    metrics); a process other than 0 returns (None, its metrics) and keeps no folder. A model
    that differs from the spec's `expect:` figures is refused unless `check_expect` is False.
    A new run's folder is `run_folder` when given (it must not exist yet), else a new
    OUT/SPEC_NAME/TIMESTAMP; `record` adds entries to its run.json (a search's trial). After
    Ctrl-C, the console says how to resume the run unless `resume_hint` is False (a search's trial
    is continued by the search)."""
    from builder import load_plugins, load_spec

    from .distribution import Cluster
    from .folder import last_checkpoint, read_run_record

    load_plugins()  # a resumed run may name a plugin's trainer before any spec is read
    cluster = cluster or Cluster()
    if resume is not None:
        folder = Path(resume)
        record = read_run_record(folder)
        state = last_checkpoint(folder)
        if state is None:
            raise DataError(f"{folder} has no completed epoch to resume from; start a new run")
        return _in_place(record["train"], cluster, verbose,
                         lambda trainer, placement, verbose: _resume(trainer, folder, record, state, placement,
                                                                     verbose, extra_callbacks))

    declared = load_spec(spec_path)
    config = resolve_train(declared.train, train_overrides, declared.file)
    params = {**config["params"], **(overrides or {})}
    spec = load_spec(spec_path, params) if params else declared
    return _in_place(config, cluster, verbose,
                     lambda trainer, placement, verbose: _new_run(trainer, spec, config, overrides, train_overrides,
                                                                  out, placement, verbose, extra_callbacks,
                                                                  check_expect, run_folder, record, resume_hint))


def _in_place(config: dict, cluster, verbose: int, run):
    """Set up the devices and process group (before the backend makes any tensor), run
    `run(trainer, placement, verbose)` in the placement's scope, and tidy a helper process's scratch
    folder away afterwards."""
    import shutil

    from .distribution import place

    trainer = trainer_for(config)
    if cluster.num_processes > 1 and not trainer.process_groups:
        raise DataError(f"the {config['trainer']} trainer trains in one process (its own steps or pictures are "
                        "not written for a group of processes); use --devices N on one machine")
    placement = place(config.get("distribution", {}).get("data_parallel"), cluster)  # the metric trainer has none
    if "batch_size" in config:
        placement.check_batch(config["batch_size"])
    chief = cluster.is_chief
    try:
        with placement.scope():
            folder, metrics = run(trainer, placement, verbose if chief else 0)
    finally:
        if placement.scratch is not None:
            shutil.rmtree(placement.scratch, ignore_errors=True)
    return (folder, metrics) if chief else (None, metrics)


def _resume(trainer, folder: Path, record: dict, state, placement, verbose: int, extra_callbacks):
    config = record["train"]
    point = ResumePoint(*state)
    _seed(config["seed"] + point.epoch, config)
    where = f"epoch {point.epoch} and {point.step} steps" if point.step else f"epoch {point.epoch}"
    if placement.cluster.is_chief:
        route_native_logs(folder / "native.log")
        print(f"resuming {folder} after {where} of {config['epochs']} ({placement.describe()})")
    models = trainer.resume_models(record["spec_file"], record["params"], point)
    writes = placement.write_folder(folder)
    job = TrainingJob(models, "main" if "main" in models else next(iter(models)), config, writes, point,
                      verbose, tuple(extra_callbacks), placement)
    with _resumable(folder):
        return writes, trainer.fit(job)


def _new_run(trainer, spec, config: dict, overrides, train_overrides, out, placement, verbose: int,
             extra_callbacks, check_expect: bool, run_folder, record, resume_hint: bool):
    import keras

    from builder import build_models

    from .folder import ensure_space, make_run_folder, new_run_folder, write_run_record

    chief = placement.cluster.is_chief
    # an unwritable --out fails before anything is built
    if not chief:
        folder = placement.write_folder(None)
    else:
        folder = make_run_folder(Path(run_folder)) if run_folder is not None else new_run_folder(out, spec.name)
    if chief:
        route_native_logs(folder / "native.log")
    _seed(config["seed"], config)
    policy = _dtype_policy(config)
    models = build_models(spec, check_expect=check_expect)
    model = models[spec.main]
    ensure_space(folder, model)
    write_run_record(folder, {
        "spec_file": str(Path(spec.file).resolve()),
        "spec_name": spec.name,
        "params": spec.params,
        "overrides": dict(overrides or {}),
        "train_overrides": dict(train_overrides or {}),
        "train": config,
        "backend": keras.backend.backend(),
        "versions": _versions(),
        "seed": config["seed"],
        "mixed_precision": policy,
        "devices": placement.record(),
        **(record or {}),
    }, spec.file)
    if chief:
        print(f"training {spec.name} ({model.count_params():,} params) on {config['data']['dataset']} "
              f"with {keras.backend.backend()}, {placement.describe()}; run folder: {folder}")
    job = TrainingJob(models, spec.main, config, folder, None, verbose, tuple(extra_callbacks), placement)
    with _resumable(folder, resume_hint):
        return folder, trainer.fit(job)


def evaluate_run(folder, config: dict) -> dict:
    """The test metrics of a run folder's model, by the trainer that trained it."""
    from .loop import load_trained_model

    return trainer_for(config).evaluate(load_trained_model(folder), config)


@contextlib.contextmanager
def _resumable(folder: Path, hint: bool = True):
    """On Ctrl-C, say what was kept and how to continue, then let the interrupt end the program."""
    try:
        yield
    except KeyboardInterrupt:
        if not hint:
            raise
        from .folder import last_checkpoint

        state = last_checkpoint(folder)
        if state:
            where = f"epoch {state[0]} and {state[3]} steps of the next" if state[3] else f"epoch {state[0]}"
            print(f"\ninterrupted; {where} is saved. Continue with: "
                  f"python -m builder train --resume {folder}", file=sys.stderr)
        else:
            print(f"\ninterrupted before the first epoch ended; nothing to resume in {folder}", file=sys.stderr)
        raise


def _seed(seed, config):
    """Seed everything; TensorFlow's deterministic ops rule out XLA, so an explicit
    `jit_compile: true` on TensorFlow trades bit-for-bit reproducibility for speed."""
    import keras

    from .determinism import set_seed

    requested = config.get("performance", {}).get("jit_compile", "auto")  # the adversarial trainer has none
    xla_on_tensorflow = keras.backend.backend() == "tensorflow" and requested is True
    if xla_on_tensorflow:
        print("note: jit_compile=true on TensorFlow turns off deterministic ops; reruns may differ slightly")
    set_seed(seed, deterministic_ops=not xla_on_tensorflow)


def _dtype_policy(config: dict) -> str:
    """Set Keras's dtype policy from `performance.mixed_precision` (`auto`: what the GPU supports,
    float32 on a CPU), after warning when an NVIDIA GPU sits unused behind CPU-only wheels."""
    import keras

    from builder.tools.devices import cpu_only_warning, resolve_mixed_precision

    warning = cpu_only_warning((keras.backend.backend(),))
    if warning:
        print(warning, file=sys.stderr)
    requested = config.get("performance", {}).get("mixed_precision", "float32")
    policy = resolve_mixed_precision(requested, keras.backend.backend())
    if requested == "auto":
        print(f"mixed_precision auto: {policy}")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _versions():
    from builder.tools.devices import library_versions

    return library_versions()
