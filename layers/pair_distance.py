import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class PairDistance(keras.layers.Layer):
    """The Euclidean distance between two embeddings, one value per example.

    The head of a Siamese network (Hadsell et al. 2006; Schroff et al. 2015): both towers map an
    image to an embedding with shared weights, and this layer measures how far apart the two are.

    Args:
        squared: return the squared distance instead (no square root).

    Call arguments:
        inputs: a list `[a, b]` of tensors of the same shape `(batch, dim)`.
    """

    def __init__(self, squared=False, **kwargs):
        super().__init__(**kwargs)
        self.squared = bool(squared)

    def call(self, inputs):
        a, b = inputs
        squared = ops.sum(ops.square(a - b), axis=-1, keepdims=True)
        if self.squared:
            return squared
        # the gradient of sqrt at 0 is infinite: a tiny floor keeps identical pairs trainable
        return ops.sqrt(ops.maximum(squared, 1e-12))

    def compute_output_shape(self, input_shape):
        a_shape, b_shape = input_shape
        if tuple(a_shape[1:]) != tuple(b_shape[1:]):
            raise ValueError(f"PairDistance needs two inputs of the same shape. Received: shapes {tuple(a_shape)} "
                             f"and {tuple(b_shape)}")
        return (a_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "squared": self.squared}
