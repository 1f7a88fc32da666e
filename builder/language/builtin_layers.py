"""The built-in layer types: the one place a spec type name is tied to a Keras layer.

Spec names are short (`kernel`, `pool`) where Keras's are long (`kernel_size`, `pool_size`);
defaults are Keras's own, so a spec reads like the Keras code it replaces.
"""

from __future__ import annotations

from .layer_registry import REQUIRED, Arg, register_layer

ACTIVATIONS = (
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu",
    "hard_swish", "hard_silu", "mish", "sigmoid", "hard_sigmoid", "tanh", "softmax",
    "log_softmax", "softplus", "softsign", "exponential",
)
PADDINGS = ("valid", "same")
_SPECTRAL_NORM = Arg("bool", False, "compute with the kernel divided by its largest singular value, estimated by one "
                     "power iteration per training step, the gradient passing through it (Miyato et al. 2018)")


def _keras_layers():
    import keras

    return keras.layers


def _own_layers():
    import layers

    return layers


def _register(name, keras_class, args=None, doc="", inputs="one", category="core", fixed=None,
              normalizable=False, call=None):
    """Register a type built as `keras_class(keras.layers)(**kwargs, **fixed)`.

    `keras_class` picks the class from `keras.layers` lazily, so no backend loads at import.
    `normalizable`: the type takes `spectral_norm`, which wraps the layer in our
    layers.SpectralNormalization under the spec's name.
    """
    fixed = dict(fixed or {})
    if normalizable:
        args = {**(args or {}), "spectral_norm": _SPECTRAL_NORM}

    def factory(**kwargs):
        spectral = kwargs.pop("spectral_norm", False)
        if not spectral:
            return keras_class(_keras_layers())(**fixed, **kwargs)
        import layers

        name = kwargs.pop("name", None)
        inner = keras_class(_keras_layers())(**fixed, **kwargs, name=None if name is None else f"{name}_weights")
        return layers.SpectralNormalization(inner, name=name)

    factory.__qualname__ = f"build_{name}"
    register_layer(name, factory, args, doc, inputs, category, keywords_of="Keras", call=call)


def _activation_arg(default=None):
    return Arg("string", default, "activation applied to the output", choices=(None, *ACTIVATIONS))


def _initializer(default, what):
    return Arg("initializer", default, f"initializer of {what}")


def _regularizer(what):
    return Arg("regularizer", None, f"regularizer of {what} (penalty added to the loss)")


def _weights_args(kernels=("kernel",)):
    """Initializers and regularizers of a layer's kernels (Keras's names) and bias."""
    args = {"use_bias": Arg("bool", True, "learn an additive bias")}
    for kernel in kernels:
        args[f"{kernel}_initializer"] = _initializer("glorot_uniform", f"the {kernel} weights")
    args["bias_initializer"] = _initializer("zeros", "the bias")
    for kernel in kernels:
        args[f"{kernel}_regularizer"] = _regularizer(f"the {kernel} weights")
    args["bias_regularizer"] = _regularizer("the bias")
    args["activity_regularizer"] = _regularizer("the output")
    return args


def _norm_args(moving=False):
    args = {
        "beta_initializer": _initializer("zeros", "the offset (beta)"),
        "gamma_initializer": _initializer("ones", "the scale (gamma)"),
    }
    if moving:
        args["moving_mean_initializer"] = _initializer("zeros", "the moving mean")
        args["moving_variance_initializer"] = _initializer("ones", "the moving variance")
    args["beta_regularizer"] = _regularizer("the offset (beta)")
    args["gamma_regularizer"] = _regularizer("the scale (gamma)")
    return args


def _conv_args(kernel_required=True, with_filters=True, rank=2):
    args = {}
    if with_filters:
        args["filters"] = Arg("int", REQUIRED, "number of output channels", minimum=1)
    args.update({
        "kernel": Arg("ints", REQUIRED if kernel_required else 3, "kernel size",
                      minimum=1, keras_name="kernel_size"),
        "strides": Arg("ints", 1, "stride", minimum=1),
        "padding": Arg("string", "valid", "'valid' (no padding) or 'same'", choices=PADDINGS),
        "dilation_rate": Arg("ints", 1, "dilation", minimum=1),
        "activation": _activation_arg(),
    })
    return args


def _pool_args(default_pool=2):
    return {
        "pool": Arg("ints", default_pool, "window size", minimum=1, keras_name="pool_size"),
        "strides": Arg("ints", None, "stride (defaults to the window size)", minimum=1),
        "padding": Arg("string", "valid", "'valid' or 'same'", choices=PADDINGS),
    }


# Convolutions --------------------------------------------------------------------------------
_register("conv", lambda L: L.Conv2D, {**_conv_args(), "groups": Arg("int", 1, "grouped convolution", minimum=1),
                             **_weights_args()}, "2D convolution (keras.layers.Conv2D)", category="conv",
          normalizable=True)
_register("conv1d", lambda L: L.Conv1D, {**_conv_args(), "groups": Arg("int", 1, "grouped convolution", minimum=1),
                               **_weights_args()}, "1D convolution (keras.layers.Conv1D)", category="conv")
_register("depthwise_conv", lambda L: L.DepthwiseConv2D, {
    **_conv_args(with_filters=False),
    "depth_multiplier": Arg("int", 1, "output channels per input channel", minimum=1),
    **_weights_args(("depthwise",)),
}, "depthwise 2D convolution (keras.layers.DepthwiseConv2D)", category="conv")
_register("separable_conv", lambda L: L.SeparableConv2D, {
    **_conv_args(),
    "depth_multiplier": Arg("int", 1, "depthwise channels per input channel", minimum=1),
    **_weights_args(("depthwise", "pointwise")),
}, "depthwise-separable 2D convolution (keras.layers.SeparableConv2D)", category="conv")
_register("conv_transpose", lambda L: _own_layers().Conv2DTranspose, {
    **_conv_args(),
    "output_padding": Arg("ints", None, "extra rows/columns on one side of the output", minimum=0),
    **_weights_args(),
}, "transposed 2D convolution, 'up-convolution' (keras.layers.Conv2DTranspose, computed as a convolution and a "
   "pixel shuffle)", category="conv", normalizable=True)
_register("dense", lambda L: L.Dense, {
    "units": Arg("int", REQUIRED, "number of output units", minimum=1),
    "activation": _activation_arg(),
    **_weights_args(),
}, "fully connected layer (keras.layers.Dense)", category="core", normalizable=True)

# Pooling ---------------------------------------------------------------------------------------
_register("maxpool", lambda L: L.MaxPooling2D, _pool_args(), "2D max pooling (keras.layers.MaxPooling2D)",
          category="pooling")
_register("avgpool", lambda L: L.AveragePooling2D, _pool_args(), "2D average pooling (keras.layers.AveragePooling2D)",
          category="pooling")
_register("maxpool1d", lambda L: L.MaxPooling1D, _pool_args(), "1D max pooling (keras.layers.MaxPooling1D)",
          category="pooling")
_register("avgpool1d", lambda L: L.AveragePooling1D, _pool_args(),
          "1D average pooling (keras.layers.AveragePooling1D)", category="pooling")
_GLOBAL_ARGS = {"keepdims": Arg("bool", False, "keep the spatial axes with size 1")}
_register("global_avg_pool", lambda L: L.GlobalAveragePooling2D, _GLOBAL_ARGS,
          "mean over height and width (keras.layers.GlobalAveragePooling2D)", category="pooling")
_register("global_max_pool", lambda L: L.GlobalMaxPooling2D, _GLOBAL_ARGS,
          "maximum over height and width (keras.layers.GlobalMaxPooling2D)", category="pooling")
_register("global_avg_pool1d", lambda L: L.GlobalAveragePooling1D, _GLOBAL_ARGS,
          "mean over the steps (keras.layers.GlobalAveragePooling1D)", category="pooling")
_register("global_max_pool1d", lambda L: L.GlobalMaxPooling1D, _GLOBAL_ARGS,
          "maximum over the steps (keras.layers.GlobalMaxPooling1D)", category="pooling")

# Normalization and regularization --------------------------------------------------------------
_register("batchnorm", lambda L: L.BatchNormalization, {
    "axis": Arg("int", -1, "the feature axis"),
    "momentum": Arg("number", 0.99, "moving-average momentum"),
    "epsilon": Arg("number", 1e-3, "added to the variance", minimum=0),
    "center": Arg("bool", True, "learn an offset (beta)"),
    "scale": Arg("bool", True, "learn a scale (gamma)"),
    **_norm_args(moving=True),
}, "batch normalization (keras.layers.BatchNormalization)", category="normalization")
_register("group_norm", lambda L: L.GroupNormalization, {
    "groups": Arg("int", 32, "channel groups normalized separately (1: layer norm over all positions and channels; "
                             "channels: instance norm)", minimum=1),
    "axis": Arg("int", -1, "the channel axis"),
    "epsilon": Arg("number", 1e-3, "added to the variance", minimum=0),
    "center": Arg("bool", True, "learn an offset"),
    "scale": Arg("bool", True, "learn a scale"),
    **_norm_args(),
}, "normalize each example over groups of channels (Wu and He 2018; keras.layers.GroupNormalization)",
    category="normalization")
_register("layernorm", lambda L: L.LayerNormalization, {
    "axis": Arg("ints", -1, "axes to normalize over"),
    "epsilon": Arg("number", 1e-3, "added to the variance", minimum=0),
    "center": Arg("bool", True, "learn an offset (beta)"),
    "scale": Arg("bool", True, "learn a scale (gamma)"),
    **_norm_args(),
}, "layer normalization (keras.layers.LayerNormalization)", category="normalization")
_register("dropout", lambda L: L.Dropout, {
    "rate": Arg("number", REQUIRED, "fraction of units dropped during training", minimum=0),
    "noise_shape": Arg("shape", None, "the dropout mask's shape with the batch axis, null for an input "
                                      "dimension ([null, 1, 1, null]: whole channels)"),
    "seed": Arg("int", None, "random seed"),
}, "dropout of single elements during training (keras.layers.Dropout)", category="regularization")
_register("spatial_dropout", lambda L: L.SpatialDropout2D, {
    "rate": Arg("number", REQUIRED, "fraction of channels dropped during training", minimum=0),
    "seed": Arg("int", None, "random seed"),
}, "dropout of whole channels during training (keras.layers.SpatialDropout2D)", category="regularization")
_register("l2_normalize", lambda L: L.UnitNormalization, {
    "axis": Arg("ints", -1, "the axis (or axes) normalized to unit Euclidean length"),
}, "scale each vector to unit L2 length (keras.layers.UnitNormalization): embeddings on the unit sphere",
    category="normalization")
_register("rescaling", lambda L: L.Rescaling, {
    "scale": Arg("number", REQUIRED, "multiplier"),
    "offset": Arg("number", 0.0, "added after scaling"),
}, "x * scale + offset (keras.layers.Rescaling)", category="preprocessing")


def _normalization(mean=None, variance=None, adapt=False, axis=-1, name=None):
    import keras

    import layers

    if (mean is None) != (variance is None):
        raise ValueError("give both `mean` and `variance` (fixed statistics), or neither (statistics "
                         "held as weights)")
    if mean is not None and adapt:
        raise ValueError("`adapt: true` sets mean and variance from the training data: leave "
                         "`mean` and `variance` out")
    if mean is None:
        return layers.AdaptedNormalization(adapt_on_training_data=adapt, axis=axis, name=name)
    return keras.layers.Normalization(mean=mean, variance=variance, axis=axis, name=name)


register_layer("normalization", _normalization, {
    "mean": Arg("numbers", None, "per-feature mean (fixed); leave out with `variance` to hold both as weights"),
    "variance": Arg("numbers", None, "per-feature variance (fixed)", minimum=0),
    "adapt": Arg("bool", False, "set the mean and variance (weights) from the training data before "
                                "training (the trainers do it)"),
    "axis": Arg("ints", -1, "the feature axis"),
}, "(x - mean) / sqrt(variance) (keras.layers.Normalization): fixed statistics, or weights set from "
   "data (`adapt: true`) or copied", category="preprocessing", keywords_of="Keras")


def _register_own(name, own_class, args, doc, inputs="one", category="custom"):
    """Register one of our layers from `layers/` (imported when first built, like Keras's)."""

    def factory(**kwargs):
        import layers

        return own_class(layers)(**kwargs)

    factory.__qualname__ = f"build_{name}"
    register_layer(name, factory, args, doc, inputs, category)


_register_own("lrn", lambda own: own.LocalResponseNormalization, {
    "depth_radius": Arg("int", 2, "channels on each side in the sum (AlexNet: 2, i.e. n=5)", minimum=0),
    "bias": Arg("number", 2.0, "k in the paper", minimum=0),
    "alpha": Arg("number", 1e-4, "scale of the sum of squares"),
    "beta": Arg("number", 0.75, "exponent"),
}, "local response normalization across channels (Krizhevsky et al. 2012)", category="normalization")
_register_own("pair_distance", lambda own: own.PairDistance, {
    "squared": Arg("bool", False, "the squared distance (no square root)"),
}, "Euclidean distance between two embeddings, one value per example (a Siamese head); from: [a, b]",
    inputs="many", category="embedding")
_register_own("sampling", lambda own: own.Sampling, {
    "seed": Arg("int", None, "seed of the noise (null: a fresh seed per build)"),
    "always_sample": Arg("bool", False, "sample at inference too (default: the mean at inference)"),
}, "VAE reparametrized sample z = mean + exp(0.5 log_var) * eps in training, the mean at inference; "
   "from: [mean, log_var]", inputs="many",
    category="generative")

_register_own("layer_scale", lambda own: own.LayerScale, {
    "init": Arg("number", 1e-6, "the starting value of every channel's scale", keras_name="init_value"),
    "axis": Arg("int", -1, "the channel axis"),
}, "a learnable per-channel scale x * gamma, gamma starting at `init` (layer scale: CaiT, ConvNeXt; "
   "layers.LayerScale)",
    category="regularization")
_register_own("drop_path", lambda own: own.DropPath, {
    "rate": Arg("number", REQUIRED, "probability of dropping an example's whole input in training "
                                    "(may follow the depth: ${rate * i / n})", minimum=0),
    "seed": Arg("int", None, "random seed"),
}, "stochastic depth: drop each example's whole input (not single elements) in training, scale the "
   "kept ones; the identity at inference", category="regularization")

# Activations -----------------------------------------------------------------------------------
_register("relu", lambda L: L.ReLU, {
    "max_value": Arg("number", None, "upper clip", minimum=0),
    "negative_slope": Arg("number", 0.0, "slope below the threshold", minimum=0),
    "threshold": Arg("number", 0.0, "values below are set to zero (or the negative slope)"),
}, "rectified linear unit, optionally clipped or leaky (keras.layers.ReLU)", category="activation")
_register("relu6", lambda L: L.ReLU, {}, "min(max(x, 0), 6)", category="activation", fixed={"max_value": 6.0})
_register("leaky_relu", lambda L: L.LeakyReLU, {
    "negative_slope": Arg("number", 0.3, "slope for x < 0", minimum=0),
}, "x for x >= 0, negative_slope * x below (keras.layers.LeakyReLU)", category="activation")
_register("elu", lambda L: L.ELU, {"alpha": Arg("number", 1.0, "scale for x < 0")},
          "exponential linear unit (keras.layers.ELU)", category="activation")
for _name in ("gelu", "swish", "hard_swish", "sigmoid", "tanh"):
    _register(_name, lambda L: L.Activation, {}, f"keras.activations.{_name}", category="activation",
              fixed={"activation": _name})
_register("softmax", lambda L: L.Softmax, {"axis": Arg("ints", -1, "axis to normalize over")},
          "probabilities over an axis (keras.layers.Softmax)", category="activation")
_register("activation", lambda L: L.Activation, {
    "fn": Arg("string", REQUIRED, "activation name", choices=ACTIVATIONS, keras_name="activation"),
}, "any Keras activation by name", category="activation")

# Shape -----------------------------------------------------------------------------------------
_register("flatten", lambda L: L.Flatten, {}, "one vector per example (keras.layers.Flatten)", category="reshaping")
_register("reshape", lambda L: L.Reshape, {
    "target_shape": Arg("shape", REQUIRED, "new shape without the batch axis; -1 once to infer"),
}, "the same values in a new shape (keras.layers.Reshape)", category="reshaping")
_register("zero_padding", lambda L: L.ZeroPadding2D, {
    "padding": Arg("padding", 1, "rows/columns of zeros: n, [rows, cols] or [[top, bottom], [left, right]]",
                   minimum=0),
}, "zeros around the feature map (keras.layers.ZeroPadding2D)", category="reshaping")
_register("cropping", lambda L: L.Cropping2D, {
    "cropping": Arg("padding", REQUIRED, "rows/columns removed: n, [rows, cols] or [[top, bottom], [left, right]]",
                    minimum=0),
}, "rows and columns cut from the borders (keras.layers.Cropping2D)", category="reshaping")
_register("upsampling", lambda L: L.UpSampling2D, {
    "size": Arg("ints", 2, "upsampling factor", minimum=1),
    "interpolation": Arg("string", "nearest", "interpolation",
                         choices=("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")),
}, "repeat or interpolate rows and columns (keras.layers.UpSampling2D)", category="reshaping")
_register_own("crop_to_match", lambda own: own.CropToMatch, {},
              "centre-crop the first input to the second's height and width (U-Net's copy and crop); "
              "from: [map, reference]", inputs="many", category="reshaping")
_register("identity", lambda L: L.Identity, {}, "passes its input through (a named tap point)", category="core")


def _permute(L):
    def build(dims, **kwargs):  # `dims: 1`, a one-axis order, is the identity
        return L.Permute(dims if isinstance(dims, tuple) else (dims,), **kwargs)

    return build


_register("permute", _permute, {
    "dims": Arg("ints", REQUIRED, "the new order of the axes after the batch axis, counted from 1: [2, 1] swaps "
                                  "a sequence's positions and channels"),
}, "reorder the axes (keras.layers.Permute)", category="reshaping")
_register_own("slice", lambda own: own.Slice, {
    "axis": Arg("int", 1, "the axis to slice (not the batch axis 0)"),
    "start": Arg("int", 0, "first position kept (negative: from the end)"),
    "stop": Arg("int", None, "position after the last one kept; null for the end"),
    "index": Arg("int", None, "take this one position and drop the axis (x[:, index]), instead of start/stop"),
}, "positions start to stop along an axis, x[:, start:stop]; or one position with the axis dropped, "
   "x[:, index] (a class token's readout) (layers.Slice)", category="reshaping")

# Attention and tokens --------------------------------------------------------------------------


def _attend(layer, tensors):
    """Self-attention on one input (query = value = key); cross-attention on [query, value(, key)]."""
    query, value, key = (tensors + [None, None])[:3]
    return layer(query, query if value is None else value, key)


_register("attention", lambda L: L.MultiHeadAttention, {
    "heads": Arg("int", REQUIRED, "number of attention heads", minimum=1, keras_name="num_heads"),
    "key_dim": Arg("int", REQUIRED, "size of each head's query and key (ViT: channels / heads)", minimum=1),
    "value_dim": Arg("int", None, "size of each head's value (null: key_dim)", minimum=1),
    "dropout": Arg("number", 0.0, "dropout on the attention weights", minimum=0),
    "use_bias": Arg("bool", True, "biases in the query, key, value and output projections"),
    "output_shape": Arg("ints", None, "output size per position (null: the query's channels)", minimum=1),
    "attention_axes": Arg("ints", None, "the axes attention runs over (null: all but batch, heads and channels)"),
    "kernel_initializer": _initializer("glorot_uniform", "the projections"),
    "bias_initializer": _initializer("zeros", "the projections' biases"),
    "kernel_regularizer": _regularizer("the projections"),
    "bias_regularizer": _regularizer("the projections' biases"),
    "activity_regularizer": _regularizer("the output"),
    "seed": Arg("int", None, "seed of the attention dropout"),
}, "multi-head scaled dot-product attention (keras.layers.MultiHeadAttention): self-attention over a "
   "sequence by default; `from: [query, value]` or `[query, value, key]` for cross-attention",
    inputs=("query", "value", "key"), category="attention", call=_attend)
_register("einsum_dense", lambda L: L.EinsumDense, {
    "equation": Arg("string", REQUIRED, "the einsum of input and kernel, e.g. 'abc,cd->abd' (a dense layer over "
                                        "a sequence's channels)"),
    "output_shape": Arg("shape", REQUIRED, "the output's shape without the batch axis (null for a free axis)"),
    "activation": _activation_arg(),
    "bias_axes": Arg("string", None, "the output letters that get a bias (null: no bias)"),
    "kernel_initializer": _initializer("glorot_uniform", "the kernel"),
    "bias_initializer": _initializer("zeros", "the bias"),
    "kernel_regularizer": _regularizer("the kernel"),
    "bias_regularizer": _regularizer("the bias"),
    "activity_regularizer": _regularizer("the output"),
}, "a dense layer written as an einsum: any contraction of the input with a learned kernel "
   "(keras.layers.EinsumDense)", category="attention")
_register("token_embedding", lambda L: L.Embedding, {
    "input_dim": Arg("int", REQUIRED, "the vocabulary: token ids run from 0 to input_dim - 1", minimum=1),
    "output_dim": Arg("int", REQUIRED, "the size of each token's vector", minimum=1),
    "mask_zero": Arg("bool", False, "id 0 is padding: later layers that take a mask skip it"),
    "embeddings_initializer": _initializer("random_uniform", "the table"),
    "embeddings_regularizer": _regularizer("the table"),
    "activity_regularizer": _regularizer("the output"),
}, "a learned vector per integer token id (keras.layers.Embedding)", category="tokens")
_register_own("class_token", lambda own: own.ClassToken, {
    "initializer": _initializer("zeros", "the token"),
}, "a learned token put in front of a sequence, (length, channels) to (length + 1, channels): the Vision "
   "Transformer's [class] token, read out with `slice: {index: 0}` (layers.ClassToken)", category="tokens")
_register_own("position_embedding", lambda own: own.PositionEmbedding, {
    "initializer": _initializer({"random_normal": {"stddev": 0.02}}, "the table"),
}, "learned position embeddings added to a sequence, x + table, one row per position (ViT, BERT) "
   "(layers.PositionEmbedding)", category="tokens")

# Two-stage detection ---------------------------------------------------------------------------
_register_own("region_proposals", lambda own: own.RegionProposals, {
    "image_size": Arg("ints", REQUIRED, "the network input's [height, width] in pixels", minimum=1),
    "strides": Arg("ints", 16, "image pixels per cell of each level the RPN head predicts at", minimum=1),
    "sizes": Arg("numbers", [32, 64, 128], "anchor sizes (square root of the area), split evenly among the "
                                           "levels in order", minimum=0),
    "aspect_ratios": Arg("numbers", [0.5, 1.0, 2.0], "anchor width / height, the same at every level", minimum=0),
    "variance": Arg("numbers", [1.0, 1.0, 1.0, 1.0], "the offsets' scaling, in their order: centre y, centre x, "
                                                     "height, width", minimum=0),
    "pre_nms": Arg("int", 1000, "the best-scoring boxes per image that reach non-maximum suppression", minimum=1),
    "post_nms": Arg("int", 300, "the proposals kept per image", minimum=1),
    "nms_iou": Arg("number", 0.7, "a box overlapping a better one by more than this is removed", minimum=0),
    "min_size": Arg("number", 1.0, "boxes narrower or shorter than this (pixels) are dropped", minimum=0),
}, "Faster R-CNN's proposals from a Region Proposal Network: objectness and offsets at every anchor decoded, "
   "clipped, small boxes dropped, the best pre_nms kept, non-maximum suppression, the best post_nms out, zero "
   "boxes after the last; from: [objectness, offsets] (layers.RegionProposals)", inputs="many",
    category="detection")
_register_own("roi_align", lambda own: own.RoIAlign, {
    "size": Arg("ints", 7, "the output grid per box: n or [height, width]", minimum=1),
    "strides": Arg("ints", 16, "image pixels per feature pixel of each map, one per map (a pyramid's: powers of "
                               "two, each twice the one before)", minimum=1),
    "sampling_ratio": Arg("int", 2, "bilinear samples per bin along each axis", minimum=1),
    "aligned": Arg("bool", True, "shift boxes by half a feature pixel, so a pixel's centre maps to its value "
                                 "(Detectron2's aligned=True; false: torchvision's default)"),
    "canonical_size": Arg("number", 224, "with several maps: the box size (square root of its area) read at "
                                         "canonical_stride; twice as large, at twice the stride (FPN, eq. 1)",
                          minimum=0),
    "canonical_stride": Arg("int", 16, "with several maps: the stride a box of canonical_size is read at",
                            minimum=1),
}, "RoI Align (Mask R-CNN): a fixed grid of bilinear samples per box from a feature map, or from the pyramid "
   "level each box's size chooses; from: [boxes, map, ...], out (boxes, size, size, channels) "
   "(layers.RoIAlign)", inputs="many", category="detection")
_register_own("regions_to_batch", lambda own: own.RegionsToBatch, {},
              "each region as its own example, (regions, ...) to regions more examples, so that convolutions "
              "run on every region's grid (Mask R-CNN's mask head after roi_align); undone by batch_to_regions "
              "(layers.RegionsToBatch)", category="detection")
_register_own("batch_to_regions", lambda own: own.BatchToRegions, {},
              "regions_to_batch undone: the examples grouped back into (regions, ...) per image, the region count "
              "read from the second input (the boxes the regions were read at); from: [x, boxes] "
              "(layers.BatchToRegions)", inputs="many", category="detection")

# Merges ----------------------------------------------------------------------------------------
BROADCAST_RULE = ("inputs of the same rank broadcast: each axis equal, or 1 in one input "
                  "((H, W, C) with a (1, 1, C) gate)")
_register("add", lambda L: L.Add, {}, f"element-wise sum; {BROADCAST_RULE}", inputs="many", category="merge")
_register("subtract", lambda L: L.Subtract, {}, f"first input minus second; {BROADCAST_RULE}", inputs="many",
          category="merge")
_register("multiply", lambda L: L.Multiply, {}, f"element-wise product; {BROADCAST_RULE}", inputs="many",
          category="merge")
_register("average", lambda L: L.Average, {}, f"element-wise mean; {BROADCAST_RULE}", inputs="many",
          category="merge")
_register("maximum", lambda L: L.Maximum, {}, f"element-wise maximum; {BROADCAST_RULE}", inputs="many",
          category="merge")
_register("concat", lambda L: L.Concatenate, {
    "axis": Arg("int", -1, "the axis to join along; all other axes must match"),
}, "join along an axis (channels by default)", inputs="many", category="merge")
