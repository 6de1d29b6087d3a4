"""Errors as the app shows them: one line, in the status bar, a table row or a dialog. No Qt here: the
engine and training child processes use it too."""
from __future__ import annotations

from pathlib import PurePath


def one_line(exc: BaseException) -> str:
    """The first line of the error's message, or its class name when it has none."""
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


def naming_the_file(path: str, reason: str) -> str:
    """The reason as the analyst reads it: prefixed with the file unless the engine's message names it."""
    return reason if PurePath(path).name in reason else f"{path}: {reason}"
