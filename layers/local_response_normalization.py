import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, section 3.3).

    Each activation is divided by `(bias + alpha * sum of squares over the 2 * depth_radius + 1
    neighbouring channels) ** beta`. AlexNet's values are the defaults (k=2, n=5, alpha=1e-4,
    beta=0.75), with the same convention as `tf.nn.local_response_normalization`: `alpha`
    multiplies the plain sum (it is not divided by n). Channels are the last axis.

    Args:
        depth_radius: channels on each side of the centre included in the sum.
        bias: the additive constant k.
        alpha: the scale of the sum of squares.
        beta: the exponent.

    Call arguments:
        inputs: a tensor whose last axis is channels.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(
                "Invalid value received for argument `depth_radius`. Expected a non-negative "
                f"integer. Received: depth_radius={depth_radius}"
            )
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        squared = ops.square(inputs)
        channels = ops.shape(inputs)[-1]
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[self.depth_radius, self.depth_radius]]
        padded = ops.pad(squared, pad)
        window = 2 * self.depth_radius + 1
        # A sum of shifted slices: exact, backend-agnostic, and cheap for AlexNet's n=5.
        total = padded[..., 0:channels]
        for offset in range(1, window):
            total = total + padded[..., offset:offset + channels]
        return inputs / ops.power(self.bias + self.alpha * total, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
        return {**base_config, **config}
