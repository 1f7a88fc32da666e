"""Searching a spec's params and `train:` settings on Optuna (the `tune` command): the trial that
trains one run (objective), the study on a shared storage (study), and what a study leaves for
people to act on (results). Optuna is imported only when a study runs."""
