"""Undoable edits: moving a predicted camera position by hand."""
from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from engine.pipeline import LocalizationResult, Position

from app.results_model import ResultsModel

class MoveCameraCommand(QUndoCommand):
    """Set a photo's manual position; undo puts back the result exactly as it was (status included)."""

    def __init__(self, model: ResultsModel, photo: str, position: Position) -> None:
        entry = model.entry(photo)
        super().__init__(f"Move {entry.name}")
        self.model = model
        self.photo = photo
        self.before: LocalizationResult = entry.result
        self.after: LocalizationResult = entry.result.corrected(position)

    def redo(self) -> None:
        self.model.set_result(self.photo, self.after)

    def undo(self) -> None:
        self.model.set_result(self.photo, self.before)
