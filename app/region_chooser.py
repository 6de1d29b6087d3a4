"""The two questions for a map too large for one ground frame: cut it into regions? and which region to open.
Both are window-modal and opened with open(), so the event loop (and the engine's answers) keep running."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.regions import RegionOffer, busiest_region
from engine.pipeline import MapRegion

CUT_TEXT, OPEN_REGION_TEXT = "Cut into regions", "Open region"
VISIBLE_ROWS = 12               # the list shows this many regions before it scrolls


def ask_cut_into_regions(parent: QWidget, offer: RegionOffer, answer: Callable[[bool], None]) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Question, "Map too large", offer.question(),
                      QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText("Each region is a small VRT file written beside the map; it reads the map where it "
                           "lies, so keep them together.")
    cut = box.addButton(CUT_TEXT, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cut)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda _: answer(box.clickedButton() is cut))
    box.open()
    return box


def degrees(value: float, positive: str, negative: str) -> str:
    return f"{abs(value):.2f}° {positive if value >= 0 else negative}"


class RegionChooser(QDialog):
    """The regions a map was cut into (name, lon/lat extent, photos known to lie in each); `chosen` is the
    VRT of the selected one."""

    def __init__(self, offer: RegionOffer, regions: list[tuple[MapRegion, str]], photo_counts: list[int],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Open a region of {offer.name}")
        self.regions = regions
        with_photos = any(photo_counts)
        folder = Path(regions[0][1]).parent if regions else Path(offer.path).parent
        intro = QLabel(f"{offer.name} was cut into {len(regions)} regions (VRT files in {folder}). "
                       "Choose the one to open; the others stay there for later (File > Open map).")
        intro.setWordWrap(True)
        hint = QLabel("Preselected: the region holding most of the photos (EXIF GPS or corrections)."
                      if with_photos else "No photo has a GPS position or a correction: the first region is "
                      "preselected.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #606368;")

        headers = ["Region", "West", "South", "East", "North"] + (["Photos"] if with_photos else [])
        self.table = QTableWidget(len(regions), len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, ((region, _vrt), count) in enumerate(zip(regions, photo_counts, strict=True)):
            west, south, east, north = region.lonlat_bounds
            cells = [region.name, degrees(west, "E", "W"), degrees(south, "N", "S"), degrees(east, "E", "W"),
                     degrees(north, "N", "S")] + ([str(count or "")] if with_photos else [])
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)     # a list, not a form
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(self.table.horizontalHeader().height()
                                    + VISIBLE_ROWS * self.table.verticalHeader().defaultSectionSize() + 4)
        self.table.doubleClicked.connect(self.accept)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.open_button = buttons.addButton(OPEN_REGION_TEXT, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)    # Enter opens the region
        self.open_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(hint)
        layout.addWidget(buttons)
        self.resize(620, self.sizeHint().height())
        self.select(busiest_region(photo_counts))

    def select(self, row: int) -> None:
        self.table.selectRow(row)
        self.table.scrollToItem(self.table.item(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)

    @property
    def chosen(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.regions[rows[0].row()][1] if rows else None


def choose_region(parent: QWidget, offer: RegionOffer, regions: list[tuple[MapRegion, str]],
                  photo_counts: list[int], answer: Callable[[str | None], None]) -> RegionChooser:
    """Open the chooser; `answer` gets the chosen region's VRT path, or None when cancelled."""
    dialog = RegionChooser(offer, regions, photo_counts, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    accepted = QDialog.DialogCode.Accepted.value
    dialog.finished.connect(lambda result: answer(dialog.chosen if result == accepted else None))
    dialog.open()
    return dialog
