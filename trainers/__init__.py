"""Training strategies, data loading and run folders.

One registry maps `train.trainer` to a trainer module exposing
`fit(model, config, folder, initial_epoch=0, history=None, verbose=1) -> metrics`.
Importing this package does not import Keras; `run_training` does.
"""

from __future__ import annotations

from pathlib import Path

def _supervised():
    from . import supervised

    return supervised


# `train.trainer` -> a function importing the trainer module (Keras loads only when one is used).
# The train section's schema takes its list of trainer names from here.
TRAINERS = {"supervised": _supervised}


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
    from .run_folder import last_checkpoint, new_run_folder, read_run_record, write_run_record

    if resume is not None:
        folder = Path(resume)
        record = read_run_record(folder)
        state = last_checkpoint(folder)
        if state is None:
            raise DataError(f"{folder} has no completed epoch to resume from; start a new run")
        config = record["train"]
        trainer = _trainer(config["trainer"])
        _seed(config["seed"] + state[0])
        model = keras.saving.load_model(state[1])
        print(f"resuming {folder} after epoch {state[0]} of {config['epochs']}")
        metrics = trainer.fit(model, config, folder, initial_epoch=state[0], history=state[2], verbose=verbose,
                              extra_callbacks=extra_callbacks)
        return folder, metrics

    declared = load_spec(spec_path)
    config = resolve_train(declared.train, train_overrides, str(spec_path))
    params = {**config["params"], **(overrides or {})}
    spec = load_spec(spec_path, params)
    trainer = _trainer(config["trainer"])
    _seed(config["seed"])
    model = build_model(spec)
    folder = new_run_folder(out, spec.name)
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
    metrics = trainer.fit(model, config, folder, verbose=verbose, extra_callbacks=extra_callbacks)
    return folder, metrics


def _seed(seed):
    from .supervised import set_seed

    set_seed(seed)


def _versions():
    from .run_folder import library_versions

    return library_versions()
