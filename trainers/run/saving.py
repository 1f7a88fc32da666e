"""How every command writes and reads `.keras` files, in one place.

Two kinds of file, with different needs:
- **Models** (a run's `model.keras`, `generator.keras`, `discriminator.keras`, an ensemble's
  `model.keras`): the network alone, its layers and weights, without the optimizer, its
  learning-rate schedule, the loss or the metrics it was trained with. They load anywhere with
  `import layers` (our custom layers) and `keras.saving.load_model(path)`; the commands compile
  what they evaluate from the run's `train:` section.
- **Checkpoints** (`checkpoints/epoch_*.keras`): the model as it trains, with its optimizer state,
  schedule and loss (a trainer's wrapper model too, such as the VAE's), so that a run resumes
  exactly. Their classes live in the trainers: `import trainers` and `trainers.load_model(path)`.
"""

from __future__ import annotations

from pathlib import Path

import keras


def inference_model(model):
    """`model` without its training state: a Functional copy over the same layers (and so the same
    weights), never compiled. A trainer's wrapper gives its `network`."""
    model = getattr(model, "network", model)
    if not model.compiled and getattr(model, "optimizer", None) is None:
        return model
    return keras.Model(model.input, model.output, name=model.name)


def save_model(model, path: str | Path) -> None:
    """Write `model`'s network as a `.keras` file that loads with `import layers` alone."""
    inference_model(model).save(path)


def register_training_classes() -> None:
    """Import every registered trainer (and so register the Keras classes its checkpoints hold:
    schedules, losses, wrapper models), plugins' trainers too."""
    import layers  # noqa: F401  (our custom layers)
    from builder.language.train_section import TRAINERS

    for _, entry in TRAINERS.items():
        entry.load()


def load_model(path: str | Path, training_state: bool = False):
    """A `.keras` file as Keras loads it, our classes registered first. Without `training_state`
    the file's optimizer, loss and metrics are not rebuilt (any model or checkpoint loads for
    inference); with it, a checkpoint comes back compiled, to resume training."""
    register_training_classes()
    return keras.saving.load_model(path, compile=training_state)
