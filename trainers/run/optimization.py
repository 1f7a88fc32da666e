"""Optimizers and learning-rate schedules from the `train:` section."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="blueprint")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to the wrapped schedule's value over `warmup_steps`, then that schedule."""

    def __init__(self, schedule, warmup_steps):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        after = self.schedule(keras.ops.maximum(step - self.warmup_steps, 0.0))
        ramp = after * (step + 1.0) / float(max(self.warmup_steps, 1))
        return keras.ops.where(step < self.warmup_steps, ramp, after)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["warmup_steps"])


@keras.saving.register_keras_serializable(package="blueprint")
class Constant(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, value):
        self.value = float(value)

    def __call__(self, step):
        return keras.ops.full((), self.value, "float32")

    def get_config(self):
        return {"value": self.value}


def constant_schedule(learning_rate, steps_per_epoch, epochs, settings):
    return Constant(learning_rate)


def cosine_schedule(learning_rate, steps_per_epoch, epochs, settings):
    total = max(1, steps_per_epoch * epochs - _warmup_steps(settings, steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(learning_rate, total, alpha=settings.get("final_fraction", 0.0))


def step_schedule(learning_rate, steps_per_epoch, epochs, settings):
    every = settings.get("every_epochs", max(1, epochs // 3)) * steps_per_epoch
    factor = settings.get("factor", 0.1)
    # Keras keeps values[i] while step <= boundary: drop at the first step of the next epoch.
    boundaries = [b - 1 for b in range(every, steps_per_epoch * epochs, every)]
    if not boundaries:
        return Constant(learning_rate)
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [learning_rate * factor ** i for i in range(len(boundaries) + 1)])


def exponential_schedule(learning_rate, steps_per_epoch, epochs, settings):
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, steps_per_epoch,
                                                       settings.get("factor_per_epoch", 0.9))


def _warmup_steps(settings: dict, steps_per_epoch: int) -> int:
    return int(round(settings.get("warmup_epochs", 0) * steps_per_epoch))


def make_schedule(config: dict, learning_rate: float, steps_per_epoch: int, epochs: int):
    """The schedule `{name: settings}` names (trainers.registries.SCHEDULES), with its warm-up."""
    from ..registries import SCHEDULES

    (name, settings), = config.items()
    settings = settings or {}
    schedule = SCHEDULES.get(name).make(learning_rate, steps_per_epoch, epochs, settings)
    warmup = _warmup_steps(settings, steps_per_epoch)
    return WarmUp(schedule, warmup) if warmup else schedule


def make_optimizer(config: dict, schedule_config: dict, steps_per_epoch: int, epochs: int):
    """The optimizer `{name: settings}` names (trainers.registries.OPTIMIZERS) on its schedule."""
    from ..registries import OPTIMIZERS

    (name, settings), = config.items()
    settings = dict(settings or {})
    learning_rate = settings.pop("learning_rate", 1e-3)
    schedule = make_schedule(schedule_config, learning_rate, steps_per_epoch, epochs)
    return OPTIMIZERS.get(name).make(learning_rate=schedule, **settings)
