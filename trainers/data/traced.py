"""Functions handed to tf.data, traced as written."""

from __future__ import annotations

from collections.abc import Callable


def as_written(function: Callable) -> Callable:
    """`function` for tf.data to trace without AutoGraph's rewrite of its Python control flow. Ours
    branch on Python values only (the spec's and the split's settings), never on a tensor, and
    converting the source of every map function cost about a second at each command's start."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)
