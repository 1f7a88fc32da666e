import keras


@keras.saving.register_keras_serializable(package="blueprint")
class LayerScale(keras.layers.Layer):
    """A learnable per-channel scale, `x * gamma` (Touvron et al. 2021, "Going deeper with Image
    Transformers"; ConvNeXt): `gamma` starts at `init_value` for every channel, so a residual
    branch ending in it starts near silent and grows as training needs it.

    Args:
        init_value: the starting value of every channel's scale.
        axis: the channel axis.
    """

    def __init__(self, init_value=1e-6, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)
        self.axis = int(axis)

    def build(self, input_shape):
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"LayerScale needs a known channel axis; received input_shape={input_shape}")
        self.gamma = self.add_weight(name="gamma", shape=(channels,),
                                     initializer=keras.initializers.Constant(self.init_value))

    def call(self, inputs):
        rank = len(inputs.shape)
        axis = self.axis % rank
        shape = [1] * rank
        shape[axis] = -1
        return inputs * keras.ops.reshape(keras.ops.cast(self.gamma, inputs.dtype), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value, "axis": self.axis}
