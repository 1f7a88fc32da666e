"""One Registry type for every extension point; names typed once, read by schema, CLI and docs."""

import pytest

import builder
from builder import LAYER_TYPES, Registry, UnknownName
from builder.cli import COMMANDS
from builder.language.schema import generate_schema
from builder.language.train_section import TRAINERS
from trainers import register_dataset
from trainers.commands.training import parse_data
from trainers.registries import (
    ADVERSARIAL_LOSSES,
    AUGMENTATIONS,
    DATASETS,
    METRICS,
    OPTIMIZERS,
    RECONSTRUCTION_LOSSES,
    SCHEDULES,
)


def test_every_extension_point_is_a_registry():
    points = {"layer type": LAYER_TYPES, "trainer": TRAINERS, "dataset": DATASETS, "optimizer": OPTIMIZERS,
              "schedule": SCHEDULES, "augmentation": AUGMENTATIONS, "reconstruction loss": RECONSTRUCTION_LOSSES,
              "metric": METRICS, "adversarial loss": ADVERSARIAL_LOSSES, "command": COMMANDS}
    for kind, registry in points.items():
        assert isinstance(registry, Registry) and registry.kind == kind and len(registry) >= 2
    assert set(COMMANDS) >= {"validate", "summary", "build", "schema", "compare", "plot", "train", "evaluate",
                             "predict"}


def test_taken_names_are_refused_unless_replaced_and_misses_suggest():
    registry = Registry("widget")
    registry.register("spanner", 1)
    with pytest.raises(ValueError, match="widget 'spanner' is already registered; pass replace=True"):
        registry.register("spanner", 2)
    registry.register("spanner", 3, replace=True)
    assert registry["spanner"] == 3
    with pytest.raises(UnknownName) as caught:
        registry.get("spaner")
    assert str(caught.value) == "unknown widget 'spaner'; did you mean 'spanner'? (known: spanner)"
    assert isinstance(caught.value, builder.BlueprintError) and isinstance(caught.value, KeyError)


def test_a_registered_dataset_reaches_the_schema_and_the_data_flag():
    register_dataset("scans", lambda config: None, "CT slices", path="folder")
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("scans", lambda config: None)
        train_schema = generate_schema()["$defs"]["train_supervised"]
        assert "scans" in train_schema["properties"]["data"]["properties"]["dataset"]["enum"]
        assert parse_data("scans:/data/ct") == {"dataset": "scans", "path": "/data/ct"}
    finally:
        DATASETS.unregister("scans")
    assert "scans" not in generate_schema()["$defs"]["train_supervised"]["properties"]["data"]["properties"][
        "dataset"]["enum"]


def test_data_flag_forms_come_from_the_dataset_registry(tmp_path):
    assert parse_data("mask_folder:scans") == {"dataset": "mask_folder", "path": "scans"}  # refused before
    assert parse_data("image_folder:pics") == {"dataset": "image_folder", "path": "pics"}
    assert parse_data("digits") == {"dataset": "digits"}
    assert parse_data("keras:mnist") == {"dataset": "keras:mnist"}
    assert parse_data(str(tmp_path)) == {"dataset": "image_folder", "path": str(tmp_path)}
    from builder.cli import UsageError

    with pytest.raises(UsageError, match="mask_folder:FOLDER"):
        parse_data("nonsense")


def test_schema_enums_are_the_registries_names():
    schema = generate_schema()
    supervised = schema["$defs"]["train_supervised"]["properties"]
    assert supervised["metrics"]["items"]["enum"] == METRICS.names()
    assert list(supervised["optimizer"]["properties"]) == OPTIMIZERS.names()
    assert list(supervised["schedule"]["properties"]) == SCHEDULES.names()
    assert supervised["augment"]["items"]["then"]["enum"] == AUGMENTATIONS.names()
    assert schema["$defs"]["train_vae"]["properties"]["loss"]["enum"] == RECONSTRUCTION_LOSSES.names()
    adversarial = schema["$defs"]["train_adversarial"]["properties"]["adversarial"]["properties"]
    assert adversarial["loss"]["enum"] == ADVERSARIAL_LOSSES.names()
    assert schema["$defs"]["train"]["properties"]["trainer"]["enum"] == TRAINERS.names()
