import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class Sampling(keras.layers.Layer):
    """The VAE's reparametrized sample (Kingma & Welling 2013): z = mean + exp(0.5 * log_var) * eps.

    `eps` is standard normal noise from the layer's own `keras.random.SeedGenerator`, so gradients
    flow to `mean` and `log_var` while the randomness stays outside them. It samples in training
    and at inference alike: a VAE's encoder describes a distribution, and drawing from it is what
    the layer is for (the decoder alone generates from the prior).

    Args:
        seed: integer seed of the noise; None draws a different seed each time the layer is made.

    Call arguments:
        inputs: a list `[mean, log_var]` of tensors of the same shape.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"Invalid value received for argument `seed`. Expected an integer or None. "
                             f"Received: seed={seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        mean_shape, log_var_shape = input_shape
        if tuple(mean_shape) != tuple(log_var_shape):
            raise ValueError(f"Sampling needs `mean` and `log_var` of the same shape. Received: "
                             f"mean={tuple(mean_shape)}, log_var={tuple(log_var_shape)}")
        return mean_shape

    def get_config(self):
        base_config = super().get_config()
        config = {"seed": self.seed}
        return {**base_config, **config}
