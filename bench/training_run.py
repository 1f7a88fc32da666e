"""What the training benchmarks share: `--backend` and `--out`, and a process set up for them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_training_args(description: str, extra=None) -> argparse.Namespace:
    """Parse `--backend` and `--out` (plus what `extra(parser)` adds), then select the backend
    before anything imports Keras and make the project importable."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=("tensorflow", "jax"),
                        default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    if extra:
        extra(parser)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    return args
