"""What a study leaves for people to act on: a table of its trials (console and results.csv),
best.yaml (the spec with the best trial's values written in, ready for `train`), and Optuna's own
pictures of it (optimisation history, parameter importances, parallel coordinates)."""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import yaml

from builder.language.search_space import Dimension, apply_values
from builder.language.train_section import assign_dotted

from ..run.folder import atomic_write
from .objective import shown, tidy

COLUMNS = ("trial", "state", "value", "epochs", "minutes")


def trial_rows(study, dimensions: list[Dimension]) -> list[dict]:
    """One row per trial: number, state, value, epochs, minutes, each searched value, the run
    folder and, for a failed trial, why."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        state = {"fail": "failed"}.get(trial.state.name.lower(), trial.state.name.lower())
        if state == "failed" and "interrupted" in trial.user_attrs:
            state = "interrupted"
        rows.append({
            "trial": trial.number,
            "state": state,
            "value": trial.value if trial.value is not None else _last_report(trial) if state == "pruned" else "",
            "epochs": trial.user_attrs.get("epochs", ""),
            "minutes": trial.user_attrs.get("minutes", ""),
            **{dimension.name: tidy(trial.params.get(dimension.name, "")) for dimension in dimensions},
            "run": trial.user_attrs.get("run", ""),
            "failure": trial.user_attrs.get("failure", trial.user_attrs.get("interrupted", "")),
        })
    return rows


def _last_report(trial):
    """A pruned trial's value: its last epoch's report."""
    values = trial.intermediate_values
    return values[max(values)] if values else ""


def write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def table(rows: list[dict], dimensions: list[Dimension], metric: str, direction: str) -> str:
    """The trials as a Markdown table, best first (failed ones last, with their reasons)."""
    names = [dimension.name for dimension in dimensions]
    header = ["trial", "state", metric, "epochs", "minutes", *names]
    sign = -1 if direction == "maximize" else 1
    done = sorted((row for row in rows if isinstance(row["value"], float)), key=lambda row: sign * row["value"])
    rest = [row for row in rows if not isinstance(row["value"], float)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in done + rest:
        cells = [row["trial"], row["state"], _cell(row["value"]), row["epochs"], _cell(row["minutes"], 2),
                 *(shown(row[name]) for name in names)]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    reasons: dict = {}
    for row in rest:
        if row["failure"]:
            reasons.setdefault((row["state"], row["failure"]), []).append(str(row["trial"]))
    failures = [f"trial{'s' if len(numbers) > 1 else ''} {', '.join(numbers)} {state}: {reason}"
                for (state, reason), numbers in reasons.items()]
    return "\n".join(lines + failures)


def _cell(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"
    return str(value)


def write_best_spec(spec, trial, metric: str, study_name: str, path: Path) -> Path:
    """The spec with the best trial's values in its `params:` and `train:`, its `search:` section
    left out, and `include:` paths pointing at the original libraries from `path`'s folder."""
    document = _plain(spec.document)
    params_set, train_set = apply_values({name: tidy(value) for name, value in trial.params.items()})
    changed = []
    for name, value in params_set.items():
        changed.append(f"{name} {value!r} (was {document['params'][name]!r})")
        document["params"][name] = value
    train = document.setdefault("train", {})
    for dotted, value in train_set.items():
        changed.append(f"train.{dotted} {value!r}")
        assign_dotted(train, dotted, value)
    document.pop("search", None)
    notes = []
    if params_set and "expect" in document:
        document.pop("expect")
        notes.append("# Its expect: figures are left out: they were the counts at the original params.")
    source = Path(spec.file).resolve()
    if document.get("include"):
        document["include"] = [os.path.relpath(source.parent / entry, path.parent.resolve())
                               for entry in document["include"]]
    header = [f"# The best trial of the study '{study_name}' (trial {trial.number}: {metric} {trial.value:.4f}),",
              f"# written into {source}:",
              *(f"#   {line}" for line in changed), *notes,
              f"# Train it with: python -m builder train {path}"]
    atomic_write(path, "\n".join(header) + "\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True,
                                                                 default_flow_style=None, width=100))
    return path


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def draw_pictures(study, folder: Path, metric: str) -> list[str]:
    """Optuna's matplotlib pictures of the study, as far as its trials allow (importances need
    two complete trials); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    complete = [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "COMPLETE"]
    pictures = {"history.png": (optuna_plots.plot_optimization_history, 1),
                "importances.png": (optuna_plots.plot_param_importances, 2),
                "parallel_coordinates.png": (optuna_plots.plot_parallel_coordinate, 1)}
    written = []
    for name, (plot, needs) in pictures.items():  # needs: completed trials the picture needs
        if len(complete) < needs:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # matplotlib on a single-valued axis
            try:
                axes = plot(study, target_name=metric)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances when no value varies
                continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        figure.set_size_inches(9, 5.5)
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
        written.append(name)
    return written
