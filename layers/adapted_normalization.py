import keras


@keras.saving.register_keras_serializable(package="blueprint")
class AdaptedNormalization(keras.layers.Normalization):
    """`keras.layers.Normalization` whose mean and variance are weights, set from data.

    Keras keeps statistics given as numbers as constants, which weight copying and checkpoints
    cannot see; without them it holds `mean`, `variance` (and `count`) as weights, filled by
    `adapt()`. `adapt_on_training_data` asks the trainers to adapt it from the training split
    (what reaches this layer, batch by batch) before the first epoch.

    Args:
        adapt_on_training_data: adapt before training (a new run; a resumed one keeps its weights).
        axis: the feature axis (or axes) with their own statistics.
    """

    def __init__(self, adapt_on_training_data=False, axis=-1, **kwargs):
        kwargs.pop("mean", None), kwargs.pop("variance", None)  # never constants: always weights
        super().__init__(axis=axis, **kwargs)
        self.adapt_on_training_data = bool(adapt_on_training_data)

    def call(self, inputs):
        # From the weights themselves, not Keras's copy of them made when `adapt` finishes: weights
        # copied in or loaded take effect at once.
        inputs = keras.ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        mean = keras.ops.reshape(keras.ops.cast(self.adapt_mean, inputs.dtype), self._broadcast_shape)
        variance = keras.ops.reshape(keras.ops.cast(self.adapt_variance, inputs.dtype), self._broadcast_shape)
        return (inputs - mean) / keras.ops.maximum(keras.ops.sqrt(variance), keras.config.epsilon())

    def get_config(self):
        config = super().get_config()
        config.pop("mean", None), config.pop("variance", None)
        return {**config, "adapt_on_training_data": self.adapt_on_training_data}
