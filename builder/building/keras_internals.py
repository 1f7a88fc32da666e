"""The one place Keras Blueprint uses Keras internals, because no public API does this.

`build_models` creates variables inside `keras.StatelessScope(initialize_variables=False)` so a
spec's parameter count is known before any weight memory is allocated. Keras queues such
variables in a global list and initializes them all at once; to initialize exactly one build's
variables (or drop them when the build is refused), the queue is swapped around the build. The
test `tests/test_keras_internals.py` fails loudly if a Keras release moves these names.
"""

from __future__ import annotations

import contextlib

from keras.src.backend.common import global_state, variables

_QUEUE = "uninitialized_variables"


@contextlib.contextmanager
def own_deferred_variables():
    """Collect the variables deferred inside this block in a queue of their own; other pending
    variables are put back afterwards, untouched."""
    others = list(global_state.get_global_attribute(_QUEUE, []) or [])
    global_state.set_global_attribute(_QUEUE, [])
    try:
        yield
    finally:
        global_state.set_global_attribute(_QUEUE, others)


def initialize_deferred_variables() -> None:
    """Allocate and initialize the variables deferred so far (inside `own_deferred_variables`)."""
    variables.initialize_all_variables()
