"""Every command line in README.md and docs/ code blocks runs as written, in a fresh process: run
folders, images and photo folders the docs name are replaced by ones this test makes (training
lines train tiny: one epoch, the spec's `test_overrides`; `build` and `compare` lines build at those
params too), and a line the docs show failing must print that error. The docs speak to users: no
internal issue numbers."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from builder import load_spec

from .conftest import BUILDER, ROOT, SPECS
from .test_user_journeys import digit_images, shape_images

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_PLACEHOLDER = re.compile(r"runs/(\w+)/(\d{8}-\d{6}|<timestamp>)")
# Set-up lines: CI runs them (.ci/run), a test cannot install the package again inside itself.
SET_UP = ("python -m pip install", "python -m pytest")


def code_blocks(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(), re.S | re.M)


def documented_commands() -> list[str]:
    """The `python -m builder` lines of every document's code blocks, in order, each once, with
    continuation lines joined and comments dropped."""
    commands = []
    for path in DOCUMENTS:
        for language, body in code_blocks(path):
            if language not in ("bash", "sh", ""):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if "python -m builder " in line and not line.startswith(SET_UP) and line not in commands:
                    commands.append(line)
    return commands


def documented_files(folder: Path) -> None:
    """The spec files the docs show whole (a YAML block opening with `# PATH.yaml`), written where
    they say."""
    for path in DOCUMENTS:
        for language, body in code_blocks(path):
            first = body.splitlines()[0] if body.strip() else ""
            target = folder / first[2:]
            if language == "yaml" and re.fullmatch(r"# [\w/]+\.yaml", first) and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)  # a sketch of a zoo spec leaves the zoo's
                target.write_text(body)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Workspace:
    """A folder laid out as the docs assume: the zoo under specs/, the docs' own spec files,
    images, a photo folder and a gallery; run folders as the docs' training lines make them."""

    def __init__(self, folder: Path):
        self.folder = folder
        shutil.copytree(SPECS, folder / "specs")
        documented_files(folder)
        (folder / "docs").mkdir()
        digits = digit_images(folder / "digits")
        for name, (label, index) in {"digit.png": (3, 0), "a.png": (1, 0), "b.png": (1, 1),
                                     "query.png": (7, 1)}.items():
            shutil.copy(digits[label][index], folder / name)
        for label in (1, 7):
            (folder / "people" / f"person{label}").mkdir(parents=True)
            shutil.copy(digits[label][0], folder / "people" / f"person{label}")
            (folder / "photos" / f"class{label}").mkdir(parents=True)
            for number in range(6):
                shutil.copy(digits[label][number % len(digits[label])], folder / "photos" / f"class{label}" /
                            f"{number}.png")
        from PIL import Image

        Image.open(shape_images(folder / "shapes")[0]).save(folder / "street.jpg")

    def runs(self, spec: str) -> list[Path]:
        return sorted(path.parent for path in (self.folder / "runs" / spec).glob("*/model.keras"))

    def a_run(self, spec: str) -> Path:
        """The latest run of `spec`, trained now (tiny) if no documented line trained one."""
        if not self.runs(spec):
            result = self.run(self.prepared(f"python -m builder train specs/{spec}.yaml"))
            assert result.returncode == 0, result.stderr[-3000:]
        return self.runs(spec)[-1]

    def prepared(self, line: str) -> str:
        """The line with the docs' placeholders made real."""
        line = line.replace("RUN_DIR", "runs/siamese/*")
        line = RUN_PLACEHOLDER.sub(lambda match: str(self.a_run(match.group(1))), line)
        if re.search(r" train specs/\w+\.yaml", line) and "--resume" not in line:
            line += " --epochs 1 --quiet" + self.test_size(line)
        elif re.search(r" (build|compare) specs/\w+\.yaml", line):  # full size: minutes, shows nothing more
            line += self.test_size(line)
        elif " train studies/" in line:
            line += " --epochs 1 --quiet"
        elif " tune " in line:  # two one-epoch trials of the study
            line = re.sub(r" --trials \d+", "", line) + " --trials 2 --epochs 1" + self.test_size(line)
        return line

    def test_size(self, line: str) -> str:
        """`--set` flags for the `test_overrides` of the spec the line names."""
        spec = re.search(r"specs/(\w+)\.yaml", line).group(1)
        tiny = load_spec(self.folder / "specs" / f"{spec}.yaml").test_overrides or {}
        return "".join(f" --set {key}={value}" for key, value in tiny.items())

    def start(self, line: str) -> subprocess.Popen:
        """The line in a shell, with this interpreter as `python` and a leading KERAS_BACKEND=
        as the backend (else the suite's)."""
        env = {**os.environ, "KERAS_BACKEND": BACKEND}
        if line.startswith("KERAS_BACKEND="):
            assignment, _, line = line.partition(" ")
            env["KERAS_BACKEND"] = assignment.split("=", 1)[1]
        return subprocess.Popen(["bash", "-c", line.replace("python -m builder", shlex.join(BUILDER))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.folder, env=env)

    def run(self, line: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return self.finished(line, self.start(line), timeout)

    @staticmethod
    def finished(line: str, process: subprocess.Popen, timeout: int = 900) -> subprocess.CompletedProcess:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        return subprocess.CompletedProcess(line, process.returncode, stdout, stderr)


def _check(result: subprocess.CompletedProcess, line: str, failures: list, expected_error: str | None = None):
    if expected_error is not None:
        if result.returncode == 0 or expected_error not in result.stderr:
            failures.append(f"{line}\n  expected the error '{expected_error}', got exit {result.returncode}: "
                            f"{result.stderr[-1500:]}")
    elif result.returncode != 0:
        failures.append(f"{line}\n  exit {result.returncode}: {result.stderr[-1500:]}")


def _is_run_command(line: str) -> bool:
    return " train " in f"{line} " or " runs/" in line or "RUN_DIR" in line or " tune " in line


def _run_group(line: str) -> str:
    """Which run a line trains or reads (the spec's name), so that the lines about one run go
    together, trainings first; the several-machines example is a group of its own."""
    if "--coordinator" in line:
        return "several_machines"
    study = re.search(r" --study (\w+)", line) or re.search(r" studies/(\w+)/", line) or (
        " tune " in line and re.search(r"specs/(\w+)\.yaml", line))
    if study:
        return f"study_{study.group(1)}"
    used = RUN_PLACEHOLDER.search(line) or re.search(r" runs/(\w+)/\*", line)
    if used:
        return used.group(1)
    if "RUN_DIR" in line:
        return "siamese"
    return re.search(r"specs/(\w+)\.yaml", line).group(1)


def run_groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for line in documented_commands():
        if _is_run_command(line):
            groups.setdefault(_run_group(line), []).append(line)
    return groups


SPEC_COMMANDS = [line for line in documented_commands() if not _is_run_command(line)]
RUN_GROUPS = run_groups()


def names_its_backends(lines: list[str]) -> bool:
    """Lines that choose their backends themselves (`KERAS_BACKEND=jax ...`, `--backend jax`,
    `--backends tensorflow,jax`) whatever backend the suite runs on, and so run once."""
    return all(line.startswith("KERAS_BACKEND=") or re.search(r" --backends? ", line) for line in lines)


def once_if_it_names_its_backends(value: str, lines: list[str]):
    return pytest.param(value, marks=[pytest.mark.backends_named] if names_its_backends(lines) else [])


@pytest.mark.backend_free
def test_the_docs_show_their_commands_and_no_issue_numbers():
    commands = documented_commands()
    assert len(commands) > 30 and any(line.startswith("python -m builder train") for line in commands)
    for path in DOCUMENTS:
        text = path.read_text()
        numbers = [match.group(0) for match in re.finditer(r"(?<![\w/-])#\d+", text)]
        assert not numbers, f"{path.name} mentions issue numbers {numbers}"


@pytest.mark.parametrize("line", [once_if_it_names_its_backends(line, [line]) for line in SPEC_COMMANDS],
                         ids=lambda line: line.removeprefix("python -m builder ")[:60])
def test_documented_spec_command_runs(line, tmp_path):
    """A line that needs no run folder: validate, summary, build, schema, reference, devices,
    data pack, compare, plot."""
    space, failures = Workspace(tmp_path), []
    result = space.run(space.prepared(line))
    if " plot " in line and shutil.which("dot") is None:
        _check(result, line, failures, "Graphviz")
    else:
        _check(result, line, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.backend_free
def test_every_documented_line_is_run():
    assert sorted(SPEC_COMMANDS + [line for lines in RUN_GROUPS.values() for line in lines]) == sorted(
        documented_commands())
    assert {"lenet5", "siamese", "ssd_shapes", "several_machines", "study_cnn_digits"} <= set(RUN_GROUPS)
    once = [line for line in SPEC_COMMANDS if names_its_backends([line])]
    assert any("--backends tensorflow,jax" in line for line in once) and names_its_backends(
        RUN_GROUPS["several_machines"]) and not names_its_backends(RUN_GROUPS["resnet18"])  # its evaluate doesn't


@pytest.mark.parametrize("run", [once_if_it_names_its_backends(run, lines) for run, lines in RUN_GROUPS.items()])
def test_documented_run_commands_run(run, tmp_path):
    """The lines that train or read one run, training lines first, in the docs' order; the two
    processes of the several-machines example run together on this machine."""
    space, failures = Workspace(tmp_path), []
    lines = RUN_GROUPS[run]
    group = [line for line in lines if "--coordinator" in line]
    trains = [line for line in lines if re.search(r" (train (specs|--devices)|tune )", line) and line not in group]
    for line in trains + [line for line in lines if line not in trains and line not in group]:
        _check(space.run(space.prepared(line)), line, failures)
    if group:
        port = _free_port()
        processes = [space.start(space.prepared(line).replace("10.0.0.1:1234", f"127.0.0.1:{port}"))
                     for line in group]
        for line, process in zip(group, processes):
            _check(space.finished(line, process), line, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.backend_free
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_documented_python_blocks_parse(path):
    for language, body in code_blocks(path):
        if language == "python":
            compile(body, str(path), "exec")
