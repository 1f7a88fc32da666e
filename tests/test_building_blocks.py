"""Current CNN building blocks: broadcasting merges, layer scale, stochastic depth, adaptable
normalization, every Keras initializer and regularizer with arguments, weight copying through
operator layers and nested models, and the YAML hint for a bare type with keys."""

import inspect

import numpy as np
import pytest

from builder import SpecError, build_model, copy_weights, load_spec
from builder.building.weight_copy import WeightTransferError
from builder.language.keras_catalog import INITIALIZERS, REGULARIZERS, keras_classes, keras_object
from builder.language.layer_registry import LAYER_TYPES


def numpy(tensor):
    import keras

    return keras.ops.convert_to_numpy(tensor)


def statistics(layer) -> tuple:
    """(mean, variance) weights of a normalization layer, flattened."""
    weights = {weight.name: numpy(weight).ravel() for weight in layer.weights}
    return weights["mean"], weights["variance"]


SQUEEZE_EXCITE = """
input: [8, 8, 6]
layers:
  - conv: {filters: 6, kernel: 3, padding: same}
    name: features
  - global_avg_pool: {keepdims: true}
  - conv: {filters: 2, kernel: 1, activation: relu}
  - conv: {filters: 6, kernel: 1, activation: sigmoid}
    name: gate
  - multiply: {}
    from: [features, gate]
    name: gated
"""


def test_a_squeeze_and_excitation_gate_broadcasts_over_the_map(write_spec):
    import keras

    model = build_model(write_spec(SQUEEZE_EXCITE))
    assert model.get_layer("gate").output.shape == (None, 1, 1, 6)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 6)).astype("float32")
    probe = keras.Model(model.input, [model.get_layer("features").output, model.get_layer("gate").output])
    features, gate = (numpy(t) for t in probe(x))
    np.testing.assert_allclose(numpy(model(x)), features * gate, rtol=1e-6)


@pytest.mark.parametrize("second, advice", [
    ("global_avg_pool", "rank 2 against rank 4. Give the smaller input the same rank: `global_avg_pool: "
                        "{keepdims: true}` or `reshape: {target_shape: [1, 1, C]}`"),
    ("conv: {filters: 4, kernel: 1}", "6 against 4 channels. Project one side to the other's channels"),
    ("maxpool: {pool: 2}", "the sizes differ (axis 1: 8 vs 4, axis 2: 8 vs 4). Match them with strides"),
])
def test_shapes_that_cannot_broadcast_get_advice_that_fits(write_spec, second, advice):
    path = write_spec(f"""
        input: [8, 8, 6]
        layers:
          - {second if ":" in second else second + ": {}"}
            name: other
          - add: {{}}
            from: [input, other]
    """)
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert caught.value.location.line == 5 and "add needs shapes that broadcast" in str(caught.value)
    assert advice in str(caught.value), str(caught.value)


def test_layer_scale_starts_at_its_value_and_learns_one_scale_per_channel(write_spec):
    model = build_model(write_spec("""
        input: [4, 4, 5]
        layers:
          - layer_scale: {init: 0.25}
    """))
    assert model.count_params() == 5
    x = np.random.default_rng(1).normal(size=(3, 4, 4, 5)).astype("float32")
    np.testing.assert_allclose(numpy(model(x)), 0.25 * x, rtol=1e-6)
    assert [w.trainable for w in model.weights] == [True]


def test_drop_path_drops_whole_examples_in_training_only(write_spec):
    model = build_model(write_spec("""
        input: [4, 4, 3]
        layers:
          - drop_path: {rate: 0.3, seed: 7}
    """))
    x = np.ones((4000, 4, 4, 3), "float32")
    y = numpy(model(x, training=True)).reshape(len(x), -1)
    per_example = np.unique(y, axis=1)
    assert per_example.shape[1] == 1  # every element of an example is kept or dropped together
    kept = per_example[:, 0] > 0
    np.testing.assert_allclose(per_example[kept, 0], 1 / 0.7, rtol=1e-6)
    assert abs((~kept).mean() - 0.3) < 0.03
    np.testing.assert_array_equal(numpy(model(x[:8])), x[:8])


def test_drop_path_rate_follows_the_depth_and_dropout_takes_a_noise_shape(write_spec):
    model = build_model(write_spec("""
        params: {rate: 0.2, n: 4}
        input: [4, 4, 3]
        layers:
          - repeat:
              times: $n
              index: i
              layers:
                - drop_path: {rate: "${rate * i / n}"}
                  name: path${i}
          - dropout: {rate: 0.5, noise_shape: [null, 1, 1, null], seed: 3}
    """))
    assert [model.get_layer(f"path{i}").rate for i in range(4)] == pytest.approx([0, 0.05, 0.1, 0.15])
    dropout = model.get_layer("dropout1")
    y = numpy(dropout(np.ones((64, 4, 4, 3), "float32"), training=True))
    assert np.all(y.min(axis=(1, 2)) == y.max(axis=(1, 2)))  # whole channels


ADAPTED = """
input: [6, 6, 2]
layers:
  - normalization: {adapt: true}
    name: inputs_normalized
  - conv: {filters: 3, kernel: 3}
    name: conv
  - normalization: {adapt: true, axis: -1}
    name: features_normalized
"""


def test_adapted_normalization_takes_the_statistics_of_what_reaches_it(write_spec):
    import keras

    from trainers.data.adaptation import adapt_normalizations

    model = build_model(write_spec(ADAPTED))
    images = np.random.default_rng(2).normal(3.0, 2.0, size=(300, 6, 6, 2)).astype("float32")
    batches = lambda: (images[i:i + 64] for i in range(0, len(images), 64))  # noqa: E731
    assert adapt_normalizations(model, batches) == ["inputs_normalized", "features_normalized"]
    mean, variance = statistics(model.get_layer("inputs_normalized"))
    np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(variance, images.var(axis=(0, 1, 2)), rtol=1e-4)
    conv_out = numpy(keras.Model(model.input, model.get_layer("conv").output)(images))
    mean, variance = statistics(model.get_layer("features_normalized"))
    np.testing.assert_allclose(mean, conv_out.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(variance, conv_out.var(axis=(0, 1, 2)), rtol=1e-3)
    standardized = (conv_out - conv_out.mean(axis=(0, 1, 2))) / conv_out.std(axis=(0, 1, 2))
    np.testing.assert_allclose(numpy(model(images)), standardized, rtol=1e-3, atol=1e-3)
    # The statistics are weights: they copy into another build of the spec.
    other = build_model(write_spec(ADAPTED, "other.yaml"))
    copy_weights(model, other)
    np.testing.assert_allclose(numpy(other(images[:4])), numpy(model(images[:4])), rtol=1e-5, atol=1e-6)


def test_a_supervised_run_adapts_before_training(write_spec, tmp_path):
    from trainers import run_training
    from trainers.data.pipeline import Preprocessing, model_inputs
    from trainers.run.loop import load_trained_model

    path = write_spec("""
        input: [12, 12, 1]
        layers:
          - normalization: {adapt: true}
            name: standardize
          - flatten
          - dense: {units: 10, activation: softmax}
        train:
          data: {dataset: digits, image_size: [12, 12]}
          epochs: 1
          batch_size: 64
    """)
    folder, _ = run_training(path, out=tmp_path / "runs", verbose=0)
    model = load_trained_model(folder)
    from builder.language.train_section import resolve_train
    from trainers.data.datasets import load_dataset

    config = resolve_train({"data": {"dataset": "digits", "image_size": [12, 12]}})
    images = np.concatenate(list(model_inputs(load_dataset(config["data"]).train,
                                              Preprocessing.of((12, 12, 1), config["data"])).as_numpy_iterator()))
    mean, variance = statistics(model.get_layer("standardize"))
    assert mean == pytest.approx([images.mean()], rel=1e-4)
    assert variance == pytest.approx([images.var()], rel=1e-4)


@pytest.mark.parametrize("args, message", [
    ("{mean: [0.5]}", "give both `mean` and `variance`"),
    ("{mean: [0.5], variance: [1.0], adapt: true}", "leave `mean` and `variance` out"),
])
def test_normalization_statistics_are_fixed_or_weights_not_half_of_each(write_spec, args, message):
    with pytest.raises(SpecError, match=message):
        build_model(write_spec(f"input: [4, 4, 1]\nlayers:\n  - normalization: {args}\n"))


def test_initializers_and_regularizers_take_their_arguments(write_spec):
    import keras

    model = build_model(write_spec("""
        input: [6, 6, 2]
        layers:
          - conv:
              filters: 3
              kernel: 3
              kernel_initializer: {variance_scaling: {scale: 2.0, mode: fan_out, distribution: untruncated_normal}}
              kernel_regularizer: {l1_l2: {l1: 0.01, l2: 0.002}}
              bias_initializer: {constant: {value: 0.5}}
            name: conv
          - separable_conv: {filters: 2, kernel: 1, depthwise_initializer: ones, pointwise_regularizer: l2}
            name: separable
          - batchnorm: {gamma_initializer: {constant: {value: 0.25}}, beta_regularizer: {l1: {l1: 0.1}}}
            name: norm
    """))
    conv = model.get_layer("conv")
    assert conv.kernel_initializer.get_config() | {} == {**conv.kernel_initializer.get_config(), "scale": 2.0,
                                                         "mode": "fan_out", "distribution": "untruncated_normal"}
    np.testing.assert_array_equal(numpy(conv.bias), [0.5] * 3)
    np.testing.assert_array_equal(numpy(model.get_layer("separable").depthwise_kernel), 1.0)
    np.testing.assert_array_equal(numpy(model.get_layer("norm").gamma), 0.25)
    model(np.zeros((1, 6, 6, 2), "float32"))
    kernel = numpy(conv.kernel)
    expected = 0.01 * np.abs(kernel).sum() + 0.002 * np.square(kernel).sum()
    penalties = sorted(float(numpy(loss)) for loss in model.losses)
    assert len(model.losses) == 3 and any(abs(p - expected) < 1e-5 * max(1, expected) for p in penalties)
    assert isinstance(model.get_layer("separable").pointwise_regularizer, keras.regularizers.L2)


def test_the_catalog_is_exactly_what_keras_has():
    for kind, catalog in (("initializer", INITIALIZERS), ("regularizer", REGULARIZERS)):
        classes = keras_classes(kind)
        assert set(classes) == {class_name for class_name, _ in catalog.values()}
        for name, (class_name, arguments) in catalog.items():
            assert type(keras_object(kind, name)) is classes[class_name]
            signature = [p for p in inspect.signature(classes[class_name].__init__).parameters
                         if p not in ("self", "args", "kwargs")]
            assert tuple(signature) == arguments, name


def test_every_layer_type_offers_every_initializer_and_regularizer_its_keras_class_takes():
    import keras

    from .test_layer_types import SAMPLES

    checked = 0
    for name, entry in LAYER_TYPES.items():
        required = {**{a: 1 for a, arg in entry.args.items() if arg.required and arg.kind == "int"},
                    **{a: 0.1 for a, arg in entry.args.items() if arg.required and arg.kind == "number"},
                    **{a: 1 for a, arg in entry.args.items() if arg.required and arg.kind == "ints"},
                    **{a: [1] for a, arg in entry.args.items() if arg.required and arg.kind in ("shape", "numbers")},
                    **{a: arg.choices[0] for a, arg in entry.args.items() if arg.required and arg.choices},
                    **(SAMPLES[name][0] if name in SAMPLES else {})}  # a sample's arguments where a type has one
        layer = entry.factory(**entry.keras_kwargs(required), name="probe")
        accepted = inspect.signature(type(layer).__init__).parameters
        wanted = {p for p in accepted if p.endswith(("_initializer", "_regularizer"))}
        if wanted == {"activity_regularizer"}:  # Layer's own keyword, on a type without weights
            continue
        offered = {arg.keras_name or a for a, arg in entry.args.items() if arg.kind in ("initializer", "regularizer")}
        assert wanted <= offered, (name, wanted - offered)
        checked += bool(wanted)
        assert isinstance(layer, keras.layers.Layer)
    assert checked >= 8


def test_weights_copy_through_operator_layers_and_nested_sequential_models(write_spec):
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 3))
    stem = layers.Conv2D(4, 3, padding="same")(inputs)
    body = keras.Sequential([layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()])
    merged = keras.ops.relu(stem + body(stem))  # operations, not layers: `get_layer("add")` has none
    reference = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(merged)))
    rng = np.random.default_rng(4)
    for weight in reference.weights:
        weight.assign(rng.uniform(0.5, 1.5, size=weight.shape).astype("float32"))
    spec_built = build_model(write_spec("""
        input: [8, 8, 3]
        layers:
          - conv: {filters: 4, kernel: 3, padding: same}
          - residual:
              layers:
                - conv: {filters: 4, kernel: 3, padding: same}
                - batchnorm
                - relu
              shortcut: identity
          - relu
          - global_avg_pool
          - dense: {units: 2}
    """))
    assert copy_weights(reference, spec_built) == 4
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(numpy(spec_built(x)), numpy(reference(x)), rtol=1e-5)


def test_copy_weights_names_the_first_layer_where_the_models_part(write_spec):
    def network(second_width):
        return build_model(write_spec(f"""
            input: [8, 8, 3]
            layers:
              - conv: {{filters: 4, kernel: 3, padding: same}}
                name: first
              - conv: {{filters: {second_width}, kernel: 3, padding: same}}
                name: second
              - conv: {{filters: 8, kernel: 3, padding: same}}
                name: third
              - conv: {{filters: 8, kernel: 3, padding: same}}
                name: fourth
              - global_avg_pool
              - dense: {{units: 2}}
                name: head
        """, f"net{second_width}.yaml"))

    with pytest.raises(WeightTransferError) as caught:
        copy_weights(network(4), network(6))
    assert str(caught.value) == (
        "the models differ at source layer 'second' (Conv2D, weights [(3, 3, 4, 4), (4,)], output (None, 8, 8, 4)), "
        "reached by input > first > second, and target layer 'second' (Conv2D, weights [(3, 3, 4, 6), (6,)], "
        "output (None, 8, 8, 6)), reached by input > first > second: both are Conv2D layers, with weights of other "
        "shapes; the widths (filters, units) or kernel sizes differ, so set the spec's params to the source's")


def test_a_bare_type_followed_by_keys_gets_the_yaml_hint(write_spec):
    path = write_spec("""
        input: [8, 8, 3]
        layers:
          - global_avg_pool
            name: pooled
    """)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        f"{path}:4:9: not valid YAML: mapping values are not allowed here; '- global_avg_pool' is a bare type "
        "name, which takes no keys: write '- global_avg_pool: {}' and keep 'name: pooled' below it")
