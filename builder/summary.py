"""Per-layer summaries of a built model: output shapes and parameter counts."""

from __future__ import annotations


def _count(weights) -> int:
    total = 0
    for weight in weights:
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        total += size
    return total


def _shape(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(output, (list, tuple)):
        return [list(t.shape) for t in output]
    return list(output.shape)


def summarize(model, spec=None) -> dict:
    """A JSON-ready report: one row per layer plus totals and the spec's expected figures."""
    rows = []
    for layer in model.layers:
        rows.append({
            "name": layer.name,
            "class": type(layer).__name__,
            "output_shape": _shape(layer),
            "params": _count(layer.weights),
            "trainable_params": _count(layer.trainable_weights),
        })
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    report = {
        "model": model.name,
        "layers": rows,
        "params": {"total": total, "trainable": trainable, "non_trainable": total - trainable},
    }
    if spec is not None and spec.expect and not spec.overrides:
        report["expect"] = check_expectations(spec, model)
    return report


def check_expectations(spec, model) -> dict:
    """The spec's `expect:` figures against the built model: {figure: {expected, actual, ok}}."""
    actual = {"params": _count(model.weights), "trainable_params": _count(model.trainable_weights)}
    return {key: {"expected": value, "actual": actual[key], "ok": value == actual[key]}
            for key, value in spec.expect.items()}


def format_table(report: dict) -> str:
    header = ("Layer", "Type", "Output shape", "Params")
    rows = [(row["name"], row["class"], _fmt(row["output_shape"]), f"{row['params']:,}")
            for row in report["layers"]]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths[:-1]) + "  {:>%d}" % widths[-1]
    out = [f"Model: {report['model']}", line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    params = report["params"]
    out.append("")
    out.append(f"Total params: {params['total']:,}")
    out.append(f"Trainable params: {params['trainable']:,}")
    out.append(f"Non-trainable params: {params['non_trainable']:,}")
    for key, check in report.get("expect", {}).items():
        verdict = "matches" if check["ok"] else f"MISMATCH (built {check['actual']:,})"
        out.append(f"Expected {key.replace('_', ' ')}: {check['expected']:,} - {verdict}")
    return "\n".join(out)


def _fmt(shape) -> str:
    if shape is None:
        return "?"
    if shape and isinstance(shape[0], list):
        return ", ".join(_fmt(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
