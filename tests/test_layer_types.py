"""Every registered layer type, in one sweep each: symbolic and eager call, config round trip,
one training step. A new layer type must add its sample here, or the coverage test fails."""

import numpy as np
import pytest

from builder import LAYER_TYPES

# type name -> (spec arguments, input shape(s) without batch)
SAMPLES = {
    "conv": ({"filters": 3, "kernel": 3, "padding": "same", "activation": "relu"}, (6, 6, 2)),
    "conv1d": ({"filters": 3, "kernel": 3}, (8, 2)),
    "depthwise_conv": ({"kernel": 3, "depth_multiplier": 2}, (6, 6, 2)),
    "separable_conv": ({"filters": 4, "kernel": 3, "padding": "same"}, (6, 6, 2)),
    "conv_transpose": ({"filters": 3, "kernel": 2, "strides": 2}, (4, 4, 2)),
    "dense": ({"units": 3, "activation": "tanh"}, (5,)),
    "maxpool": ({"pool": 2}, (6, 6, 2)),
    "avgpool": ({"pool": 3, "strides": 1, "padding": "same"}, (6, 6, 2)),
    "maxpool1d": ({"pool": 2}, (8, 2)),
    "avgpool1d": ({"pool": 2}, (8, 2)),
    "global_avg_pool": ({}, (4, 4, 3)),
    "global_max_pool": ({"keepdims": True}, (4, 4, 3)),
    "global_avg_pool1d": ({}, (8, 3)),
    "global_max_pool1d": ({}, (8, 3)),
    "batchnorm": ({"epsilon": 1e-5}, (4, 4, 3)),
    "layernorm": ({}, (4, 4, 3)),
    "dropout": ({"rate": 0.5, "seed": 1}, (5,)),
    "drop_path": ({"rate": 0.5, "seed": 1}, (4, 4, 3)),
    "layer_scale": ({"init": 0.1}, (4, 4, 3)),
    "spatial_dropout": ({"rate": 0.5, "seed": 1}, (4, 4, 3)),
    "rescaling": ({"scale": 0.5, "offset": -1.0}, (4, 4, 3)),
    "normalization": ({"mean": [0.5, 0.5, 0.5], "variance": [0.25, 0.25, 0.25]}, (4, 4, 3)),
    "lrn": ({}, (4, 4, 8)),
    "l2_normalize": ({}, (5,)),
    "pair_distance": ({}, [(4,), (4,)]),
    "sampling": ({"seed": 1, "always_sample": True}, [(3,), (3,)]),
    "crop_to_match": ({}, [(7, 6, 2), (4, 4, 3)]),
    "relu": ({"max_value": 6.0}, (5,)),
    "relu6": ({}, (5,)),
    "leaky_relu": ({"negative_slope": 0.2}, (5,)),
    "elu": ({}, (5,)),
    "gelu": ({}, (5,)),
    "swish": ({}, (5,)),
    "hard_swish": ({}, (5,)),
    "sigmoid": ({}, (5,)),
    "tanh": ({}, (5,)),
    "softmax": ({}, (5,)),
    "activation": ({"fn": "selu"}, (5,)),
    "flatten": ({}, (2, 3, 4)),
    "reshape": ({"target_shape": [6, 4]}, (2, 3, 4)),
    "zero_padding": ({"padding": [[1, 0], [2, 1]]}, (4, 4, 3)),
    "cropping": ({"cropping": [1, 1]}, (6, 6, 3)),
    "upsampling": ({"size": 2, "interpolation": "bilinear"}, (3, 3, 2)),
    "identity": ({}, (5,)),
    "add": ({}, [(4, 3), (4, 3)]),
    "subtract": ({}, [(4, 3), (4, 3)]),
    "multiply": ({}, [(4, 3), (4, 3)]),
    "average": ({}, [(4, 3), (4, 3)]),
    "maximum": ({}, [(4, 3), (4, 3)]),
    "concat": ({}, [(4, 3), (4, 2)]),
    "permute": ({"dims": [2, 1]}, (5, 3)),
    "slice": ({"start": 1, "stop": -1}, (5, 3)),
    "group_norm": ({"groups": 2}, (4, 4, 6)),
    "attention": ({"heads": 2, "key_dim": 3, "dropout": 0.1, "seed": 1}, [(5, 4), (6, 4)]),
    "einsum_dense": ({"equation": "abc,cd->abd", "output_shape": [5, 6], "bias_axes": "d"}, (5, 3)),
    "token_embedding": ({"input_dim": 10, "output_dim": 4}, (5,)),
    "class_token": ({"initializer": "ones"}, (5, 3)),
    "position_embedding": ({}, (5, 3)),
    "roi_align": ({"size": 2, "strides": [1], "sampling_ratio": 1, "aligned": False}, [(3, 4), (4, 4, 2)]),
    "region_proposals": ({"image_size": [16, 16], "strides": [8], "sizes": [4, 8], "aspect_ratios": [1.0],
                          "pre_nms": 6, "post_nms": 3}, [(8,), (8, 4)]),
    # One region per image, so the examples (the sample's two) match the targets of the training step.
    "regions_to_batch": ({}, (1, 2, 2, 3)),
    "batch_to_regions": ({}, [(2, 2, 3), (1, 4)]),
}
# Types whose sample input is not the default uniform(0.1, 1) floats: integer token ids.
TOKEN_IDS = {"token_embedding": 10}


def test_every_registered_type_has_a_sample():
    assert sorted(LAYER_TYPES) == sorted(SAMPLES)


def _make(type_name, name="probe"):
    entry = LAYER_TYPES[type_name]
    args, _ = SAMPLES[type_name]
    for arg_name, value in args.items():
        assert entry.args[arg_name].check(value), f"sample {type_name}.{arg_name} does not fit its Arg"
    return entry.factory(**entry.keras_kwargs(args), name=name)


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_layer_type(type_name):
    import keras

    entry = LAYER_TYPES[type_name]
    _, shapes = SAMPLES[type_name]
    many = isinstance(shapes, list)
    shapes = shapes if many else [shapes]
    rng = np.random.default_rng(0)
    if type_name in TOKEN_IDS:
        data = [rng.integers(0, TOKEN_IDS[type_name], (2, *shape)).astype("int32") for shape in shapes]
    else:
        data = [rng.uniform(0.1, 1.0, (2, *shape)).astype("float32") for shape in shapes]

    # Symbolic call, as the builder calls the type.
    layer = _make(type_name)
    symbolic = [keras.Input(shape, dtype=d.dtype) for shape, d in zip(shapes, data)]
    out = entry.apply(layer, symbolic)
    # Eager call agrees with the symbolic shape.
    eager = keras.ops.convert_to_numpy(entry.apply(layer, [keras.ops.convert_to_tensor(d) for d in data]))
    assert eager.shape[1:] == tuple(out.shape[1:])
    assert np.all(np.isfinite(eager))

    # Config round trip: same class, same config, same output with copied weights.
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    entry.apply(clone, symbolic)
    clone.set_weights(layer.get_weights())
    again = keras.ops.convert_to_numpy(entry.apply(clone, [keras.ops.convert_to_tensor(d) for d in data]))
    np.testing.assert_allclose(again, eager, rtol=1e-5, atol=1e-6)

    # One training step through the layer.
    flat = keras.layers.Flatten()(out) if len(out.shape) > 2 else out
    head = keras.layers.Dense(1)(flat)
    model = keras.Model(symbolic if many else symbolic[0], head)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(data if many else data[0], np.ones((2, 1), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_the_reference_names_whose_keyword_a_shortened_argument_is():
    """`kernel` is `kernel_size` of a Keras class ("Keras: kernel_size"); `init` of layer_scale is
    `init_value` of our own class, which Keras does not have ("class keyword: init_value")."""
    import inspect

    checked = 0
    for type_name, entry in LAYER_TYPES.items():
        keywords = [arg.keras_name for arg in entry.args.values() if arg.keras_name]
        if not keywords or type_name not in SAMPLES:
            continue
        made = type(_make(type_name))
        from_keras = next((base for base in made.__mro__ if base.__module__.startswith("keras.")), None)
        owner = from_keras if entry.keywords_of == "Keras" else made
        assert owner.__module__.startswith("keras.") == (entry.keywords_of == "Keras"), (type_name, owner)
        assert set(keywords) <= set(inspect.signature(owner).parameters), (type_name, owner, keywords)
        checked += 1
    assert checked >= 5 and LAYER_TYPES["layer_scale"].keywords_of != "Keras"
