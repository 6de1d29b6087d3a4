"""The `viewfinder` command line. Each subcommand lives in engine/commands/<name>.py."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from engine.commands.common import EXIT_USAGE, OneLineParser, UsageError

#: Subcommands in help order; each names a module in engine.commands.
COMMANDS = ("synth", "index", "localize", "train", "eval", "demo")


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="viewfinder", description="Find where ground photos were taken on a satellite map.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"engine.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from engine.geo.errors import GeoInputError
    from engine.synth.export.staging import OutputFolderError

    command = "viewfinder"
    try:
        args = build_parser().parse_args(argv)
        command = f"viewfinder {args.command}"
        return importlib.import_module(f"engine.commands.{args.command}").run(args)
    except (UsageError, OutputFolderError, GeoInputError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
