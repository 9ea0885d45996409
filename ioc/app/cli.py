"""Entry point of every step: the `ioc` command, which builds Settings once and dispatches."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from ioc.app.settings import Settings
from ioc.core.errors import IocError

# Each module registers one sub-command; imported lazily so `ioc --help` stays fast and a
# module whose optional dependency is missing breaks only its own command.
COMMAND_MODULES: tuple[str, ...] = (
    "ioc.app.commands.services",
    "ioc.app.commands.db",
    "ioc.app.commands.citypack",
    "ioc.app.commands.simulate",
    "ioc.app.commands.ingest",
    "ioc.app.commands.demo",
    "ioc.app.commands.dashboard",
    "ioc.app.commands.record",
    "ioc.app.commands.replay",
    "ioc.app.commands.rebuild",
    "ioc.app.commands.auth",
)


class CommandError(IocError):
    """An expected failure of a command's own (bad arguments, nothing to do); one line."""


Handler = Callable[[argparse.Namespace, Settings], int]


class _Registers(Protocol):
    def __call__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line instead of argparse's usage block followed by the error.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered sub-command."""
    parser = _Parser(prog="ioc", description="Smart-city IOC dashboard: services, data, feeds.")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that command is not built yet
            raise
        register: _Registers = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build settings from the environment, run the command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handler: Handler = args.func
        return handler(args, settings)
    except IocError as exc:
        print(f"ioc: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # `python -m ioc.app.cli` runs this file as __main__, a second copy of the module: commands
    # raise the imported module's errors, which only the imported main() catches as one line.
    from ioc.app.cli import main as imported_main

    sys.exit(imported_main())
