import json

import jsonschema
import pytest

from builder.language.schema import SCHEMA_PATH, generate_schema, schema_json
from builder.language.yaml_loader import load_yaml_file

from .conftest import SPECS, ZOO

pytestmark = pytest.mark.backend_free


def test_committed_schema_matches_the_registry():
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_json(), (
        "builder/language/spec.schema.json is stale: "
        "run `python -m builder schema -o builder/language/spec.schema.json`")


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))
    assert generate_schema()["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("path", ZOO + sorted((SPECS / "blocks").glob("*.yaml")), ids=lambda p: p.stem)
def test_zoo_and_libraries_validate_against_the_committed_file(path):
    """What an editor pointed at the committed schema sees: no complaints on any shipped file."""
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads(json.dumps(load_yaml_file(path))), schema,
                        cls=jsonschema.Draft202012Validator)


def test_schema_rejects_an_unknown_argument():
    schema = json.loads(SCHEMA_PATH.read_text())
    bad = {"input": [8], "layers": [{"dense": {"unit": 3}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)
