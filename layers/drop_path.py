import keras


@keras.saving.register_keras_serializable(package="blueprint")
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al. 2016): in training, drop the whole input of each example
    with probability `rate` (scaling the kept ones by 1 / (1 - rate)), so a residual branch ending
    in it is skipped for that example; at inference the identity. Unlike `Dropout`, which drops
    single elements, every element of one example is kept or dropped together.

    Args:
        rate: the probability of dropping an example's input, in [0, 1).
        seed: integer seed of the draws; None draws a different seed each time the layer is made.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"DropPath needs 0 <= rate < 1. Received: rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        noise_shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        return keras.random.dropout(inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
