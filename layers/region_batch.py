import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class RegionsToBatch(keras.layers.Layer):
    """Each region as an example of its own: (batch, regions, ...) to (batch * regions, ...).

    A head that runs convolutions on every region's grid (Mask R-CNN's mask head reads a
    (regions, 14, 14, channels) block from `roi_align`) needs the regions in the batch axis, where
    Conv2D and the rest of Keras's layers expect examples. `BatchToRegions` puts them back.
    """

    def call(self, inputs):
        return ops.reshape(inputs, (-1, *inputs.shape[2:]))

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"RegionsToBatch needs (batch, regions, ...) inputs. Received: shape {tuple(input_shape)}")
        return (None, *input_shape[2:])


@keras.saving.register_keras_serializable(package="blueprint")
class BatchToRegions(keras.layers.Layer):
    """`RegionsToBatch` undone: (batch * regions, ...) to (batch, regions, ...), the region count read
    from a reference tensor (batch, regions, ...), such as the boxes the regions were read at.

    Call arguments:
        inputs: a list `[x, reference]`.
    """

    def call(self, inputs):
        x, reference = inputs
        return ops.reshape(x, (-1, self._regions(reference.shape), *x.shape[1:]))

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (reference_shape[0], self._regions(reference_shape), *x_shape[1:])

    @staticmethod
    def _regions(reference_shape) -> int:
        if len(reference_shape) < 2 or reference_shape[1] is None:
            raise ValueError(f"BatchToRegions reads the region count from its second input's axis 1, which must be "
                             f"known. Received: shape {tuple(reference_shape)}")
        return int(reference_shape[1])
