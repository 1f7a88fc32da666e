"""A clean console: the backends' C++ log lines stay off standard error (a run folder keeps them
in native.log); --debug shows everything."""

import os
import subprocess
import sys

from builder.cli.native_logs import NATIVE_LINE

from .conftest import ROOT


def _cli(*arguments, level="0"):
    """The CLI as a user runs it, with TensorFlow asked for every C++ log line it has."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": level}
    return subprocess.run([sys.executable, "-m", "builder", *map(str, arguments)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def _native(text: str) -> list:
    return [line for line in text.splitlines() if NATIVE_LINE.match(line.encode())]


def test_native_lines_are_held_back_and_python_lines_pass(tmp_path):
    code = ("import os, sys\n"
            "from builder.cli.native_logs import native_logs_filtered, route_native_logs\n"
            "with native_logs_filtered():\n"
            "    os.write(2, b'I0000 00:00:1795668720.815764     618 cpu_feature_guard.cc:227] held\\n')\n"
            "    print('a python warning', file=sys.stderr)\n"
            f"    route_native_logs({str(tmp_path / 'native.log')!r})\n"
            "    os.write(2, b'E0000 00:00:1795668773.678331     742 node_def_util.cc:682] routed\\n')\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written\\n')\n"
            "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
            "print('after', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stderr == "a python warning\nafter\n"
    log = (tmp_path / "native.log").read_text().splitlines()
    assert [line.split("] ")[-1] for line in log[:2]] == ["held", "routed"] and log[2].startswith("WARNING: All")
    assert log[3] == "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def test_summary_shows_no_native_lines_unless_debugging():
    quiet = _cli("summary", "lenet5")
    assert quiet.returncode == 0 and "Total params: 61,706" in quiet.stdout
    assert quiet.stderr == ""
    loud = _cli("summary", "lenet5", "--debug")
    assert loud.returncode == 0 and _native(loud.stderr)  # TensorFlow does write them: the test can fail


def test_train_keeps_native_lines_in_the_run_folder(tmp_path):
    result = _cli("train", "lenet5", "--epochs", "1", "--quiet", "--out", tmp_path, level="2")
    assert result.returncode == 0, result.stderr
    assert not _native(result.stderr) and not _native(result.stdout)
    log = next(tmp_path.glob("lenet5/*/native.log")).read_text().splitlines()
    assert all(NATIVE_LINE.match(line.encode()) or not line.strip() or line.startswith(" ") for line in log)
