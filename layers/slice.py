import keras


@keras.saving.register_keras_serializable(package="blueprint")
class Slice(keras.layers.Layer):
    """Positions `start` up to (not including) `stop` along one axis, as `x[:, start:stop]` in
    NumPy; or, with `index`, the one position `index` with that axis dropped, as `x[:, index]` (the
    Vision Transformer's readout of its class token: `(batch, tokens, channels)` to `(batch,
    channels)`). Negative positions count from the end.

    Args:
        axis: the axis to slice; not the batch axis.
        start: first position kept.
        stop: position after the last one kept; None for the end.
        index: one position to take, dropping the axis; excludes `start` and `stop`.
    """

    def __init__(self, axis=1, start=0, stop=None, index=None, **kwargs):
        super().__init__(**kwargs)
        if axis == 0:
            raise ValueError("Invalid value received for argument `axis`. Expected an axis other than the batch "
                             "axis 0. Received: axis=0")
        if index is not None and (start != 0 or stop is not None):
            raise ValueError("Slice takes either `index` or `start`/`stop`. Received: "
                             f"index={index}, start={start}, stop={stop}")
        self.axis, self.start, self.stop, self.index = int(axis), int(start), stop, index

    def _bounds(self, length):
        if self.index is not None:
            index = self.index + length if self.index < 0 else self.index
            if not 0 <= index < length:
                raise ValueError(f"Slice index {self.index} is out of range for an axis of size {length}")
            return index, index + 1
        start, stop, _ = slice(self.start, self.stop).indices(length)
        if stop <= start:
            raise ValueError(f"Slice [{self.start}:{self.stop}] of an axis of size {length} is empty")
        return start, stop

    def build(self, input_shape):
        axis = self.axis % len(input_shape)
        if axis == 0 or input_shape[axis] is None:
            raise ValueError(f"Slice needs a known, non-batch axis {self.axis}. Received: input_shape={input_shape}")
        self._bounds(input_shape[axis])  # refuses an empty or out-of-range slice when the model is built

    def call(self, inputs):
        axis = self.axis % len(inputs.shape)
        start, stop = self._bounds(inputs.shape[axis])
        taken = keras.ops.take(inputs, keras.ops.arange(start, stop), axis=axis)
        return keras.ops.squeeze(taken, axis=axis) if self.index is not None else taken

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape)
        start, stop = self._bounds(input_shape[axis])
        if self.index is not None:
            return tuple(size for k, size in enumerate(input_shape) if k != axis)
        return tuple(stop - start if k == axis else size for k, size in enumerate(input_shape))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "start": self.start, "stop": self.stop,
                "index": self.index}
