"""`devices`, the CPU-only-wheels warning and `mixed_precision: auto`, on a machine without a GPU
(and with one faked where only the warning's logic is under test)."""

import keras
import pytest

from builder.cli import main
from builder.tools import devices
from trainers.run.training import _dtype_policy


def test_devices_lists_backend_versions_and_devices_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: False)
    assert main(["devices"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == f"backend: {keras.backend.backend()}"
    assert f"keras {keras.__version__}" in out.out
    assert "tensorflow devices: CPU:0" in out.out and "jax devices: CPU:0" in out.out
    assert "NVIDIA GPU: none found" in out.out and out.err == ""


def test_an_unused_nvidia_gpu_is_named_with_the_fix(capsys, monkeypatch):
    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: True)  # a driver, but these CPU-only wheels
    assert main(["devices"]) == 0
    assert capsys.readouterr().err.strip() == (
        "warning: an NVIDIA GPU is present but tensorflow and jax see only the CPU (CPU-only wheels); "
        'install the CUDA builds with: python -m pip install -e ".[cuda]"')
    assert _dtype_policy({"performance": {"mixed_precision": "float32"}}) == "float32"
    assert f"but {keras.backend.backend()} sees only the CPU" in capsys.readouterr().err  # train says it too


@pytest.mark.parametrize("capability, policy", [((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"),
                                                ((7, 5), "mixed_float16"), ((6, 1), "float32"), (None, "float32")])
def test_auto_mixed_precision_follows_the_compute_capability(capability, policy):
    assert devices.policy_for_capability(capability) == policy


def test_auto_mixed_precision_is_float32_on_a_cpu(capsys):
    try:
        assert _dtype_policy({"performance": {"mixed_precision": "auto"}}) == "float32"
        assert "mixed_precision auto: float32" in capsys.readouterr().out
        assert _dtype_policy({"performance": {"mixed_precision": "mixed_bfloat16"}}) == "mixed_bfloat16"
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
