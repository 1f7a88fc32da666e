import keras


@keras.saving.register_keras_serializable(package="blueprint")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings added to a sequence (the Vision Transformer's and BERT's): one
    learned vector per position, `x + table[:length]`, so that attention, which treats its inputs
    as a set, can tell positions apart. The table has one row per position of the sequence the
    layer is built on.

    Args:
        initializer: initializer of the table (ViT and BERT: a normal with standard deviation 0.02).
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer or keras.initializers.RandomNormal(stddev=0.02))

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[-1] is None:
            raise ValueError("PositionEmbedding takes a sequence (batch, length, channels) of known length and "
                             f"channels. Received: input_shape={input_shape}")
        self.table = self.add_weight(name="table", shape=tuple(input_shape[1:]), initializer=self.initializer)

    def call(self, inputs):
        return inputs + keras.ops.cast(self.table, inputs.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initializer": keras.initializers.serialize(self.initializer)}
