"""The command line, `python -m builder ...`, and the registry plugins add commands to."""

from .command_registry import (
    ANY_RUN,
    COMMANDS,
    Command,
    UsageError,
    common_options,
    no_expect_option,
    parse_overrides,
    register_command,
    takes_runs_of,
)
from .main import main, make_parser, set_backend

__all__ = ["ANY_RUN", "COMMANDS", "Command", "UsageError", "common_options", "main", "make_parser", "no_expect_option",
           "parse_overrides", "register_command", "set_backend", "takes_runs_of"]
