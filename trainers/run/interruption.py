"""Ctrl-C during a training loop, taken where the loop can stop cleanly.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a garbage
collection callback (JAX registers one, and TensorFlow imports JAX) the exception is printed and
dropped, and training goes on; half way through a backend call, TensorFlow has been seen to die of
a segmentation fault instead of saying what was saved. So while a loop runs, the first Ctrl-C only
asks it to stop, and the loop raises KeyboardInterrupt itself at its next step boundary; a second
Ctrl-C interrupts at once, as Python would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import keras

ANNOUNCEMENT = "\nCtrl-C: stopping at the end of this step (press it again to stop at once)"

_active: StopRequest | None = None  # the loop's, while one runs; a loop inside it shares it


class StopRequest:
    """Whether Ctrl-C has asked the running loop to stop."""

    def __init__(self):
        self.asked = False

    def on_sigint(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        # Straight to the descriptor: the handler may run while the main thread is inside a write
        # to sys.stderr, and Python's buffered streams refuse a reentrant write with an exception.
        os.write(2, (ANNOUNCEMENT + "\n").encode())

    def check(self) -> None:
        """Raise KeyboardInterrupt here if Ctrl-C asked to stop."""
        if self.asked:
            raise KeyboardInterrupt


@contextlib.contextmanager
def stop_at_step_end():
    """While the block runs, Ctrl-C is a `StopRequest` the loop checks at its step boundaries;
    one left unchecked when the block ends is raised there. Where Python's own handler is not the
    one in place (another thread, an embedding program with its own), Ctrl-C is left alone."""
    global _active
    if _active is not None:
        yield _active
        return
    request = StopRequest()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield request
        return
    signal.signal(signal.SIGINT, request.on_sigint)
    _active = request
    try:
        yield request
    finally:
        _active = None
        signal.signal(signal.SIGINT, signal.default_int_handler)
    request.check()


class StopOnRequest(keras.callbacks.Callback):
    """`model.fit`'s step boundaries for a `StopRequest`: after each training batch but an epoch's
    last, and at each epoch's end (this callback placed last, so the epoch's checkpoint is written
    first; validation is not cut short, as the epoch's training is done by then). `save_position`
    (called with the batch index), where the stream can resume inside an epoch, keeps the place
    first."""

    def __init__(self, request: StopRequest, save_position=None):
        super().__init__()
        self.request, self.save_position = request, save_position

    def on_train_batch_end(self, batch, logs=None):
        if not self.request.asked or batch + 1 == self.params.get("steps"):
            return
        if self.save_position is not None:
            self.save_position(batch)
        self.request.check()

    def on_epoch_end(self, epoch, logs=None):
        self.request.check()
