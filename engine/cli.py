"""The `viewfinder` command line: parse, hand a --warm command to the warm server, else run it here.
The subcommands live in engine/commands/<name>.py (the table: engine.commands.dispatch), `serve` in
engine/server/command.py."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.commands.dispatch import COMMANDS as ENGINE_COMMANDS
from engine.commands.dispatch import run_command_line

#: Every subcommand in help order, `serve` last.
COMMANDS: dict[str, str] = {**ENGINE_COMMANDS, "serve": "engine.server.command"}


def main(argv: Sequence[str] | None = None) -> int:
    """The `viewfinder` command. A command given --warm runs on the warm server (engine/server) and only its
    output comes back; when no server can be had it runs here."""
    return run_command_line(list(sys.argv[1:] if argv is None else argv), COMMANDS, forward=_forward_warm)


def _forward_warm(args, argv: list[str]) -> int | None:
    """The warm server's exit code for a --warm command; None to run it here."""
    if not getattr(args, "warm", False):
        return None
    from engine.server.client import forward
    return forward(args.command, argv, quiet=getattr(args, "quiet", False))


if __name__ == "__main__":
    sys.exit(main())
