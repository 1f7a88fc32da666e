import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class Sampling(keras.layers.Layer):
    """The VAE's reparametrized sample (Kingma & Welling 2013): z = mean + exp(0.5 * log_var) * eps.

    `eps` is standard normal noise from the layer's own `keras.random.SeedGenerator`, so gradients
    flow to `mean` and `log_var` while the randomness stays outside them. In training it samples;
    at inference it returns the mean (the most likely code), so a trained VAE reconstructs
    deterministically and gives the same output on every backend, unless `always_sample` is set.
    Generating from the prior uses the decoder alone and is not affected.

    Args:
        seed: integer seed of the noise; None draws a different seed each time the layer is made.
        always_sample: sample at inference too.

    Call arguments:
        inputs: a list `[mean, log_var]` of tensors of the same shape.
    """

    def __init__(self, seed=None, always_sample=False, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"Invalid value received for argument `seed`. Expected an integer or None. "
                             f"Received: seed={seed!r}")
        self.seed = seed
        self.always_sample = bool(always_sample)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        if not training and not self.always_sample:
            return mean
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
        config = {"seed": self.seed, "always_sample": self.always_sample}
        return {**base_config, **config}
