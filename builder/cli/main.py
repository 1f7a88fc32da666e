"""`python -m builder COMMAND ...`: the top floor. Commands come from the command registry:
the spec commands from `builder.cli.spec_commands`, the rest from plugins (`trainers` adds train,
evaluate and predict).

The backend is chosen from `--backend` before any plugin is loaded, so nothing can import Keras
with the wrong one.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import BlueprintError
from ..plugins import load_plugins
from . import spec_commands  # noqa: F401  (registers the spec commands)
from .command_registry import BACKENDS, COMMANDS, UsageError
from .native_logs import native_logs_filtered


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m builder",
        description="Keras Blueprint: compile YAML architecture specs into Keras 3 models, and train them.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in sorted(COMMANDS, key=lambda n: (COMMANDS[n].order, n)):
        command = COMMANDS[name]
        sub = commands.add_parser(name, help=command.help, description=command.description)
        command.arguments(sub)
    return parser


def set_backend(name: str | None) -> None:
    """Choose the Keras backend; must run before Keras is imported."""
    if name:
        if "keras" in sys.modules:  # a process that imported Keras already runs on its backend
            import keras

            if keras.backend.backend() != name:
                raise UsageError(f"Keras is already imported on {keras.backend.backend()}: the backend must be "
                                 "chosen before Keras is imported")
        os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter


def _early_backend(argv: list[str]) -> str | None:
    """`--backend NAME` read before the full parser exists (plugins add commands to it)."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--backend", choices=BACKENDS)
    try:
        known, _ = early.parse_known_args(argv)
    except SystemExit:  # a bad --backend value: the full parser reports it
        return None
    return known.backend


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        set_backend(_early_backend(argv))
        load_plugins()
    except BlueprintError as exc:
        if debug:
            raise
        print(exc.cli_message(), file=sys.stderr)
        return 1
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except BlueprintError as exc:
        if debug:
            raise
        print(exc.cli_message(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI never shows a raw traceback unless asked to
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


def run() -> int:
    """The command line as a program (`python -m builder`, `blueprint`): `main` with the
    backends' C++ log lines kept off the console, unless `--debug` asks to see everything."""
    if "--debug" in sys.argv[1:]:
        return main()
    with native_logs_filtered():
        return main()
