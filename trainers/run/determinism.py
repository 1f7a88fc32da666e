"""Same seed, same backend, same result."""

from __future__ import annotations


def set_seed(seed: int, deterministic_ops: bool = True) -> None:
    """Seed every generator and make TensorFlow's ops deterministic (tf.data feeds every backend,
    so TensorFlow's determinism matters on JAX too); `deterministic_ops=False` turns them off."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    else:  # a process-wide switch: an earlier run in this process may have turned it on
        from .tensorflow_internals import disable_op_determinism

        disable_op_determinism()
