"""Long fuzzing run: mutated zoo specs must end as a valid model or a located spec error.

    python bench/fuzz.py [--cases 10000] [--seed 0] [--build-every 5]

Every case is loaded (validate + expand); every `--build-every`-th case of the cheap specs is
also compiled into Keras models. Prints counts and any finding (exit 1 if there is one).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-every", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from builder.tools.spec_mutations import mutate, run_case, write_case, zoo_documents

    documents = zoo_documents()
    names = sorted(documents)
    cheap = {"lenet5", "resnet18", "alexnet", "vgg16"}
    rng = random.Random(args.seed)
    counts, findings = collections.Counter(), []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for case in range(args.cases):
            name = rng.choice(names)
            document = mutate(documents[name], rng, rng.randint(1, 3))
            build = name in cheap and case % args.build_every == 0
            try:
                outcome = run_case(write_case(document, Path(scratch) / str(case % 50)), build)
                counts[(outcome, "built" if build else "loaded")] += 1
            except Exception:  # a finding: anything but a located SpecError
                findings.append((case, name, traceback.format_exc(limit=3)))
            if build and case % 500 == 0:
                import keras

                keras.backend.clear_session()
    seconds = time.perf_counter() - start
    print(f"{args.cases} cases (seed {args.seed}) in {seconds:.0f} s:")
    for (outcome, stage), count in sorted(counts.items()):
        print(f"  {outcome:8s} {stage:7s} {count}")
    print(f"  findings: {len(findings)}")
    for case, name, trace in findings[:10]:
        print(f"--- case {case} ({name})\n{trace}")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
