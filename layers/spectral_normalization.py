import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class SpectralNormalization(keras.layers.SpectralNormalization):
    """keras.layers.SpectralNormalization that computes with W / sigma(W) as a function of W, on
    every backend, in training and in inference (Miyato et al. 2018, "Spectral Normalization for
    Generative Adversarial Networks"; PyTorch's `spectral_norm` does the same).

    Keras's layer assigns the normalized kernel to the kernel variable in each training call and
    leaves inference to the kernel as it is. TensorFlow keeps the assignment, which stops the
    gradient at the normalization; JAX's stateless steps drop it, so the kernel stays
    unnormalized and inference computes with it. Here the kernel variable always holds W, a
    training call updates the power-iteration vector u, and every call runs the wrapped layer
    on W / sigma(W) (u held fixed in the gradient, as in the paper).

    Args:
        layer: a layer with a `kernel` (or `embeddings`).
        power_iterations: power iterations per training call.
    """

    def call(self, inputs, training=False):
        vector_u, kernel = ops.cond(ops.all(ops.equal(self.kernel.value, 0)),
                                    lambda: (self.vector_u.value, self.kernel.value),  # nothing to divide
                                    self.normalized_weights)
        if training:
            self.vector_u.assign(vector_u)
        # The wrapped layer reads its kernel through the scope: W / sigma(W), a value computed
        # from W, so the gradient reaches W through sigma; its other weights read as they are.
        mapping = [(variable, kernel if variable is self.kernel else variable.value)
                   for variable in self.layer.variables]
        with keras.StatelessScope(state_mapping=mapping):
            output = self.layer(inputs)
        return ops.cast(output, inputs.dtype)
