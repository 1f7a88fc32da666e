"""The one place `trainers` uses a TensorFlow internal, because no public API does this.

TensorFlow's public API can turn deterministic ops on (`tf.config.experimental.
enable_op_determinism`) but not off again, and the switch is process-wide: after one
deterministic run, a run that asks for XLA on TensorFlow (`jit_compile: true`, which
deterministic ops rule out) in the same process must turn it off. The module Keras itself reads
this switch from holds the only way to do that. `tests/test_internals.py` fails loudly if a
TensorFlow release moves it.
"""

from __future__ import annotations

from tensorflow.python.framework import config as _tf_config


def disable_op_determinism() -> None:
    _tf_config.disable_op_determinism()
