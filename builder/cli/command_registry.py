"""The CLI's command registry and what every command shares: common options, `--set` parsing
and the usage error. `builder` registers the spec commands; `trainers` (a plugin) registers
train, evaluate and predict; any plugin may add more."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import BlueprintError
from ..registry import Registry

BACKENDS = ("tensorflow", "jax", "torch")


class UsageError(BlueprintError):
    """A command-line mistake: reported with exit status 2."""


@dataclass(frozen=True)
class Command:
    """One `python -m builder NAME` command: `arguments(parser)` adds its options, `run(args)`
    returns the exit status. `order` sorts the command list in `--help`. `runs_of` names the
    trainers whose run folders the command takes (`ANY_RUN`: every trainer's); the command refuses
    other runs, and the user-journey tests run it on a run of each."""

    name: str
    help: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    order: int = 100
    aliases: tuple = field(default=())
    runs_of: tuple = ()


ANY_RUN = ("*",)


def takes_runs_of(command: Command, trainer: str) -> bool:
    """Whether `command` takes a run folder that the `trainer` trainer wrote."""
    return command.runs_of == ANY_RUN or trainer in command.runs_of


COMMANDS: Registry[Command] = Registry("command")


def register_command(command: Command, replace: bool = False) -> Command:
    return COMMANDS.register(command.name, command, replace=replace)


def common_options(parser: argparse.ArgumentParser, overrides: bool = True) -> None:
    """--backend, --set (when the command reads a spec) and --debug."""
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    if overrides:
        parser.add_argument("--set", dest="overrides", action="append", metavar="NAME=VALUE",
                            help="override a spec param (repeatable), e.g. --set classes=10")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")


def no_expect_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-expect", action="store_true",
                        help="build even when the parameter counts differ from the spec's expect: figures")


def parse_overrides(pairs: list[str] | None, flag: str = "--set") -> dict:
    """`["classes=10", "width=32"]` -> `{"classes": 10, "width": 32}`; values are YAML scalars."""
    import yaml

    from ..language.yaml_loader import load_scalar

    overrides = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} takes name=value; got '{pair}'")
        try:
            overrides[key.strip()] = load_scalar(text) if text.strip() else ""
        except yaml.YAMLError:
            raise UsageError(f"{flag} {pair}: the value is not a valid YAML scalar") from None
    return overrides
