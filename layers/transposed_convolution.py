import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose computed as one stride-1 convolution and a pixel shuffle:
    the same weights, the same outputs (to float rounding), and a backward pass of ordinary
    convolutions only.

    A transposed convolution with stride s is s x s interleaved stride-1 convolutions, one per
    output phase, each with the kernel taps of that phase (Shi et al. 2016, "Is the
    deconvolution layer the same as a convolutional layer?"). XLA on CPU computes the
    transposed form (an input-dilated convolution) and its gradients 6 to 11 times slower than
    this form (DCGAN's generator layers, batch 32), which made JAX training of the zoo's
    generators several times slower than TensorFlow's.

    TensorFlow's own transposed convolution is about twice as fast as this form on CPU, so the
    form is used on the backends in `phased_backends` only. Layers with dilation, output_padding
    or channels_first, or without a known height and width, compute as Keras's layer does.
    """

    phased_backends = ("jax",)

    def _by_phases(self, inputs) -> bool:
        return (keras.backend.backend() in self.phased_backends and self.data_format == "channels_last"
                and self.output_padding is None and tuple(self.dilation_rate) == (1, 1)
                and None not in tuple(inputs.shape[1:3]))

    def call(self, inputs):
        if not self._by_phases(inputs):
            return super().call(inputs)
        (stride_h, stride_w), (size_h, size_w) = self.strides, self.kernel_size
        taps_h, taps_w = -(-size_h // stride_h), -(-size_w // stride_w)
        channels_in, filters = inputs.shape[-1], self.filters
        # Kernel tap t = b * s + r feeds output phase r through tap b (zero taps pad t to B * s);
        # a convolution reads its taps reversed, and each phase's filters go side by side.
        kernel = ops.pad(self.kernel,
                         [[0, taps_h * stride_h - size_h], [0, taps_w * stride_w - size_w], [0, 0], [0, 0]])
        kernel = ops.reshape(kernel, (taps_h, stride_h, taps_w, stride_w, filters, channels_in))
        kernel = ops.flip(ops.flip(kernel, axis=0), axis=2)
        kernel = ops.reshape(ops.transpose(kernel, (0, 2, 5, 1, 3, 4)),
                             (taps_h, taps_w, channels_in, stride_h * stride_w * filters))
        padded = ops.pad(inputs, [[0, 0], [taps_h - 1, taps_h - 1], [taps_w - 1, taps_w - 1], [0, 0]])
        phases = ops.conv(padded, ops.cast(kernel, inputs.dtype), strides=1, padding="valid")
        # Interleave the phases: full[a * s + r] = phase r at a.
        rows, cols = phases.shape[1], phases.shape[2]
        full = ops.reshape(phases, (-1, rows, cols, stride_h, stride_w, filters))
        full = ops.reshape(ops.transpose(full, (0, 1, 3, 2, 4, 5)), (-1, rows * stride_h, cols * stride_w, filters))
        (top, height), (left, width) = (self._window(inputs.shape[1], size_h, stride_h),
                                        self._window(inputs.shape[2], size_w, stride_w))
        outputs = full[:, top:top + height, left:left + width, :]
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(ops.cast(self.bias, outputs.dtype), (1, 1, 1, filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def _window(self, length: int, size: int, stride: int) -> tuple:
        """(first row, rows) of the full transposed convolution that Keras's padding keeps: 'same'
        is the gradient of a 'same' convolution, whose padding puts the smaller half first."""
        if self.padding == "same":
            return max(size - stride, 0) // 2, length * stride
        return 0, length * stride + max(size - stride, 0)
