"""Spec mutations for fuzzing: drop, rename and retype keys, swap and break references, random values.

Used by tests/test_fuzz.py (Hypothesis) and bench/fuzz.py (a long seeded run).
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import yaml

from builder.language.zoo import zoo_dir

SPECS = zoo_dir()
STRANGE_VALUES = [0, -1, 1, 3, 2.5, 10**12, "", "x", "$nope", "${1 / 0}", "${width * }", None, True, [], {}, [1, "a"],
                  {"relu": None}, "relu", "input", "dense1", "${2 ** 300}", "-5", [[[]]], 1e308]


def zoo_documents() -> dict:
    """Each zoo spec as plain data, with its small test input made the default (cheap builds)."""
    from builder.language.yaml_loader import load_yaml_file

    documents = {}
    for path in sorted(SPECS.glob("*.yaml")):
        document = json.loads(json.dumps(load_yaml_file(path)))
        params = document.setdefault("params", {})
        params.update(document.get("test_overrides", {}))
        document.pop("train", None)
        documents[path.stem] = document
    return documents


def _places(node, path=()):
    """Every (container, key) pair in a document, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            yield node, key, path + (key,)
            yield from _places(node[key], path + (key,))
    elif isinstance(node, list):
        for index in range(len(node)):
            yield node, index, path + (index,)
            yield from _places(node[index], path + (index,))


def _names(document) -> list:
    names = ["input", "nowhere", "conv1", "dense1"]
    for container, key, _ in _places(document):
        if key == "name" and isinstance(container[key], str):
            names.append(container[key])
    return names


def mutate(document: dict, rng: random.Random, count: int) -> dict:
    document = copy.deepcopy(document)
    for _ in range(count):
        places = list(_places(document))
        if not places:
            break
        container, key, _ = rng.choice(places)
        kind = rng.choice(["drop", "rename", "retype", "reference", "value", "duplicate"])
        if kind == "drop":
            del container[key]
        elif kind == "rename" and isinstance(container, dict):
            new_key = rng.choice([str(key)[:-1], str(key) + "s", str(key).upper(), "from", "name", "when", "repeat",
                                  "residual", "parallel", "layers", "conv"])
            container[new_key] = container.pop(key)
        elif kind == "reference":
            target = rng.choice(_names(document))
            if isinstance(container, dict) and rng.random() < 0.5:
                container["from"] = target if rng.random() < 0.5 else [target, rng.choice(_names(document))]
            else:
                container[key] = target
        elif kind == "duplicate" and isinstance(container, list):
            container.insert(rng.randrange(len(container) + 1), copy.deepcopy(container[key]))
        else:
            container[key] = copy.deepcopy(rng.choice(STRANGE_VALUES))
    return document


def write_case(document: dict, folder: Path) -> Path:
    """Write a mutated spec beside a copy of the block libraries it may include."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "blocks").exists():
        shutil.copytree(SPECS / "blocks", folder / "blocks")
    path = folder / "case.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_case(path: Path, build: bool, max_params: int = 5_000_000) -> str:
    """'valid', 'refused' (a located SpecError); anything else propagates as a finding."""
    import builder

    try:
        spec = builder.load_spec(path)
        if build:
            builder.build_models(spec, max_params=max_params)
    except builder.SpecError as error:
        if error.location is None:
            raise AssertionError(f"SpecError without a location: {error}") from None
        return "refused"
    return "valid"
