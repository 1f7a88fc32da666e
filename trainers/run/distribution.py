"""Data-parallel training on the backends' own engines: `keras.distribution.DataParallel` on
JAX, `tf.distribute.MirroredStrategy` on TensorFlow; several processes through
`keras.distribution.initialize` (JAX).

`place` runs before the backend creates its first tensor: it sets up virtual CPU devices when
asked for more devices than a CPU-only machine has, joins the process group, and returns a
`Placement`, whose `scope()` the models are built and trained in.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras

from ..errors import DataError, TrainingFault

# Keras's own names for the process group (`keras.distribution.initialize` reads them too).
ENV_COORDINATOR = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
CONNECT_TIMEOUT_S = 60
# Upstream: Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585).
TF_MULTI_WORKER_ISSUE = "https://github.com/keras-team/keras/issues/20585"


@dataclass(frozen=True)
class Cluster:
    """The process group one run trains in: one process unless a coordinator is named."""

    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0
    timeout_s: int = CONNECT_TIMEOUT_S

    @classmethod
    def of(cls, coordinator=None, num_processes=None, process_id=None, timeout_s=None, environ=None) -> Cluster:
        """From the CLI's values, each falling back to Keras's environment variable."""
        environ = os.environ if environ is None else environ
        coordinator = coordinator or environ.get(ENV_COORDINATOR) or None
        processes = _integer(num_processes, environ.get(ENV_NUM_PROCESSES), "--num-processes", 1)
        process_id = _integer(process_id, environ.get(ENV_PROCESS_ID), "--process-id", 0)
        if processes < 1:
            raise DataError(f"--num-processes {processes}: must be at least 1")
        if processes > 1 and not coordinator:
            raise DataError(f"--num-processes {processes} needs --coordinator HOST:PORT (process 0's address)")
        if not 0 <= process_id < processes:
            raise DataError(f"--process-id {process_id}: must be from 0 to {processes - 1} "
                            f"for --num-processes {processes}")
        if coordinator and ":" not in coordinator:
            raise DataError(f"--coordinator {coordinator}: expected HOST:PORT")
        return cls(coordinator if processes > 1 else None, processes, process_id,
                   CONNECT_TIMEOUT_S if timeout_s is None else int(timeout_s))

    @property
    def is_chief(self) -> bool:
        """Process 0 writes the run folder; the others train beside it."""
        return self.process_id == 0


def _integer(value, fallback, flag: str, default: int) -> int:
    chosen = value if value is not None else fallback
    if chosen in (None, ""):
        return default
    try:
        return int(chosen)
    except ValueError:
        raise DataError(f"{flag} {chosen}: expected a whole number") from None


@dataclass
class Placement:
    """Where a run trains: how many devices (replicas, over all processes), in which process
    group, and the engine that spreads each batch over them (None: one device, no engine)."""

    replicas: int = 1
    cluster: Cluster = field(default_factory=Cluster)
    engine: object = None
    kind: str = "cpu"
    backend: str = "tensorflow"
    scratch: Path | None = None  # a helper process's folder, removed when the run ends

    @property
    def distributed(self) -> bool:
        return self.engine is not None

    def scope(self):
        """Build the models and run the trainer inside this: variables (the models', the
        optimizers', the metrics') are created mirrored over the devices (TensorFlow) or laid
        out over the mesh (JAX), and each batch of `fit` is split over them."""
        return self.engine.scope() if self.engine is not None else contextlib.nullcontext()

    def whole_batches(self):
        """Evaluate or predict inside this: on JAX in one process, with the weights replicated
        and every batch whole, so a last batch that the devices cannot split evenly still
        counts. (TensorFlow's strategy splits uneven batches itself.)"""
        return _without_distribution() if self._replicated_evaluation else contextlib.nullcontext()

    @property
    def _replicated_evaluation(self) -> bool:
        """JAX in one process evaluates with the weights replicated and whole batches."""
        return self.distributed and self.backend == "jax" and not self.group

    @property
    def group(self) -> bool:
        """Several processes train together. They evaluate in whole global batches (each feeds its
        part of every batch): the last partial batch of a validation or test split is left out,
        and the test metrics count the images evaluated."""
        return self.distributed and self.cluster.num_processes > 1

    def outside(self):
        """Keras's distribution off: models loaded in here are this process's alone."""
        return _without_distribution() if self.backend == "jax" and self.distributed else contextlib.nullcontext()

    def training_done(self) -> None:
        """After the last `fit`: what is left of a run (test metrics, pictures) sees whole
        batches, as in `whole_batches`; leaving `scope()` sets the distribution back."""
        if self._replicated_evaluation:
            keras.distribution.set_distribution(None)

    def fit_callbacks(self) -> list:
        """On JAX in one process, validation runs with the weights replicated and each batch
        whole, so a last batch that the devices cannot split evenly still counts."""
        return [WholeBatchEvaluation()] if self._replicated_evaluation else []

    def check_batch(self, batch_size: int) -> None:
        if self.distributed and batch_size % self.replicas:
            lower = batch_size - batch_size % self.replicas
            options = " or ".join(str(n) for n in (lower, lower + self.replicas) if n)
            raise DataError(f"batch_size {batch_size} does not split evenly over {self.replicas} devices; "
                            f"the batch size is global, so use a multiple of {self.replicas} ({options})")

    def describe(self) -> str:
        if not self.distributed:
            return "one device"
        where = f" in {self.cluster.num_processes} processes" if self.cluster.num_processes > 1 else ""
        return f"data parallel over {self.replicas} {self.kind.upper()} devices{where}"

    def record(self) -> dict:
        """What run.json keeps."""
        return {"data_parallel": self.replicas if self.distributed else None, "device_kind": self.kind,
                "processes": self.cluster.num_processes}

    def write_folder(self, folder: Path | None) -> Path | None:
        """Where this process writes: the run folder for process 0 (None: make a new one), a
        scratch folder for the others (their checkpoints and pictures would only repeat
        process 0's), holding a copy of the run record of `folder` when resuming."""
        if self.cluster.is_chief:
            return folder
        scratch = self.scratch = Path(tempfile.mkdtemp(prefix=f"keras-blueprint-process{self.cluster.process_id}-"))
        (scratch / "checkpoints").mkdir()
        for name in ("run.json", "spec.yaml"):
            if folder is not None and (Path(folder) / name).is_file():
                shutil.copyfile(Path(folder) / name, scratch / name)
        return scratch


def place(requested, cluster: Cluster | None = None) -> Placement:
    """The placement `train.distribution.data_parallel` asks for (`auto`, a device count per
    process, or None for one device), set up before the backend creates any tensor."""
    cluster = cluster or Cluster()
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise TrainingFault(f"data-parallel training is wired for JAX and TensorFlow, not {backend}")
    if cluster.num_processes > 1:
        if backend == "tensorflow":
            raise TrainingFault(
                "several processes need the JAX backend (KERAS_BACKEND=jax): Keras 3's fit fails under "
                f"TensorFlow's MultiWorkerMirroredStrategy ({TF_MULTI_WORKER_ISSUE}); on one machine, "
                "--devices N uses TensorFlow's MirroredStrategy")
        _join(cluster)
    if requested is None and cluster.num_processes == 1:
        return Placement(cluster=cluster, kind=_accelerator_kind(backend), backend=backend)
    count = None if requested in (None, "auto") else int(requested)
    local, kind = (_jax_devices if backend == "jax" else _tensorflow_devices)(count)
    if requested == "auto" and len(local) == 1 and cluster.num_processes == 1:
        return Placement(cluster=cluster, kind=kind, backend=backend)  # nothing to spread over
    if backend == "jax":
        import jax

        devices = [device for device in jax.devices()
                   if sum(other.process_index == device.process_index and other.id < device.id
                          for other in jax.devices()) < len(local)]  # the first N of every process
        engine = keras.distribution.DataParallel(devices=devices)
        replicas = len(devices)
    else:

        engine = _mirrored_strategy(tuple(device.name for device in local))
        replicas = engine.num_replicas_in_sync
    return Placement(replicas, cluster, engine, kind, backend)


@contextlib.contextmanager
def _without_distribution():
    during = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(during)


class WholeBatchEvaluation(keras.callbacks.Callback):
    """Turns the distribution off while `fit` validates, and on again for the next epoch."""

    def on_test_begin(self, logs=None):
        self.during_fit = keras.distribution.distribution()
        keras.distribution.set_distribution(None)

    def on_test_end(self, logs=None):
        keras.distribution.set_distribution(self.during_fit)


@functools.cache
def _mirrored_strategy(devices: tuple):
    """One strategy per set of devices for the life of the process: a second MirroredStrategy
    over the same CPU devices collides with the first's collective operations. One device gets
    TensorFlow's strategy for one device, which has no all-reduce to set up. (On a CPU it costs
    ResNet-50 2-3 % a step against no strategy, and each `fit` about 0.1 s to make its
    distributed input iterator; bench/scaling.py.)"""
    import tensorflow as tf

    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(list(devices))


def _join(cluster: Cluster) -> None:
    """Join the group. JAX aborts the whole process (a C++ fatal error, no Python exception) when
    the coordinator cannot be reached, so the other processes first wait for its port to open,
    and give up with one line naming it."""
    import jax
    from jax.experimental import multihost_utils

    if not cluster.is_chief:
        _wait_for(cluster)
    with _native_output_to_stderr():
        jax.distributed.initialize(coordinator_address=cluster.coordinator, num_processes=cluster.num_processes,
                                   process_id=cluster.process_id, initialization_timeout=cluster.timeout_s)
        # The processes connect at their first computation together: this one, a barrier.
        multihost_utils.sync_global_devices("keras-blueprint: the group has joined")


@contextlib.contextmanager
def _native_output_to_stderr():
    """Gloo, which connects JAX's processes on CPUs, announces each connection from C++ on standard
    output; sent to standard error, the command line keeps it off the console with the backends'
    other native lines (in the run's native.log)."""
    sys.stdout.flush()
    console = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's buffer of standard output, which C++ writes through
        os.dup2(console, 1)
        os.close(console)


def _wait_for(cluster: Cluster) -> None:
    host, _, port = cluster.coordinator.rpartition(":")
    deadline = time.monotonic() + cluster.timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except (OSError, ValueError) as error:
            if time.monotonic() >= deadline:
                raise TrainingFault(f"process {cluster.process_id} could not reach the coordinator at "
                                    f"{cluster.coordinator} within {cluster.timeout_s} s ({error}); start process 0 "
                                    "there first, and check the address and port") from None
            time.sleep(0.5)


def _accelerator_kind(backend: str) -> str:
    if backend == "jax":
        import jax

        return jax.local_devices()[0].platform
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def _too_many(count: int, have: int, kind: str) -> DataError:
    return DataError(f"--devices {count}: this process sees {have} {kind.upper()} device{'s' * (have != 1)}; "
                     f"ask for at most {have}, or auto")


def _jax_devices(count: int | None) -> tuple[list, str]:
    """This process's devices to train on: accelerators if there are any, else the CPU, split
    into `count` virtual devices (to exercise the distributed path, not to go faster)."""
    import jax

    if count and count > 1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:  # the CPU backend was already started: its device count is fixed
            pass
    local = jax.local_devices()
    kind = local[0].platform
    if count is None:
        return local, kind
    if count > len(local):
        raise _too_many(count, len(local), kind)
    return local[:count], kind


def _tensorflow_devices(count: int | None) -> tuple[list, str]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and count and count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:  # TensorFlow already started: its devices are fixed
            pass
    kind = "GPU" if gpus else "CPU"
    local = tf.config.list_logical_devices(kind)
    if count is None:
        return local, kind.lower()
    if count > len(local):
        raise _too_many(count, len(local), kind)
    return local[:count], kind.lower()


def per_replica(loss):
    """Under a TensorFlow distribution strategy each replica's share of the loss: Keras sums the
    replicas' gradients, and its own losses divide by the replica count, so an overridden
    `compute_loss` must too. (On JAX the step is one program over the global batch.)"""
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    return loss / tf.distribute.get_strategy().num_replicas_in_sync
