"""The command server that forks the suite's `python -m builder` and `python -c` processes: a command
starts as a fresh interpreter would, except that TensorFlow and Keras are already imported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from .command_server import PROJECT_PACKAGES
from .conftest import BUILDER, PYTHON


@pytest.fixture(autouse=True)
def _served(command_server):
    if os.environ.get("BLUEPRINT_TEST_PLAIN_INTERPRETERS"):
        pytest.skip("BLUEPRINT_TEST_PLAIN_INTERPRETERS: every command runs in a plain interpreter")


REPORT = f"PROJECT_PACKAGES = {PROJECT_PACKAGES!r}\n" + """
import json, os, sys
print(json.dumps({
    "project": sorted(m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES),
    "preloaded": sorted(m for m in ("keras", "tensorflow") if m in sys.modules),
    "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(), "marker": os.environ.get("MARKER"),
    "main": __name__, "stdin": sys.stdin.read(), "parent_pid": os.getppid(),
}))
"""


def _report(tmp_path, *arguments, env=None, stdin="") -> dict:
    result = subprocess.run([*PYTHON, "-c", REPORT, *arguments], input=stdin, capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "MARKER": "m", **(env or {})}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_a_forked_command_has_the_callers_arguments_streams_folder_and_environment_and_nothing_of_ours(tmp_path):
    report = _report(tmp_path, "a", "b c", stdin="typed\n")
    assert report["project"] == []  # every module of this project is the command's own import
    assert report["preloaded"] == ["keras", "tensorflow"]  # what it skipped: it came from the server
    assert report["argv"] == ["-c", "a", "b c"] and report["path0"] == "" and report["main"] == "__main__"
    assert report["cwd"] == str(tmp_path) and report["marker"] == "m" and report["stdin"] == "typed\n"
    assert report["parent_pid"] != os.getpid()  # forked by the server, not started by this process


def test_a_command_whose_start_up_environment_differs_runs_in_a_plain_interpreter(tmp_path):
    threads = int(os.environ.get("TF_NUM_INTEROP_THREADS", "0")) + 3  # not the server's (the suite may set it)
    report = _report(tmp_path, env={"TF_NUM_INTEROP_THREADS": str(threads)})
    assert report["preloaded"] == [] and report["parent_pid"] == os.getpid()


def test_the_exit_status_output_and_error_stream_come_back(tmp_path):
    result = subprocess.run([*PYTHON, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    crashed = subprocess.run([*PYTHON, "-c", "raise ValueError('boom')"], capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 1 and "Traceback" in crashed.stderr and "ValueError: boom" in crashed.stderr
    usage = subprocess.run([*BUILDER, "no-such-command"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "invalid choice: 'no-such-command'" in usage.stderr


def test_ctrl_c_reaches_the_command_and_killing_the_caller_kills_the_command(tmp_path):
    waiting = ("import os, sys, time\ntry:\n    print(os.getpid(), flush=True)\n    time.sleep(60)\n"
               "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    sys.exit(130)\n")
    with subprocess.Popen([*PYTHON, "-c", waiting], stdout=subprocess.PIPE, text=True) as process:
        process.stdout.readline()  # the command is running
        process.send_signal(signal.SIGINT)
        assert process.stdout.read() == "interrupted\n" and process.wait(timeout=60) == 130

    with subprocess.Popen([*PYTHON, "-c", waiting], stdout=subprocess.PIPE, text=True) as process:
        command_pid = int(process.stdout.readline())
        process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _alive(command_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(command_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_commands_draw_different_random_numbers():
    code = "import numpy as np; print(np.random.random())"
    drawn = {subprocess.run([*PYTHON, "-c", code], capture_output=True, text=True, timeout=120).stdout
             for _ in range(2)}
    assert len(drawn) == 2


def test_an_unregistered_class_still_fails_to_load_in_a_forked_command(tmp_path):
    """The failure the fresh processes are there to catch: a file naming a class that only some
    earlier import registers. This test process has imported it; a forked command has not."""
    import keras

    from trainers.run.optimization import Constant, WarmUp

    saved = keras.saving.serialize_keras_object(WarmUp(Constant(0.01), 2))
    assert isinstance(keras.saving.deserialize_keras_object(saved), WarmUp)  # registered here
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(saved))
    code = "import json, sys, keras\nkeras.saving.deserialize_keras_object(json.load(open(sys.argv[1])))"
    result = subprocess.run([*PYTHON, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Could not locate class 'WarmUp'" in result.stderr, result.stderr[-2000:]


def test_a_command_on_the_other_backend_is_forked_by_that_backends_server(tmp_path):
    import keras

    other = {"tensorflow": "jax", "jax": "tensorflow"}[keras.backend.backend()]
    code = "import os, keras; print(keras.backend.backend(), os.getppid())"
    result = subprocess.run([*PYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "KERAS_BACKEND": other})
    assert result.returncode == 0, result.stderr[-2000:]
    backend, parent = result.stdout.split()
    assert backend == other and int(parent) != os.getpid()
