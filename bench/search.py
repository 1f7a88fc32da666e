"""What a search buys, and what pruning and a second process save: specs/cnn_digits.yaml on the
embedded digits, searched over its width, depth, dropout and learning rate (its `search:`
section) with `python -m builder tune`, each command a fresh process as a user runs it:

1. the spec's defaults trained (`train`): the zoo default's test accuracy;
2. a study of `--trials` trials with no pruner (TPE, seeded): the best trial's validation accuracy,
   then its best.yaml trained again (`train`): the best trial's test accuracy;
3. the same study with the median pruner: epochs trained against study 2 (target: at most 60%)
   and its best validation accuracy against study 2's (target: within 0.005);
4. study 2 again with two processes sharing one SQLite storage: trials per minute against study 2.

    python bench/search.py [--backend tensorflow|jax] [--out studies/bench] [--trials 30] [--epochs 10]

Every trial trains `--epochs` epochs (the spec's own 20 by default is twice the time). Prints a
Markdown table for docs/benchmarks.md; run it alone on the machine.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from training_run import ROOT, parse_training_args

SPEC = ROOT / "specs" / "cnn_digits.yaml"
EPOCHS_TARGET, VALUE_TOLERANCE = 0.60, 0.005


def builder(*arguments, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "builder", *map(str, arguments)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"exit {process.returncode}:\n{output[-4000:]}")
    return output


def trained(output: str) -> tuple[Path, dict]:
    folder = Path(output.rsplit("run folder: ", 1)[1].split()[0].rstrip(";"))
    return folder, json.loads((folder / "metrics.json").read_text())


def study(out: Path, name: str, trials: int, epochs: int, pruner: str, processes: int = 1) -> dict:
    arguments = ["tune", SPEC, "--trials", trials, "--epochs", epochs, "--pruner", pruner, "--study", name,
                 "--out", out]
    start = time.perf_counter()
    # each process its own seed: with one, both would draw the same values
    running = [builder(*arguments, "--seed", index, cwd=out) for index in range(processes)]
    for process in running:
        finished(process)
    minutes = (time.perf_counter() - start) / 60
    rows = list(csv.DictReader((out / name / "results.csv").read_text().splitlines()))
    complete = [row for row in rows if row["state"] == "complete"]
    best = max(complete, key=lambda row: float(row["value"]))
    return {"rows": rows, "minutes": minutes, "best": best, "best_value": float(best["value"]),
            "epochs": sum(int(row["epochs"] or 0) for row in rows),
            "pruned": sum(row["state"] == "pruned" for row in rows),
            "failed": sum(row["state"] == "failed" for row in rows), "folder": out / name}


def main() -> int:
    def extra(parser):
        parser.add_argument("--trials", type=int, default=30)
        parser.add_argument("--epochs", type=int, default=10)

    args = parse_training_args(__doc__.splitlines()[0], extra)
    out = Path(args.out).resolve() / f"search_{args.backend}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    default_folder, default_metrics = trained(finished(builder("train", SPEC, "--epochs", args.epochs, "--quiet",
                                                               "--out", out / "runs", cwd=out)))
    default_history = list(csv.DictReader((default_folder / "history.csv").read_text().splitlines()))
    plain = study(out, "unpruned", args.trials, args.epochs, "none")
    best_folder, best_metrics = trained(finished(builder("train", plain["folder"] / "best.yaml", "--quiet",
                                                         "--epochs", args.epochs, "--out", out / "runs", cwd=out)))
    pruned = study(out, "median", args.trials, args.epochs, "median")
    shared = study(out, "two_processes", args.trials, args.epochs, "none", processes=2)

    print(f"\ncnn_digits on the digits, {args.trials} trials of {args.epochs} epochs, backend {args.backend}\n")
    print("| | validation accuracy | test accuracy | params | epochs trained | minutes |")
    print("|---|---|---|---|---|---|")
    default_params = json.loads((default_folder / "run.json").read_text())["params"]
    best_params = json.loads((best_folder / "run.json").read_text())["params"]
    print(f"| zoo defaults (`train`) | {float(default_history[-1]['val_accuracy']):.4f} | "
          f"{default_metrics['test_accuracy']:.4f} | width {default_params['width']}, depth {default_params['depth']}, "
          f"dropout {default_params['dropout']} | {args.epochs} | - |")
    lr = plain["best"]["train.optimizer.adam.learning_rate"]
    print(f"| best of {args.trials} trials, no pruner (best.yaml trained again) | {plain['best_value']:.4f} | "
          f"{best_metrics['test_accuracy']:.4f} | width {best_params['width']}, depth {best_params['depth']}, "
          f"dropout {best_params['dropout']}, learning rate {float(lr):.2g} | {plain['epochs']} | "
          f"{plain['minutes']:.1f} |")
    print(f"| best of {args.trials} trials, median pruner ({pruned['pruned']} pruned) | {pruned['best_value']:.4f} | - "
          f"| trial {pruned['best']['trial']} | {pruned['epochs']} | {pruned['minutes']:.1f} |")
    print(f"| best of {len(shared['rows'])} trials, no pruner, two processes on one storage | "
          f"{shared['best_value']:.4f} | - | trial {shared['best']['trial']} | {shared['epochs']} | "
          f"{shared['minutes']:.1f} |")
    epochs_ratio = pruned["epochs"] / plain["epochs"]
    gap = plain["best_value"] - pruned["best_value"]
    print(f"\nmedian pruner: {epochs_ratio:.2f} of the epochs (target <= {EPOCHS_TARGET:.2f}: "
          f"{'met' if epochs_ratio <= EPOCHS_TARGET else 'not met'}), best validation accuracy "
          f"{gap:+.4f} below (target <= {VALUE_TOLERANCE}: {'met' if gap <= VALUE_TOLERANCE else 'not met'})")
    speed = (len(shared["rows"]) / shared["minutes"]) / (len(plain["rows"]) / plain["minutes"])
    print(f"two processes: {speed:.2f}x the trials per minute of one ({len(shared['rows'])} trials in "
          f"{shared['minutes']:.1f} minutes against {len(plain['rows'])} in {plain['minutes']:.1f}; "
          f"{os.cpu_count()} CPU cores)")
    print(f"best trial against the zoo defaults: test accuracy {best_metrics['test_accuracy']:.4f} against "
          f"{default_metrics['test_accuracy']:.4f}; pictures in {plain['folder']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
