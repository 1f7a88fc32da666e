"""The module paths of earlier versions, when `trainers/` was one flat folder: each still imports,
as the module that now holds its code, with a DeprecationWarning naming the new path, so a plugin
written against them keeps working. docs/python-api.md lists where each went."""

from __future__ import annotations
import __future__

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

# Former module -> the module that holds its code now. `supervised`, `metric` and `detection` are
# sub-packages now: each hands out its former module's names itself (see `family_exports`).
MOVED = {
    "sources": "data.sources", "image_files": "data.image_files", "records": "data.records",
    "pipeline": "data.pipeline", "augmentation": "data.augmentation", "datasets": "data.datasets",
    "pseudo_labels": "data.pseudo_labels", "adaptation": "data.adaptation",
    "trainer": "run.trainer", "settings": "run.settings", "loop": "run.loop", "run_folder": "run.folder",
    "interruption": "run.interruption", "optimization": "run.optimization", "distribution": "run.distribution",
    "determinism": "run.determinism", "tensorflow_internals": "run.tensorflow_internals", "saving": "run.saving",
    "plots": "run.plots", "training_run": "run.training",
    "segmentation": "supervised.segmentation",
    "reconstruction": "generative.reconstruction", "vae": "generative.vae", "adversarial": "generative.adversarial",
    "adversarial_losses": "generative.adversarial_losses", "diff_augment": "generative.diff_augment",
    "generation": "generative.sampling", "latent_mixture": "generative.latent_mixture",
    "generative_metrics": "generative.quality",
    "metric_losses": "metric.losses",
    "detection_anchors": "detection.anchors", "detection_data": "detection.data",
    "detection_inference": "detection.inference", "detection_metrics": "detection.metrics",
    "box_ops": "detection.boxes", "annotation_files": "detection.annotations",
    "test_time": "after.test_time", "ensemble": "after.ensemble", "export": "after.export",
    "serving_runtimes": "after.serving_runtimes",
    "data_commands": "commands.data", "model_commands": "commands.models", "metric_commands": "commands.embeddings",
}


def _moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)


class FormerPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Consulted after the normal finders, so only for a name no file answers any more."""

    def find_spec(self, name, path=None, target=None):
        package, _, leaf = name.rpartition(".")
        if package == "trainers" and leaf in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        new = f"trainers.{MOVED[spec.name.rpartition('.')[2]]}"
        _moved(spec.name, new)
        module = importlib.import_module(new)  # the same module object: one copy of its state
        spec.loader_state = module.__spec__  # importlib sets the module's __spec__ to this alias next
        return module

    def exec_module(self, module):
        # Already executed under its new name; its own spec back, so its relative imports resolve.
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    if not any(isinstance(finder, FormerPaths) for finder in sys.meta_path):
        sys.meta_path.append(FormerPaths())


def family_exports(package: str, trainers: dict[str, str], former: str | None = None):
    """A sub-package's `__getattr__`: its trainer classes by name (`from trainers.supervised import
    SupervisedTrainer`), imported only when asked for so the package imports no backend, and any other
    name of the flat module the package replaced (`former`), with a DeprecationWarning."""

    def __getattr__(name: str):
        if name in trainers:
            value = getattr(importlib.import_module(f"{package}.{trainers[name]}"), name)
        elif former and not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is None and \
                _defined_in(module := importlib.import_module(f"{package}.{former}"), name):
            # (a sub-module's name falls through: `from package import module` then imports it)
            _moved(f"{package}.{name}", f"{package}.{former}.{name}")
            value = getattr(module, name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # asked once: `from ... import` asks twice
        return value

    return __getattr__


def _defined_in(module, name: str) -> bool:
    """A public name the module defines, not one it imported (`np`, `keras`, a function from
    another module, or `annotations`, the `from __future__` feature every module holds)."""
    value = getattr(module, name, None)
    if name.startswith("_") or value is None or value is __future__.annotations or isinstance(
            value, types.ModuleType):
        return False
    if isinstance(value, (type, types.FunctionType)):
        return value.__module__ == module.__name__
    return True
