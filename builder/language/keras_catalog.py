"""The initializers and regularizers a spec may name, with their arguments, as plain data.

`validate` and the JSON Schema need them without importing a backend; a test checks this table
against Keras's own classes (names and constructor arguments), so it cannot drift from what
Keras has. A spec writes one as a name (`he_normal`) or as a mapping with its arguments
(`{variance_scaling: {scale: 2.0, mode: fan_out}}`).
"""

from __future__ import annotations

# spec name -> (Keras class name, constructor arguments)
INITIALIZERS = {
    "constant": ("Constant", ("value",)),
    "glorot_normal": ("GlorotNormal", ("seed", "input_axes", "output_axes")),
    "glorot_uniform": ("GlorotUniform", ("seed", "input_axes", "output_axes")),
    "he_normal": ("HeNormal", ("seed", "input_axes", "output_axes")),
    "he_uniform": ("HeUniform", ("seed", "input_axes", "output_axes")),
    "identity": ("Identity", ("gain",)),
    "lecun_normal": ("LecunNormal", ("seed", "input_axes", "output_axes")),
    "lecun_uniform": ("LecunUniform", ("seed", "input_axes", "output_axes")),
    "ones": ("Ones", ()),
    "orthogonal": ("Orthogonal", ("gain", "seed")),
    "random_normal": ("RandomNormal", ("mean", "stddev", "seed")),
    "random_uniform": ("RandomUniform", ("minval", "maxval", "seed")),
    "stft": ("STFT", ("side", "window", "scaling", "periodic")),
    "truncated_normal": ("TruncatedNormal", ("mean", "stddev", "seed")),
    "variance_scaling": ("VarianceScaling", ("scale", "mode", "distribution", "seed", "input_axes", "output_axes")),
    "zeros": ("Zeros", ()),
}
REGULARIZERS = {
    "l1": ("L1", ("l1",)),
    "l2": ("L2", ("l2",)),
    "l1_l2": ("L1L2", ("l1", "l2")),
    "orthogonal_regularizer": ("OrthogonalRegularizer", ("factor", "mode")),
}
CATALOGS = {"initializer": INITIALIZERS, "regularizer": REGULARIZERS}


def split_reference(value) -> tuple[str, dict] | None:
    """(name, arguments) of `name` or `{name: {arguments}}`; None for anything else."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        name, arguments = next(iter(value.items()))
        if isinstance(name, str) and (arguments is None or isinstance(arguments, dict)):
            return name, dict(arguments or {})
    return None


def problem(kind: str, value) -> str | None:
    """Why `value` is not an entry of the catalog of `kind`, or None when it is."""
    from ..errors import did_you_mean

    catalog = CATALOGS[kind]
    reference = split_reference(value)
    if reference is None:
        return f"an {kind} is a name or {{name: {{arguments}}}}"
    name, arguments = reference
    if name not in catalog:
        return f"no {kind} '{name}'{did_you_mean(name, catalog)} (Keras has: {', '.join(catalog)})"
    allowed = catalog[name][1]
    for argument in arguments:
        if argument not in allowed:
            return (f"{name} takes no argument '{argument}'{did_you_mean(argument, allowed)} "
                    f"(it takes: {', '.join(allowed) or 'none'})")
    return None


def keras_object(kind: str, value):
    """The Keras initializer or regularizer a spec value names (None stays None)."""
    if value is None:
        return None

    name, arguments = split_reference(value)
    return keras_classes(kind)[CATALOGS[kind][name][0]](**arguments)


def keras_classes(kind: str) -> dict:
    """Keras's initializer (or regularizer) classes by their registered names."""
    import inspect

    import keras

    module = keras.initializers if kind == "initializer" else keras.regularizers
    base = keras.initializers.Initializer if kind == "initializer" else keras.regularizers.Regularizer
    return {keras.saving.get_registered_name(cls): cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls is not base}
