"""Training strategies, data loading and run folders.

One registry maps `train.trainer` to a trainer module exposing
`fit(model, config, folder, initial_epoch=0, history=None, verbose=1) -> metrics`, or, for a
trainer of several networks (adversarial), `fit_models(models, config, folder, verbose)` and
`resume(models, config, folder, state, verbose)` over every model of the spec by name.
Importing this package does not import Keras; `run_training` does.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path


def _supervised():
    from . import supervised

    return supervised


def _reconstruction():
    from . import reconstruction

    return reconstruction


def _segmentation():
    from . import segmentation

    return segmentation


def _adversarial():
    from . import adversarial

    return adversarial


def _vae():
    from . import vae

    return vae


# `train.trainer` -> a function importing the trainer module (Keras loads only when one is used).
# The train section's schema takes its list of trainer names from here.
TRAINERS = {"supervised": _supervised, "reconstruction": _reconstruction, "segmentation": _segmentation,
            "vae": _vae, "adversarial": _adversarial}


def _trainer(name: str):
    return TRAINERS[name]()


def run_training(spec_path=None, overrides=None, train_overrides=None, out="runs", resume=None,
                 verbose=1, extra_callbacks=()):
    """Train a spec into a new run folder, or continue the run folder `resume`. Returns
    (run folder, test metrics)."""
    import keras

    import layers  # noqa: F401  (our custom layers, for loading checkpoints)
    from builder import build_model, load_spec
    from builder.train_section import resolve_train

    from . import optimization  # noqa: F401  (registers our schedules, for loading checkpoints)
    from .errors import DataError
    from .run_folder import ensure_space, last_checkpoint, new_run_folder, read_run_record, write_run_record

    if resume is not None:
        folder = Path(resume)
        record = read_run_record(folder)
        state = last_checkpoint(folder)
        if state is None:
            raise DataError(f"{folder} has no completed epoch to resume from; start a new run")
        config = record["train"]
        trainer = _trainer(config["trainer"])
        _seed(config["seed"] + state[0], config)
        print(f"resuming {folder} after epoch {state[0]} of {config['epochs']}")
        with _resumable(folder):
            if hasattr(trainer, "resume"):  # trainers of several networks rebuild them from the spec
                from builder import build_models

                models = build_models(load_spec(record["spec_file"], record["params"]))
                return folder, trainer.resume(models, config, folder, state, verbose=verbose)
            model = keras.saving.load_model(state[1])
            metrics = trainer.fit(model, config, folder, initial_epoch=state[0], history=state[2],
                                  verbose=verbose, extra_callbacks=extra_callbacks)
        return folder, metrics

    declared = load_spec(spec_path)
    config = resolve_train(declared.train, train_overrides, str(spec_path))
    params = {**config["params"], **(overrides or {})}
    spec = load_spec(spec_path, params) if params else declared
    trainer = _trainer(config["trainer"])
    folder = new_run_folder(out, spec.name)  # an unwritable --out fails before anything is built
    _seed(config["seed"], config)
    keras.mixed_precision.set_global_policy(config["performance"]["mixed_precision"])
    if hasattr(trainer, "fit_models"):  # a trainer of several networks (generator and discriminator)
        from builder import build_models

        models = build_models(spec)
        model = models[spec.main]
    else:
        model = build_model(spec)
    ensure_space(folder, model)
    write_run_record(folder, {
        "spec_file": str(Path(spec_path).resolve()),
        "spec_name": spec.name,
        "params": spec.params,
        "overrides": dict(overrides or {}),
        "train_overrides": dict(train_overrides or {}),
        "train": config,
        "backend": keras.backend.backend(),
        "versions": _versions(),
        "seed": config["seed"],
    }, str(spec_path))
    print(f"training {spec.name} ({model.count_params():,} params) on {config['data']['dataset']} "
          f"with {keras.backend.backend()}; run folder: {folder}")
    with _resumable(folder):
        if hasattr(trainer, "fit_models"):
            return folder, trainer.fit_models(models, config, folder, verbose=verbose)
        metrics = trainer.fit(model, config, folder, verbose=verbose, extra_callbacks=extra_callbacks)
    return folder, metrics


@contextlib.contextmanager
def _resumable(folder: Path):
    """On Ctrl-C, say what was kept and how to continue, then let the interrupt end the program."""
    try:
        yield
    except KeyboardInterrupt:
        from .run_folder import last_checkpoint

        state = last_checkpoint(folder)
        if state:
            print(f"\ninterrupted; epoch {state[0]} is saved. Continue with: "
                  f"python -m builder train --resume {folder}", file=sys.stderr)
        else:
            print(f"\ninterrupted before the first epoch ended; nothing to resume in {folder}", file=sys.stderr)
        raise


def _seed(seed, config):
    """Seed everything; TensorFlow's deterministic ops rule out XLA, so an explicit
    `jit_compile: true` on TensorFlow trades bit-for-bit reproducibility for speed."""
    import keras

    from .supervised import set_seed

    requested = config.get("performance", {}).get("jit_compile", "auto")  # older run folders lack it
    xla_on_tensorflow = keras.backend.backend() == "tensorflow" and requested is True
    if xla_on_tensorflow:
        print("note: jit_compile=true on TensorFlow turns off deterministic ops; reruns may differ slightly")
    set_seed(seed, deterministic_ops=not xla_on_tensorflow)


def _versions():
    from .run_folder import library_versions

    return library_versions()
