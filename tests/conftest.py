import os
import textwrap
from pathlib import Path

import pytest

import builder

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
ZOO = sorted(SPECS.glob("*.yaml"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
builder.load_plugins()  # the trainers plugin fills the trainer registry, as the CLI and API do


@pytest.fixture
def write_spec(tmp_path):
    """Write a dedented YAML text to a temporary spec file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def backend() -> str:
    import keras

    return keras.backend.backend()


def pytest_collection_modifyitems(config, items):
    """Tests marked `backend_free` (the spec language's schema, the house rules, the install, the
    docs' text) never touch a Keras backend, so the JAX run of the suite would repeat them
    unchanged: they run in the TensorFlow run only."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        return
    repeated = [item for item in items if item.get_closest_marker("backend_free")]
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        items[:] = [item for item in items if not item.get_closest_marker("backend_free")]
