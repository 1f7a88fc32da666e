"""The layout of `trainers/` as plugins see it: each family hands out its trainer classes without
importing a backend, and every module path of the earlier flat folder still imports, as the module
that holds its code now, with a warning that names the new path."""

import importlib
import json
import subprocess
import sys

import pytest

from trainers.former_paths import MOVED, FormerPaths

from ..conftest import ROOT

FAMILY_TRAINERS = {
    "supervised": ["SupervisedTrainer", "SegmentationTrainer"],
    "generative": ["ReconstructionTrainer", "VaeTrainer", "AdversarialTrainer"],
    "metric": ["MetricTrainer"],
    "detection": ["DetectionTrainer"],
}


def test_each_family_exports_its_registered_trainers_and_imports_no_backend_until_asked():
    script = f"""
import json, sys
import trainers
from builder.language.train_section import TRAINERS
families = {FAMILY_TRAINERS!r}
for family in families:
    __import__(f"trainers.{{family}}")
before = sorted(name for name in ("keras", "tensorflow", "jax") if name in sys.modules)
def named(classes):
    return sorted({{f"{{c.__module__}}.{{c.__qualname__}}" for c in classes}})
exported = named(getattr(sys.modules[f"trainers.{{family}}"], name) for family, names in families.items()
                 for name in names)
registered = named(entry.load() for _, entry in TRAINERS.items() if entry.load.__module__ == "trainers.builtin")
print(json.dumps({{"before": before, "exported": exported, "registered": registered}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"] == []
    assert report["exported"] == report["registered"]  # every built-in trainer, from its family


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_former_module_path_imports_the_module_that_holds_its_code(old):
    sys.modules.pop(f"trainers.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"trainers\.{old} moved to trainers\.{MOVED[old]}"):
        module = importlib.import_module(f"trainers.{old}")
    assert module is importlib.import_module(f"trainers.{MOVED[old]}")
    assert module.__spec__.name == module.__name__ == f"trainers.{MOVED[old]}"  # its relative imports still resolve


def test_a_former_module_of_a_family_name_hands_out_its_names_through_the_family():
    from trainers.detection import single_shot
    from trainers.metric import embedding

    with pytest.warns(DeprecationWarning, match=r"trainers\.metric\.open_set_metrics moved to "
                                                r"trainers\.metric\.embedding\.open_set_metrics"):
        from trainers.metric import open_set_metrics
    assert open_set_metrics is embedding.open_set_metrics
    with pytest.warns(DeprecationWarning, match="trainers.detection.single_shot"):
        from trainers.detection import MIN_BOX_SIZE
    assert MIN_BOX_SIZE == single_shot.MIN_BOX_SIZE
    with pytest.raises(ImportError, match="no_such_name"):
        from trainers.detection import no_such_name  # noqa: F401


def test_only_the_former_paths_table_is_answered():
    finder = FormerPaths()
    assert finder.find_spec("trainers.settings") is not None
    for name in ("trainers.os", "trainers.run.settings", "os", "builder.settings", "trainers.data.settings"):
        assert finder.find_spec(name) is None, name
    with pytest.raises(ImportError):
        importlib.import_module("trainers.no_such_module")
