import keras


@keras.saving.register_keras_serializable(package="blueprint")
class ClassToken(keras.layers.Layer):
    """A learned token put in front of a sequence (Dosovitskiy et al. 2021, the Vision
    Transformer's [class] token): `(batch, length, channels)` becomes `(batch, length + 1,
    channels)`, the first position holding the same learned vector for every example. A head that
    reads that position after the transformer blocks sees what attention gathered into it.

    Args:
        initializer: initializer of the token (the ViT paper: zeros).
    """

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("ClassToken takes a sequence (batch, length, channels) with known channels. "
                             f"Received: input_shape={input_shape}")
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]), initializer=self.initializer)

    def call(self, inputs):
        token = keras.ops.cast(self.token, inputs.dtype)
        batch_tokens = keras.ops.broadcast_to(token, (keras.ops.shape(inputs)[0], 1, inputs.shape[-1]))
        return keras.ops.concatenate([batch_tokens, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        batch, length, channels = input_shape
        return (batch, None if length is None else length + 1, channels)

    def get_config(self):
        return {**super().get_config(), "initializer": keras.initializers.serialize(self.initializer)}
