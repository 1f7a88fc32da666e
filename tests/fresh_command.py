"""`python tests/fresh_command.py -m MODULE ARGS...` or `... -c CODE ARGS...`: the command in a new
process, as `python -m MODULE ARGS...` or `python -c CODE ARGS...` would run it, forked by the test
session's command servers (`tests/command_server.py`) so that it skips importing TensorFlow and
Keras. BLUEPRINT_TEST_COMMAND_SERVER names their sockets (one server per backend, separated by
os.pathsep); the first that takes the command forks it. This process stands in for the command: it
passes on its standard streams, working directory and environment, forwards SIGINT, SIGTERM and
SIGHUP, and exits as the command exits (or is killed by the same signal). Killing it kills the
command.

Without a server (BLUEPRINT_TEST_COMMAND_SERVER unset, or BLUEPRINT_TEST_PLAIN_INTERPRETERS set),
or when every server refuses the command, it becomes a plain interpreter with the same arguments.
Imports nothing but the standard library, so it starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time

SERVER = "BLUEPRINT_TEST_COMMAND_SERVER"
PLAIN = "BLUEPRINT_TEST_PLAIN_INTERPRETERS"
SERVER_START_SECONDS = 300  # the server imports TensorFlow and Keras while the first tests run


def plain_interpreter():
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])


def _connected(address: str) -> socket.socket | None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not os.path.exists(address) and os.path.exists(address + ".starting") and time.monotonic() < deadline:
        time.sleep(0.05)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
    except OSError:
        connection.close()
        return None
    return connection


def _standard_streams() -> list[int]:
    streams = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            streams.append(fd)
        except OSError:  # started with that stream closed: the command gets /dev/null, as Python does
            streams.append(os.open(os.devnull, os.O_RDWR))
    return streams


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Forwarder:
    """Signals for the command: held from before the request is sent until the command's pid is
    known (a caller may signal as soon as the command has started), then passed on."""

    def __init__(self):
        self.pending: list[int] = []
        self.child: int | None = None

    def __call__(self, number, frame) -> None:
        if self.child is None:
            self.pending.append(number)
        else:
            os.kill(self.child, number)

    def to(self, child: int) -> None:
        self.child = child
        for number in self.pending:
            os.kill(child, number)


def _forward_signals() -> _Forwarder:
    forwarder = _Forwarder()
    for number in FORWARDED:
        signal.signal(number, forwarder)
    return forwarder


def _forked_by(address: str, request: dict, forwarded: _Forwarder):
    """The command forked by the server at `address`: its exit code, or None if refused."""
    connection = _connected(address)
    if connection is None:
        return None
    body = json.dumps(request).encode()
    socket.send_fds(connection, [struct.pack("!I", len(body))], _standard_streams())
    connection.sendall(body)
    replies = connection.makefile("r")
    answer = replies.readline().split(maxsplit=1)
    if not answer or answer[0] != "pid":  # refused: its environment or backend is not this server's
        return None
    child = int(answer[1])
    forwarded.to(child)
    answer = replies.readline().split()
    if not answer:
        raise SystemExit(f"fresh_command: the command server lost process {child}")
    return os.waitstatus_to_exitcode(int(answer[1]))


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("-m", "-c"):
        raise SystemExit("usage: fresh_command.py (-m MODULE | -c CODE) [ARGS...]")
    mode, target, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    addresses = os.environ.get(SERVER)
    if not addresses or os.environ.get(PLAIN):
        plain_interpreter()
    forwarded = _forward_signals()
    request = {"mode": mode, "module" if mode == "-m" else "code": target, "arguments": arguments,
               "cwd": os.getcwd(), "env": dict(os.environ)}
    for address in addresses.split(os.pathsep):  # one server per backend: the first that runs it
        code = _forked_by(address, request, forwarded)
        if code is not None:
            break
    else:
        for number in FORWARDED:
            signal.signal(number, signal.SIG_DFL)
        for number in forwarded.pending:  # the caller stopped it already
            os.kill(os.getpid(), number)
        plain_interpreter()
    if code < 0:  # killed by a signal: end the same way, so the caller sees the same return code
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
