import numpy as np
import pytest

from layers import CropToMatch


@pytest.mark.parametrize("size, target, top", [(64, 56, 4), (568, 392, 88), (9, 6, 1)])
def test_centre_crop(size, target, top):
    import keras

    x = np.arange(size * size * 2, dtype="float32").reshape(1, size, size, 2)
    reference = np.zeros((1, target, target, 5), "float32")
    out = keras.ops.convert_to_numpy(CropToMatch()([x, reference]))
    # Odd differences leave the extra row and column at the bottom and right.
    np.testing.assert_array_equal(out, x[:, top:top + target, top:top + target, :])


def test_equal_sizes_pass_through():
    import keras

    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(CropToMatch()([x, x[..., :1]])), x)


def test_symbolic_shape_and_errors():
    import keras

    out = CropToMatch()([keras.Input((136, 136, 512)), keras.Input((104, 104, 512))])
    assert tuple(out.shape) == (None, 104, 104, 512)
    with pytest.raises(ValueError, match="cannot crop a map of 4 to a larger 6"):
        CropToMatch()([keras.Input((4, 8, 1)), keras.Input((6, 6, 1))])
