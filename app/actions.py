"""The window's actions, menus and toolbar. Toolbar texts never change (undo/redo details go in tooltips),
so the toolbar does not jump as the analyst works."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QStyle

SP = QStyle.StandardPixmap


def make_action(window: QMainWindow, text: str, slot, shortcut=None, icon=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(slot)
    return action


def build_actions(w) -> None:
    """Create w.<name>_action for every command and lay out the menus and toolbar of main window `w`."""
    a = make_action
    w.open_map_action = a(w, "Open &map…", w.choose_map, QKeySequence.StandardKey.Open, SP.SP_DirOpenIcon,
                          "Open a GeoTIFF map and index it")
    w.add_photos_action = a(w, "Add &photos…", w.choose_photos, "Ctrl+P", SP.SP_FileIcon,
                            "Queue photos for localisation")
    w.open_project_action = a(w, "Open &project…", w.choose_project, "Ctrl+Shift+O")
    w.save_project_action = a(w, "&Save project", w.save_project, QKeySequence.StandardKey.Save,
                              SP.SP_DialogSaveButton, "Save map, photos, results and layers")
    w.save_project_as_action = a(w, "Save project &as…", w.save_project_as, QKeySequence.StandardKey.SaveAs)
    w.export_geojson_action = a(w, "Export &GeoJSON…", lambda: w.choose_export("geojson"), "Ctrl+E",
                                SP.SP_DialogSaveButton, "Export the results as GeoJSON (RFC 7946)")
    w.export_html_action = a(w, "Export &HTML map…", lambda: w.choose_export("html"))
    w.export_csv_action = a(w, "Export &CSV…", lambda: w.choose_export("csv"))
    quit_action = a(w, "&Quit", w.close, QKeySequence.StandardKey.Quit)
    w.undo_action = a(w, "Undo", w.session.undo, QKeySequence.StandardKey.Undo, SP.SP_ArrowBack)
    w.redo_action = a(w, "Redo", w.session.redo, QKeySequence.StandardKey.Redo, SP.SP_ArrowForward)
    w.relocalize_action = a(w, "&Localise again", w.relocalize_selected, "Ctrl+L",
                            tip="Localise the selected photo again (drops its correction)")
    w.cancel_action = a(w, "&Cancel running work", w.controller.cancel, "Esc")
    zoom_map = a(w, "Zoom to &map", w.canvas.zoom_to_map, "Ctrl+0", tip="Show the whole map")
    zoom_selection = a(w, "Zoom to &selection", w.zoom_to_selected, "Ctrl+F")
    w.train_action = a(w, "&Train model…", w.show_training_dialog, "Ctrl+T", SP.SP_ComputerIcon,
                       "Train or fine-tune the model")
    w.use_model_action = a(w, "Use model &file…", w.choose_model,
                           tip="Localise with a trained checkpoint (re-indexes the map)")
    about = a(w, "&About Viewfinder", w.show_about)

    menu = w.menuBar()
    for title, actions in (
            ("&File", (w.open_map_action, w.add_photos_action, None, w.open_project_action, w.save_project_action,
                       w.save_project_as_action, None, w.export_geojson_action, w.export_html_action,
                       w.export_csv_action, None, quit_action)),
            ("&Edit", (w.undo_action, w.redo_action, None, w.relocalize_action, w.cancel_action)),
            ("&View", (zoom_map, zoom_selection, None, w.layers_dock.toggleViewAction(),
                       w.results_dock.toggleViewAction(), w.identify_dock.toggleViewAction())),
            ("&Model", (w.train_action, w.use_model_action)), ("&Help", (about,))):
        submenu = menu.addMenu(title)
        for action in actions:
            submenu.addSeparator() if action is None else submenu.addAction(action)

    toolbar = w.addToolBar("Main")
    toolbar.setObjectName("main-toolbar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    toolbar.setMovable(False)
    for action in (w.open_map_action, w.add_photos_action, w.save_project_action, None, w.undo_action,
                   w.redo_action, None, w.export_geojson_action, None, w.train_action):
        toolbar.addSeparator() if action is None else toolbar.addAction(action)
    w.toolbar = toolbar


def update_history_actions(w) -> None:
    """Enable undo/redo; what they would do goes in the tooltip and menu status tip, not the button text."""
    for action, enabled, text in ((w.undo_action, w.session.can_undo, w.session.undo_text()),
                                  (w.redo_action, w.session.can_redo, w.session.redo_text())):
        action.setEnabled(enabled)
        action.setToolTip(text)
        action.setStatusTip(text)
