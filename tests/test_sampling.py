import numpy as np
import pytest

from layers import Sampling


def test_samples_have_the_given_mean_and_spread():
    import keras

    mean = np.full((20000, 2), [1.5, -2.0], "float32")
    log_var = np.full((20000, 2), [np.log(0.25), np.log(4.0)], "float32")
    z = keras.ops.convert_to_numpy(Sampling(seed=3)([mean, log_var], training=True))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


def test_gradients_reach_mean_and_log_var():
    """The point of the reparametrization: z is differentiable in both inputs."""
    import keras

    mean, log_var = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([mean, log_var], Sampling(seed=0, always_sample=True)([mean, log_var]))
    data = [np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32")]
    grads = _input_gradients(model, data)
    assert all(np.all(np.abs(g) > 0) for g in grads)


def _input_gradients(model, data):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(lambda a, b: keras.ops.sum(keras.ops.square(model([a, b]) + 1.0)), argnums=(0, 1))(*data)
    import tensorflow as tf

    tensors = [tf.constant(d) for d in data]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = tf.reduce_sum(tf.square(model(tensors) + 1.0))
    return [g.numpy() for g in tape.gradient(loss, tensors)]


def test_same_seed_same_noise_and_fresh_noise_per_call():
    import keras

    mean, log_var = np.zeros((2, 4), "float32"), np.zeros((2, 4), "float32")
    first, second = Sampling(seed=7), Sampling(seed=7)
    a = keras.ops.convert_to_numpy(first([mean, log_var], training=True))
    np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(second([mean, log_var], training=True)))
    assert not np.allclose(a, keras.ops.convert_to_numpy(first([mean, log_var], training=True)))


def test_the_mean_at_inference_unless_always_sample():
    import keras

    mean, log_var = np.full((2, 3), 0.5, "float32"), np.zeros((2, 3), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Sampling(seed=1)([mean, log_var])), mean)
    sampled = keras.ops.convert_to_numpy(Sampling(seed=1, always_sample=True)([mean, log_var]))
    assert not np.allclose(sampled, mean)


def test_rejects_mismatched_inputs_and_bad_seed():
    import keras

    with pytest.raises(ValueError, match="same shape"):
        Sampling()([keras.Input((3,)), keras.Input((4,))])
    with pytest.raises(ValueError, match="seed"):
        Sampling(seed=1.5)
