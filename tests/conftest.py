import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import builder

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
ZOO = sorted(SPECS.glob("*.yaml"))

# A command in a new process: `[*BUILDER, "train", ...]` runs `python -m builder train ...`, and
# `[*PYTHON, "-c", code]` runs `python -c code`, through the session's command server (below).
PYTHON = [sys.executable, str(ROOT / "tests" / "fresh_command.py")]
BUILDER = [*PYTHON, "-m", "builder"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _share_jax_compilations() -> None:
    """One persistent XLA compilation cache for this run of the suite: its xdist workers and every
    `python -m builder` process the tests start inherit it, so a model or step already compiled by
    one process (a variable's initializer, a train step of the same shape) is read back instead of
    compiled again. The cache starts empty each run, so no result comes from an earlier run, and
    JAX keys its entries by the computation, its backend and its version. Set before JAX is imported."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # a worker, or a user's own cache
    folder = tempfile.mkdtemp(prefix="keras-blueprint-tests-xla-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the default, 1 s, skips most of a test's
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


def _compile_quickly(one_thread: bool) -> None:
    """The suite's models are tiny and run a few steps, so compiling them dominates: XLA's
    backend optimisation level 0 makes a tiny training run take about two thirds of the time, and
    computes the same operations (it skips LLVM's optimising passes, not IEEE semantics). For the test
    processes and every `python -m builder` process they start; a user's own XLA_FLAGS win."""
    flags = "--xla_backend_optimization_level=0"
    if one_thread:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ.setdefault("XLA_FLAGS", flags)


def _one_thread_for_operations() -> None:
    """With a test process per core, a process that also splits its operations over every core only
    contends with the others: on the 2-core CI machine one thread each for TensorFlow's and XLA's
    operations ran a training-heavy test module 12 % faster on both backends."""
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, "1")


def pytest_configure(config):
    """The environment of the test processes and of the commands they start. Set here, before any
    test module imports a backend: pytest-xdist's workers start after this and inherit it."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    processes = getattr(config.option, "numprocesses", None)
    one_thread = isinstance(processes, int) and processes >= (os.cpu_count() or 1)  # `-n 2` on 2 cores
    _compile_quickly(one_thread)
    if one_thread:
        _one_thread_for_operations()


_share_jax_compilations()
builder.load_plugins()  # the trainers plugin fills the trainer registry, as the CLI and API do


SERVED_BACKENDS = ("tensorflow", "jax")


@pytest.fixture(scope="session", autouse=True)
def command_server():
    """Each test process's command servers (tests/command_server.py): one per backend, each has
    imported TensorFlow and Keras on its backend once and forks every command the tests start
    through `BUILDER` and `PYTHON` on that backend, so a command skips those 5-9 s of imports and
    still imports all of this project itself. The suite's own backend comes first; the other serves
    the commands that choose theirs (`export` always loads on TensorFlow, `--backend jax`).
    BLUEPRINT_TEST_PLAIN_INTERPRETERS=1 starts a plain interpreter for every command instead."""
    if os.environ.get("BLUEPRINT_TEST_PLAIN_INTERPRETERS"):
        yield
        return
    suite = backend()
    folder = tempfile.mkdtemp(prefix="blueprint-commands-")  # short: a socket's path has ~100 bytes
    servers, addresses = [], []
    for served in [suite, *(name for name in SERVED_BACKENDS if name != suite)]:
        address = os.path.join(folder, served)
        Path(address + ".starting").touch()
        with open(address + ".log", "wb") as log:
            servers.append(subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "command_server.py"), address], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                env=os.environ if served == suite else {**os.environ, "KERAS_BACKEND": served}))
        addresses.append(address)
    os.environ["BLUEPRINT_TEST_COMMAND_SERVER"] = os.pathsep.join(addresses)
    try:
        yield
    finally:
        del os.environ["BLUEPRINT_TEST_COMMAND_SERVER"]
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


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


def forward(model, inputs) -> list:
    """The model's outputs in inference mode, as NumPy arrays. On JAX one compiled call: eagerly,
    JAX compiles each operation of the network on its own, which takes several times longer for
    the zoo's networks; TensorFlow runs the ops eagerly at once, sooner than it traces a graph."""
    import keras

    if keras.backend.backend() == "jax":
        outputs = model.predict_on_batch(inputs)
    else:
        outputs = model(inputs, training=False)
    return [keras.ops.convert_to_numpy(out) for out in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


ONCE = ("backend_free", "backends_named", "backend_agnostic")


def pytest_collection_finish(session):
    """A module whose tests share trained runs (`xdist_group`) must stay on one worker, else each
    worker trains them again and the suite takes far longer while staying green. pytest-xdist marks
    a test's group in its node id; refuse to run, naming the cause, when that mark is lost."""
    if not getattr(session.config.option, "loadgroup", False):  # not an xdist worker under --dist loadgroup
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        message = (f"pytest-xdist did not group {len(lost)} tests marked xdist_group (first: {lost[0]}): "
                   "this pytest and pytest-xdist do not work together (pytest-dev/pytest-xdist#1386); "
                   "install the pytest version pyproject.toml's test extra names")
        print(message, file=sys.__stderr__)  # a worker's exception reaches the console only as xdist's INTERNALERROR
        raise pytest.UsageError(message)


def pytest_collection_modifyitems(config, items):
    """Tests marked `backend_free` (the spec language's schema, the house rules, the install, the
    docs' text) never touch a Keras backend, tests marked `backends_named` choose their backends
    themselves, and tests marked `backend_agnostic` check code above the backend (a study's sampling
    and records) through runs that other tests train on both, so the JAX run of the suite would
    repeat them unchanged: they run in the TensorFlow run only."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        return
    repeated = [item for item in items if any(item.get_closest_marker(name) for name in ONCE)]
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        items[:] = [item for item in items if item not in repeated]
