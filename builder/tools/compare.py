"""`compare`: one spec on several backends, side by side, each backend in its own process.

The first backend builds the models and saves their weights; every backend (the first too) loads
those weights, runs the same inputs, and times building, the first (compiling) train step, and
the median train and inference steps. Outputs are compared with the first backend's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import SpecError


def compare(spec_path, backends: list[str], overrides: dict | None = None, batch_size: int = 8,
            steps: int = 10, tolerance: float = 1e-4) -> dict:
    from ..language.spec import load_spec

    spec = load_spec(spec_path, overrides)  # errors surface here, before any subprocess
    with tempfile.TemporaryDirectory(prefix="blueprint-compare-") as scratch:
        scratch = Path(scratch)
        inputs = {}
        rng = np.random.default_rng(0)
        for name, graph in spec.graphs.items():
            for input_name, shape in graph.inputs.items():
                concrete = [d or 8 for d in shape]  # a free dimension gets a small size
                inputs[f"{name}/{input_name}"] = rng.normal(size=(batch_size, *concrete)).astype("float32")
        np.savez(scratch / "inputs.npz", **inputs)
        results = {}
        for index, backend in enumerate(backends):
            job = {"spec": str(spec_path), "overrides": overrides or {}, "scratch": str(scratch),
                   "save_weights": index == 0, "steps": steps, "backend": backend}
            results[backend] = _run_worker(job)
        return _report(spec, backends, results, scratch, tolerance)


def _run_worker(job: dict) -> dict:
    env = {**os.environ, "KERAS_BACKEND": job["backend"], "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run([sys.executable, "-m", "builder.tools.compare_worker", json.dumps(job)],
                             capture_output=True, text=True, env=env)
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        tail = (process.stderr.strip().splitlines() or ["no output"])[-1]
        raise SpecError(f"the {job['backend']} backend failed: {tail}")
    return json.loads(lines[-1][len("RESULT "):])


def _report(spec, backends, results, scratch: Path, tolerance: float) -> dict:
    reference = backends[0]
    report = {"spec": spec.name, "tolerance": tolerance, "models": {}}
    for model in spec.graphs:
        rows = {}
        with np.load(scratch / f"{reference}-{model}-outputs.npz") as ref_file:
            expected = [ref_file[k] for k in sorted(ref_file.files)]
        for backend in backends:
            row = dict(results[backend][model])
            with np.load(scratch / f"{backend}-{model}-outputs.npz") as got_file:
                got = [got_file[k] for k in sorted(got_file.files)]
            abs_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, expected))
            rel_diff = max(float(np.max(np.abs(a - b) / (np.abs(b) + 1e-6))) for a, b in zip(got, expected))
            row.update(max_abs_diff=abs_diff, max_rel_diff=rel_diff, within_tolerance=abs_diff <= tolerance)
            rows[backend] = row
        report["models"][model] = rows
    return report


def format_report(report: dict) -> str:
    columns = [("params", "params", "{:,}"), ("build_s", "build s", "{:.2f}"),
               ("first_train_step_s", "1st train step s", "{:.2f}"), ("train_step_ms", "train step ms", "{:.1f}"),
               ("inference_step_ms", "infer step ms", "{:.1f}"), ("images_per_s", "images/s", "{:.1f}"),
               ("peak_memory_mb", "peak MB", "{:.0f}"), ("max_abs_diff", "max abs diff", "{:.2e}"),
               ("max_rel_diff", "max rel diff", "{:.2e}")]
    out = []
    for model, rows in report["models"].items():
        table = [["backend", *[title for _, title, _ in columns], ""]]
        for backend, row in rows.items():
            flag = "" if row["within_tolerance"] else f"DIFFERS (> {report['tolerance']:g})"
            table.append([backend, *[fmt.format(row[key]) for key, _, fmt in columns], flag])
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        out.append(f"Model: {model} (batch {rows[next(iter(rows))]['batch_size']}, "
                   f"{rows[next(iter(rows))]['memory_kind']} memory)")
        out += ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
                for r in table]
        out.append("")
    return "\n".join(out).rstrip()
