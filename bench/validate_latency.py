"""`validate` latency: every zoo spec, each in a fresh (cold) process; TensorFlow and JAX must
never be imported.

    python bench/validate_latency.py

Wall time per spec is the whole process, Python's own start-up included. Target: < 0.3 s each.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys; from builder.cli import main; code = main(['validate', sys.argv[1]]); "
         "loaded = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]; "
         "print('LOADED', ','.join(loaded) or '-'); sys.exit(code)")


def main() -> int:
    print("| spec | cold validate | backend imported |\n|---|---|---|")
    ok = True
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        loaded = next((line.split()[1] for line in result.stdout.splitlines() if line.startswith("LOADED")), "?")
        ok &= result.returncode == 0 and seconds < 0.3 and loaded == "-"
        print(f"| {path.stem} | {seconds:.3f} s | {'none' if loaded == '-' else loaded} |", flush=True)
    print(f"\nTarget < 0.3 s per spec with no backend imported: {'met' if ok else 'NOT met'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
