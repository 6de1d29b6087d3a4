"""The `viewfinder` command table and running a command line in this process.

The table maps each subcommand to the module holding its add_parser(sub) and run(args). engine.cli adds
`serve` (engine.server.command) to it; the warm server runs its clients' command lines with run_here.
Only argparse and the command modules' light top-level imports happen here: the --warm client parses with it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

from engine.commands.common import EXIT_USAGE, OneLineParser
from engine.errors import ViewfinderError
from engine.progress import Cancelled

#: Subcommands in help order -> the module that implements it.
COMMANDS: dict[str, str] = {name: f"engine.commands.{name}"
                            for name in ("synth", "regions", "index", "localize", "train", "eval", "demo")}
EXIT_INTERRUPTED = 130

#: A hook that may run the parsed command elsewhere: (args, argv) -> its exit code, or None to run it here.
Forward = Callable[[argparse.Namespace, list[str]], int | None]


def build_parser(commands: Mapping[str, str] = COMMANDS) -> OneLineParser:
    parser = OneLineParser(prog="viewfinder", description="Find where ground photos were taken on a satellite map.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in commands.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def run_here(argv: Sequence[str], commands: Mapping[str, str] = COMMANDS) -> int:
    """Run a command line in this process, --warm or not: what the warm server does with a client's."""
    return run_command_line(list(argv), commands)


def run_command_line(argv: list[str], commands: Mapping[str, str], forward: Forward | None = None) -> int:
    """Parse and run; the engine's own errors become one line on stderr (exit 2), a cancel or Ctrl-C
    "interrupted" (exit 130), and anything else (a bug) keeps its traceback."""
    command = "viewfinder"
    try:
        args = build_parser(commands).parse_args(argv)
        command = f"viewfinder {args.command}"
        if forward is not None:
            code = forward(args, argv)
            if code is not None:
                return code
        return importlib.import_module(commands[args.command]).run(args)
    except (KeyboardInterrupt, Cancelled):     # only Ctrl-C sets a cancel token on the command line
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ViewfinderError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
