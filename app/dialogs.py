"""Questions and warnings that never block the event loop (window-modal boxes opened with open())."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.pipeline import session as vf

KEEP_TEXT, NEW_TEXT = "Keep photos, localise again", "New session"


def ask_new_map(parent: QWidget, plan: vf.NewMapPlan, answer: Callable[[str | None], None]) -> QMessageBox:
    """'A new map over existing results': keep photos / new session / cancel; `answer` gets the choice."""
    box = QMessageBox(QMessageBox.Icon.Question, "Open another map", plan.describe(),
                      QMessageBox.StandardButton.NoButton, parent)
    keep = box.addButton(KEEP_TEXT, QMessageBox.ButtonRole.AcceptRole)
    new = box.addButton(NEW_TEXT, QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def finished() -> None:
        clicked = box.clickedButton()
        answer(vf.KEEP_PHOTOS if clicked is keep else vf.NEW_SESSION if clicked is new else None)

    box.finished.connect(finished)
    box.open()
    return box


INDEX_ANYWAY_TEXT = "Index anyway"


def ask_index_anyway(parent: QWidget, path: str, reasons: str, answer: Callable[[bool], None]) -> QMessageBox:
    """'The index plan refuses this map': index it anyway, or leave it unindexed."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Map not indexed",
                      f"{path} was not indexed:\n\n{reasons}\n\nIndexing it anyway may take long and "
                      "localise poorly.", QMessageBox.StandardButton.NoButton, parent)
    anyway = box.addButton(INDEX_ANYWAY_TEXT, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda _: answer(box.clickedButton() is anyway))
    box.open()
    return box


def warn(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
