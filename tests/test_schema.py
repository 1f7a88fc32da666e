import json

import jsonschema
import pytest

from builder.language.schema import SCHEMA_PATH, generate_schema, schema_json
from builder.language.yaml_loader import load_yaml_file

from .conftest import SPECS, ZOO

pytestmark = pytest.mark.backend_free


@pytest.fixture(scope="module")
def committed_schema() -> jsonschema.Draft202012Validator:
    """A validator of the committed file (checked against the draft once, in its own test:
    `jsonschema.validate` checks the schema again on every call, a second or two each)."""
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def test_committed_schema_matches_the_registry():
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_json(), (
        "builder/language/spec.schema.json is stale: "
        "run `python -m builder schema -o builder/language/spec.schema.json`")


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))
    assert generate_schema()["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("path", ZOO + sorted((SPECS / "blocks").glob("*.yaml")), ids=lambda p: p.stem)
def test_zoo_and_libraries_validate_against_the_committed_file(path, committed_schema):
    """What an editor pointed at the committed schema sees: no complaints on any shipped file."""
    committed_schema.validate(json.loads(json.dumps(load_yaml_file(path))))


def test_schema_rejects_an_unknown_argument(committed_schema):
    bad = {"input": [8], "layers": [{"dense": {"unit": 3}}]}
    with pytest.raises(jsonschema.ValidationError):
        committed_schema.validate(bad)
