"""The `viewfinder` command line. Each subcommand lives in engine/commands/<name>.py."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from engine.commands.common import EXIT_USAGE, OneLineParser, UsageError

#: Subcommands in help order; each names a module in engine.commands.
COMMANDS = ("synth", "index", "localize", "train", "eval", "demo", "serve")


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="viewfinder", description="Find where ground photos were taken on a satellite map.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"engine.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `viewfinder` command. A command given --warm runs on the warm server (engine/server) and only its
    output comes back; when no server can be had it runs here."""
    return _main(list(sys.argv[1:] if argv is None else argv), forward=True)


def run_here(argv: Sequence[str]) -> int:
    """Run a command line in this process, --warm or not: what the warm server does with a client's."""
    return _main(list(argv), forward=False)


def _main(argv: list[str], forward: bool) -> int:
    command = "viewfinder"
    try:
        args = build_parser().parse_args(argv)
        command = f"viewfinder {args.command}"
        if forward and getattr(args, "warm", False):
            from engine.server.client import forward as run_on_server
            code = run_on_server(args.command, argv, quiet=getattr(args, "quiet", False))
            if code is not None:
                return code
        return importlib.import_module(f"engine.commands.{args.command}").run(args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not isinstance(exc, _one_line_errors()):
            raise
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _one_line_errors() -> tuple[type[Exception], ...]:
    """Errors reported in one line with exit code 2. Imported only when one is raised: the --warm client
    must not pay for the engine's imports (numpy, geopandas) just to be able to name them."""
    from engine.geo.errors import GeoInputError
    from engine.synth.export.staging import OutputFolderError
    return UsageError, OutputFolderError, GeoInputError


if __name__ == "__main__":
    sys.exit(main())
