"""TensorFlow's, XLA's and LiteRT's C++ log lines, kept off the console.

The backends write them straight to file descriptor 2, below Python, and not all of them obey
TF_CPP_MIN_LOG_LEVEL (absl's notice before its own initialisation, start-up notices,
a tf.data "NodeDef mentions attribute" error every epoch on some builds). So the command line
points descriptor 2 at a pipe whose reader passes every other line on to the real standard error
and keeps the native ones: in memory until a run folder is named (`route_native_logs`), then in
its `native.log`. `--debug` leaves descriptor 2 alone and shows everything.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import threading

# absl's prefix (severity, date, time, thread, file:line), the two notices without one,
# LiteRT's runtime notices ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") and Gloo's,
# as processes of a group connect ("[Gloo] Rank 0 is connected to 1 peer ranks. ...").
NATIVE_LINE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] "
                         rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                         rb"|To enable the following instructions: "
                         rb"|INFO: "
                         rb"|\[Gloo\] )")
HELD_LINES = 1000  # kept until a run folder is named; older ones are dropped

_active: NativeLogFilter | None = None


class NativeLogFilter:
    """Descriptor 2 through a pipe; `close` puts the console back once every line is through."""

    def __init__(self):
        sys.stderr.flush()
        self._console = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._lock = threading.Lock()
        self._held: collections.deque = collections.deque(maxlen=HELD_LINES)
        self._log = None
        self._thread = threading.Thread(target=self._pump, args=(read,), name="native-log-filter", daemon=True)
        self._thread.start()

    def _pump(self, read: int) -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if NATIVE_LINE.match(line):
                    self._keep(line)
                else:
                    os.write(self._console, line)

    def _keep(self, line: bytes) -> None:
        with self._lock:
            if self._log is not None:
                self._log.write(line)
                self._log.flush()
            else:
                self._held.append(line)

    def route_to(self, path) -> None:
        with self._lock:
            log = open(path, "ab")  # noqa: SIM115  (kept open until close)
            log.writelines(self._held)
            log.flush()
            self._held.clear()
            if self._log is not None:
                self._log.close()
            self._log = log

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self._console, 2)  # drops the pipe's write end: the reader sees the end
        # A child process that outlives us may still hold the pipe open: do not wait for it.
        self._thread.join(timeout=5)
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
        if not self._thread.is_alive():
            os.close(self._console)


@contextlib.contextmanager
def native_logs_filtered():
    """Keep the backends' C++ log lines off the console while the block runs."""
    global _active
    _active = NativeLogFilter()
    try:
        yield _active
    finally:
        _active.close()
        _active = None


def route_native_logs(path) -> None:
    """Write the native log lines held so far, and those to come, to `path` (a run folder's
    native.log). Does nothing outside the command line (the Python API leaves stderr alone)."""
    if _active is not None:
        _active.route_to(path)
