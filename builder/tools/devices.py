"""What this machine can run on: the backend, library versions, the devices each backend sees,
and whether an NVIDIA GPU sits unused because the installed wheels are CPU-only.

Backends are imported only when asked for (`devices` imports both; `train` checks its own).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

CUDA_INSTALL = 'python -m pip install -e ".[cuda]"'
LIBRARIES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin",
             "numpy")


def nvidia_gpu_present() -> bool:
    """An NVIDIA driver is installed (what the CUDA wheels need), whatever the wheels are."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def backend_devices(backend: str) -> list[str]:
    """The devices `backend` ("tensorflow" or "jax") sees, as "KIND:index name" strings."""
    if importlib.util.find_spec(backend) is None:
        return []
    if backend == "jax":
        import jax

        return [f"{device.platform.upper()}:{device.id} {getattr(device, 'device_kind', '')}".rstrip()
                for device in jax.devices()]
    import tensorflow as tf

    return [f"{device.device_type}:{device.name.rsplit(':', 1)[-1]}" for device in tf.config.list_physical_devices()]


def sees_gpu(backend: str) -> bool:
    return any(device.startswith(("GPU", "CUDA")) for device in backend_devices(backend))


def cpu_only_warning(backends=("tensorflow", "jax")) -> str | None:
    """A warning when an NVIDIA GPU is present but the installed backend wheels cannot use it."""
    if not nvidia_gpu_present():
        return None
    blind = [name for name in backends if importlib.util.find_spec(name) is not None and not sees_gpu(name)]
    if not blind:
        return None
    return (f"warning: an NVIDIA GPU is present but {' and '.join(blind)} "
            f"{'sees' if len(blind) == 1 else 'see'} only the CPU (CPU-only wheels); "
            f"install the CUDA builds with: {CUDA_INSTALL}")


def policy_for_capability(capability: tuple | None) -> str:
    """The Keras dtype policy `mixed_precision: auto` picks for a CUDA compute capability:
    bfloat16 from Ampere (8.0) on, float16 on Volta and Turing (7.x), float32 otherwise."""
    if capability is None:
        return "float32"
    if tuple(capability) >= (8, 0):
        return "mixed_bfloat16"
    if tuple(capability) >= (7, 0):
        return "mixed_float16"
    return "float32"


def gpu_compute_capability(backend: str) -> tuple | None:
    """The first GPU's compute capability as the current backend sees it, or None without one."""
    if backend == "jax":
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        capability = getattr(gpus[0], "compute_capability", None) if gpus else None
        return tuple(int(part) for part in str(capability).split(".")) if capability else None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or ()) or None \
            if gpus else None
    return None


def resolve_mixed_precision(requested: str, backend: str | None = None) -> str:
    """`auto` becomes the policy the current GPU supports (float32 on CPUs); others stay."""
    if requested != "auto":
        return requested
    return policy_for_capability(gpu_compute_capability(backend or os.environ.get("KERAS_BACKEND", "tensorflow")))
