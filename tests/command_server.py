"""A process that has imported TensorFlow and Keras, and nothing of this project, and forks one new
process per command the tests run (`python -m builder ...`, `python -c ...`).

Why: the suite starts several hundred commands, and a fresh interpreter spends 5-9 seconds of CPU
importing TensorFlow and Keras before the command's first line. A child forked from this server
starts with those two (and what they import) already loaded, and with nothing else: every module of
this project is imported by the command itself, so a class that only some earlier code registered
still fails to load, as it would from a fresh shell. The child gets the client's standard streams,
working directory, environment and arguments, a fresh `__main__`, fresh random seeds and Python's
default signal handlers; it exits through the interpreter's own shutdown, as `python -m` does.

A command is refused (and the client starts a plain interpreter instead) when an environment
variable read while TensorFlow, Keras or JAX import differs from the server's, or when it runs on
a backend other than the server's (its KERAS_BACKEND, `--backend`, or a command with a backend of
its own). `tests/fresh_command.py` is the client.

Run as a script by the test session: `python tests/command_server.py SOCKET_PATH`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys

PROJECT_PACKAGES = ("builder", "layers", "trainers", "tests")
# Variables read at interpreter start or while TensorFlow, Keras and JAX import; a forked command
# honours PYTHONUNBUFFERED itself (its standard streams are made anew).
STARTUP_PREFIXES = ("PYTHON", "KERAS_", "TF_", "JAX_", "XLA_", "CUDA_", "TPU_", "LD_")
HONOURED = ("PYTHONUNBUFFERED",)


def startup_environment(env: dict) -> dict:
    """Those variables, less KERAS_BACKEND: the backend is compared as the one a command ends up on."""
    return {name: value for name, value in env.items()
            if name.startswith(STARTUP_PREFIXES) and name not in HONOURED and name != "KERAS_BACKEND"}


def _project_modules() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in PROJECT_PACKAGES)


# `python -m builder` commands that load Keras on a backend of their own, whatever KERAS_BACKEND says.
OWN_BACKEND = {"export": "tensorflow"}  # every export format converts from a TensorFlow graph


def _asked_backend(arguments: list[str]) -> str | None:
    if arguments and arguments[0] in OWN_BACKEND:
        return OWN_BACKEND[arguments[0]]
    for index, argument in enumerate(arguments):
        if argument == "--backend" and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--backend="):
            return argument.split("=", 1)[1]
    return None


# The environment this server started with, and what importing TensorFlow and Keras added to it
# (TF2_BEHAVIOR, TPU_ML_PLATFORM and others): a fresh process gets those from its own imports, and
# a client that imported them too passes them on.
_STARTED_WITH = dict(os.environ)
_IMPORTS_ADDED: dict = {}
_BACKEND = ""  # the one Keras imported here


def _command_backend(request: dict) -> str | None:
    """The backend the command will run on, or None where that depends on what this server cannot
    see (no KERAS_BACKEND where the server had one: Keras's own configuration file decides)."""
    asked = _asked_backend(request["arguments"]) if request.get("module") == "builder" else None
    if asked or "KERAS_BACKEND" in request["env"]:
        return asked or request["env"]["KERAS_BACKEND"]
    return None if "KERAS_BACKEND" in _STARTED_WITH else _BACKEND


def _refusal(request: dict) -> str | None:
    asked = {name: value for name, value in request["env"].items() if _IMPORTS_ADDED.get(name) != value}
    if startup_environment(asked) != startup_environment(_STARTED_WITH):
        return "its start-up environment differs from the server's"
    backend = _command_backend(request)
    if backend != _BACKEND:
        return f"it runs on the {backend or 'configured'} backend, not this server's {_BACKEND}"
    return None


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(connection, 4, 3)
    (size,) = struct.unpack("!I", header)
    body = b""
    while len(body) < size:
        chunk = connection.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the client went away")
        body += chunk
    return json.loads(body), fds


def _supervise(connection: socket.socket, child: int) -> None:
    """In the intermediate process: tell the client the command's pid and, when it ends, its wait
    status; kill the command if the client goes away (a test's timeout, a killed client), even
    before it has heard the pid."""
    try:
        connection.sendall(f"pid {child}\n".encode())
        while True:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                break
            readable, _, _ = select.select([connection], [], [], 0.05)
            if readable and not connection.recv(1):
                raise ConnectionResetError("the client went away")
    except OSError:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        return
    try:
        connection.sendall(f"status {status}\n".encode())
    except OSError:
        pass  # the command has ended; nobody is left to tell


def serve(address: str) -> dict | None:
    """Accept commands until the test session ends. Returns only in a forked command process,
    with its request; the server itself never returns."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".partial")
    listener.listen(64)
    os.rename(address + ".partial", address)  # clients never see a socket that does not listen yet
    _started(address)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the intermediate processes reap themselves
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C in the test session is the session's
    while True:
        readable, _, _ = select.select([listener], [], [], 1.0)
        if os.getppid() != parent:
            return None  # the test session is gone
        if not readable:
            continue
        try:
            connection, _ = listener.accept()
        except OSError:
            continue
        try:
            request, fds = _receive(connection)
        except (OSError, ValueError):  # a client gone, or one that sent nonsense: the next one
            connection.close()
            continue
        refusal = _refusal(request)
        if refusal or len(fds) != 3:
            try:
                connection.sendall(f"refused {refusal or 'no standard streams came'}\n".encode())
            except OSError:
                pass
            connection.close()
            for fd in fds:
                os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:  # the intermediate process
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGINT, signal.default_int_handler)  # first: Ctrl-C may come at once
                connection.close()
                _become_command(request, fds)
                return request
            for fd in fds:
                os.close(fd)
            try:
                _supervise(connection, child)
            finally:
                os._exit(0)
        connection.close()
        for fd in fds:
            os.close(fd)


def _become_command(request: dict, fds: list[int]) -> None:
    """The process state a fresh `python -m ...` or `python -c ...` would have."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for name, value in _IMPORTS_ADDED.items():
        os.environ.setdefault(name, value)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)  # its own process group, like a command a shell starts
    _fresh_standard_streams()
    _fresh_random_state()
    sys.path.insert(0, os.getcwd() if request["mode"] == "-m" else "")  # as `python -m` and `-c` do


def _fresh_standard_streams() -> None:
    import io

    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = os.environ.get("PYTHONIOENCODING", "").split(":")[0] or sys.stdout.encoding

    def stream(fd: int, mode: str, errors: str, line_buffering: bool):
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=line_buffering,
                                write_through=unbuffered and mode == "w")

    sys.stdin = sys.__stdin__ = stream(0, "r", "strict", False)
    sys.stdout = sys.__stdout__ = stream(1, "w", "strict", os.isatty(1) or unbuffered)
    sys.stderr = sys.__stderr__ = stream(2, "w", "backslashreplace", True)


def _fresh_random_state() -> None:
    """Python's `random` reseeds itself after a fork; NumPy's global generator does not, and every
    child would draw the same numbers."""
    import numpy as np

    np.random.seed()


def run_command(request: dict) -> None:
    import runpy
    import types

    if request["mode"] == "-m":
        sys.argv = ["-m", *request["arguments"]]
        sys.orig_argv = [sys.executable, "-m", request["module"], *request["arguments"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *request["arguments"]]
        sys.orig_argv = [sys.executable, "-c", request["code"], *request["arguments"]]
        main = types.ModuleType("__main__")
        main.__builtins__ = __builtins__
        sys.modules["__main__"] = main
        exec(compile(request["code"], "<string>", "exec"), main.__dict__)


def _started(address: str) -> None:
    """Clients wait for the socket while this marker exists (see tests/fresh_command.py)."""
    try:
        os.remove(address + ".starting")
    except FileNotFoundError:
        pass


def main(address: str) -> dict | None:
    """Import, check that nothing of ours came with the imports, serve."""
    global _BACKEND
    try:
        import keras  # the backend named by KERAS_BACKEND, else Keras's configured one
        import tensorflow  # noqa: F401  (tf.data: the data pipelines on every backend)

        _BACKEND = keras.backend.backend()

        _IMPORTS_ADDED.update((name, value) for name, value in os.environ.items() if _STARTED_WITH.get(name) != value)

        if _project_modules():
            raise SystemExit(f"command server: project modules imported before any command: {_project_modules()}")
        return serve(address)
    finally:
        _started(address)  # on a failed start too: clients then start plain interpreters


if __name__ == "__main__":
    sys.path.pop(0)  # this file's folder: the tests must not be importable from a command
    served = main(sys.argv[1])
    if served is not None:
        run_command(served)
