"""The CLI commands of the training layer, contributed to `builder.cli`'s command registry when
the `trainers` plugin loads: the top floor, importing the families and after-training tools
only when a command runs."""

from . import data, embeddings, explanations, models, search, training  # noqa: F401  (each registers its commands)
