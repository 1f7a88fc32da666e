"""Mutated zoo specs end as a valid model or a located spec error, never another exception."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.tools.spec_mutations import mutate, run_case, write_case, zoo_documents

DOCUMENTS = zoo_documents()
NAMES = sorted(DOCUMENTS)
CHEAP = {"lenet5", "resnet18", "alexnet", "vgg16"}  # small at their test input: also built


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 3))
def test_mutated_specs_load_or_fail_with_a_location(tmp_path_factory, name, seed, count):
    document = mutate(DOCUMENTS[name], random.Random(seed), count)
    path = write_case(document, tmp_path_factory.mktemp("case"))
    run_case(path, build=name in CHEAP)


def test_mutations_do_produce_both_outcomes(tmp_path):
    outcomes = set()
    rng = random.Random(1)
    for index in range(40):
        document = mutate(DOCUMENTS["lenet5"], rng, 1)
        outcomes.add(run_case(write_case(document, tmp_path / str(index)), build=False))
    assert outcomes == {"valid", "refused"}
