"""The run floor, shared by every trainer: the `Trainer` interface, settings and their schemas, the
shared Keras loop and its callbacks, the run folder, resume after interruption, optimizers and
schedules, distribution over devices, determinism, saving and loading, and the run's plots.
Imports the data floor, never a family of trainers."""
