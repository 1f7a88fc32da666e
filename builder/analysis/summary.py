"""Per-layer summaries of a built model: shapes, parameters, MACs, activation memory and
receptive fields, as a table or JSON."""

from __future__ import annotations

from ..building.expectations import check_expectations, count_values, expectations_for
from .model_figures import analyze


def summarize(model, spec=None) -> dict:
    """A JSON-ready report: one row per layer plus totals and the spec's expected figures."""
    analysis = analyze(model)
    rows = []
    for row in analysis["rows"]:
        layer = model.get_layer(row["name"])
        rows.append({**row, "trainable_params": count_values(layer.trainable_weights)})
    trainable = count_values(model.trainable_weights)
    total = count_values(model.weights)
    report = {
        "model": model.name,
        "layers": rows,
        "params": {"total": total, "trainable": trainable, "non_trainable": total - trainable},
        "macs": analysis["totals"]["macs"],
        "activation_bytes_per_example": analysis["totals"]["activation_bytes"],
    }
    if spec is not None and expectations_for(spec, model.name) and not spec.overrides:
        report["expect"] = check_expectations(spec, model)
    return report


def _human(count: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f} {suffix}{unit}"
    return f"{count:g} {unit}".rstrip()


def format_table(report: dict) -> str:
    header = ("Layer", "Type", "Output shape", "Params", "MACs", "Activations", "Receptive field", "Jump")
    rows = [(row["name"], row["class"], _fmt(row["output_shape"]), f"{row['params']:,}",
             _human(row["macs"]) if row["macs"] else "-",
             _human(row["activation_bytes"], "B") if row["activation_bytes"] else "-",
             "x".join(map(str, row["receptive_field"])) if row["receptive_field"] else "-",
             "x".join(f"{j:g}" for j in row["jump"]) if row["jump"] else "-")
            for row in report["layers"]]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    left = 3  # name, type and shape read best left-aligned; numbers right-aligned
    line = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [f"Model: {report['model']}", line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    params = report["params"]
    out.append("")
    out.append(f"Total params: {params['total']:,}")
    out.append(f"Trainable params: {params['trainable']:,}")
    out.append(f"Non-trainable params: {params['non_trainable']:,}")
    out.append(f"Multiply-accumulates per example: {report['macs']:,} ({_human(report['macs'])})")
    out.append(f"Forward activation memory per example: {_human(report['activation_bytes_per_example'], 'B')} "
               "(float32)")
    if any(_untracked_field(row) for row in report["layers"]):
        out.append("Receptive field and jump '-' on a layer with spatial axes: not tracked after a reshape or "
                   "permute that keeps spatial axes (it mixes them), a merge of fields over different axes, a "
                   "layer that reads where boxes say (region proposals, RoI Align), or a model with several "
                   "inputs called as a layer")
    for key, value in report.get("training", {}).items():
        out.append(f"{key.capitalize()} (train: section): {value}")
    for key, check in report.get("expect", {}).items():
        verdict = "matches" if check["ok"] else f"MISMATCH (built {check['actual']:,})"
        out.append(f"Expected {key.replace('_', ' ')}: {check['expected']:,} - {verdict}")
    return "\n".join(out)


def _untracked_field(row: dict) -> bool:
    shape = row["output_shape"]
    spatial = shape is not None and not isinstance(shape[0], list) and len(shape) >= 3
    return spatial and row["receptive_field"] is None


def _fmt(shape) -> str:
    if shape is None:
        return "?"
    if shape and isinstance(shape[0], list):
        return ", ".join(_fmt(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
