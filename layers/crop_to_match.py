import keras


@keras.saving.register_keras_serializable(package="blueprint")
class CropToMatch(keras.layers.Layer):
    """Centre-crop a feature map to the height and width of a reference map.

    The 2015 U-Net's unpadded convolutions shrink the decoder's maps, so each encoder map is
    cropped to the decoder map it joins (Ronneberger et al. 2015, Fig. 1: "copy and crop"). When
    the size difference is odd, the extra row or column is taken from the bottom or right. Equal
    sizes pass the input through unchanged, so padded networks can keep the same spec.

    Call arguments:
        inputs: a list `[x, reference]` of channels-last maps; `x` must be at least as large as
            `reference` in height and width. The channels of `x` are kept.
    """

    def call(self, inputs):
        x, reference = inputs
        (top, bottom), (left, right) = self._margins(x.shape, reference.shape)
        if top == bottom == left == right == 0:
            return x
        return x[:, top:x.shape[1] - bottom, left:x.shape[2] - right, :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        self._margins(x_shape, reference_shape)
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    @staticmethod
    def _margins(x_shape, reference_shape):
        if len(x_shape) != 4 or len(reference_shape) != 4:
            raise ValueError(f"CropToMatch needs two 4D (batch, height, width, channels) inputs. Received: "
                             f"shapes {tuple(x_shape)} and {tuple(reference_shape)}")
        margins = []
        for axis in (1, 2):
            size, target = x_shape[axis], reference_shape[axis]
            if size is None or target is None:
                raise ValueError("CropToMatch needs known heights and widths; give the model a fixed input size")
            if size < target:
                raise ValueError(f"CropToMatch cannot crop a map of {size} to a larger {target} along axis "
                                 f"{axis}. Received: shapes {tuple(x_shape)} and {tuple(reference_shape)}")
            extra = size - target
            margins.append((extra // 2, extra - extra // 2))
        return margins
