"""The two private APIs we depend on, each in a module named for it: these tests fail loudly
when a Keras or TensorFlow release moves them."""

import keras
import numpy as np


def test_keras_deferred_variable_queue_is_where_we_expect():
    from keras.src.backend.common import global_state, variables

    assert callable(global_state.get_global_attribute) and callable(global_state.set_global_attribute)
    assert callable(variables.initialize_all_variables)


def test_deferred_variables_are_initialized_by_us_and_others_are_left_alone():
    from builder.building.keras_internals import initialize_deferred_variables, own_deferred_variables

    with own_deferred_variables():
        with keras.StatelessScope(initialize_variables=False):
            layer = keras.layers.Dense(3, kernel_initializer="ones")
            layer.build((None, 2))
        initialize_deferred_variables()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), np.ones((2, 3)))


def test_tensorflow_op_determinism_can_be_turned_off_again():
    import tensorflow as tf

    from trainers.run.tensorflow_internals import disable_op_determinism

    tf.config.experimental.enable_op_determinism()
    disable_op_determinism()
    from tensorflow.python.framework import config as tf_config  # the internal the module wraps

    assert tf_config.is_op_determinism_enabled() is False
