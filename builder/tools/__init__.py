"""Tools over specs: `compare` across backends, and spec mutations for fuzzing."""
