"""Errors as the app shows them: one line, in the status bar, a table row or a dialog. No Qt here: the
engine and training child processes use it too."""
from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The first line of the error's message, or its class name when it has none."""
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
