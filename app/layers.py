"""Layers: every overlay is a named layer with visibility, opacity and a place in the drawing order.

A Layer owns the graphics items drawn for it and applies its settings to each; the LayerStack keeps the
order (top first) and turns it into z-values; the LayersPanel is the widget that edits them.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

Z_STEP = 100.0   # room for sub-orders inside one layer


class Layer(QObject):
    changed = Signal()

    def __init__(self, key: str, name: str, *, visible: bool = True, opacity: float = 1.0,
                 view=None, icon=None) -> None:
        super().__init__()
        self.key = key
        self.name = name
        self.icon = icon                        # QIcon shown in the layers panel
        self.visible = visible
        self.opacity = opacity
        self.z = 0.0
        self._view = view                       # pyqtgraph ViewBox the items are drawn in
        self.items: list = []
        self._sub_z: dict[int, float] = {}
        self._companions: list = []             # follow visibility only (a colour bar outside the view)

    def add(self, item, sub_z: float = 0.0) -> None:
        """Draw `item` in this layer (it is added to the view)."""
        self._sub_z[id(item)] = sub_z
        self.items.append(item)
        self._apply(item)
        if self._view is not None and item.scene() is None:
            self._view.addItem(item, ignoreBounds=True)

    def add_companion(self, widget_or_item) -> None:
        self._companions.append(widget_or_item)
        widget_or_item.setVisible(self.visible and bool(self.items))

    def remove(self, item) -> None:
        if item in self.items:
            self.items.remove(item)
            self._sub_z.pop(id(item), None)
            if self._view is not None and item.scene() is not None:
                self._view.removeItem(item)
            self._update_companions()

    def clear(self) -> None:
        for item in self.items:
            if self._view is not None and item.scene() is not None:
                self._view.removeItem(item)
        self.items.clear()
        self._sub_z.clear()
        self._update_companions()

    def _apply(self, item) -> None:
        item.setZValue(self.z + self._sub_z.get(id(item), 0.0))
        item.setOpacity(self.opacity)
        item.setVisible(self.visible)
        self._update_companions()

    def _update_companions(self) -> None:
        for companion in self._companions:
            companion.setVisible(self.visible and bool(self.items))

    def set_visible(self, visible: bool) -> None:
        if visible != self.visible:
            self.visible = visible
            for item in self.items:
                item.setVisible(visible)
            self._update_companions()
            self.changed.emit()

    def set_opacity(self, opacity: float) -> None:
        opacity = min(1.0, max(0.0, float(opacity)))
        if opacity != self.opacity:
            self.opacity = opacity
            for item in self.items:
                item.setOpacity(opacity)
            self.changed.emit()

    def set_z(self, z: float) -> None:
        self.z = z
        for item in self.items:
            item.setZValue(z + self._sub_z.get(id(item), 0.0))

    def settings(self) -> dict:
        return {"visible": self.visible, "opacity": round(self.opacity, 3)}


class LayerStack(QObject):
    """The layers in drawing order, top first."""

    order_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.layers: list[Layer] = []

    def add(self, layer: Layer) -> Layer:
        """Append at the bottom (call in top-to-bottom order)."""
        self.layers.append(layer)
        self._restack()
        return layer

    def __getitem__(self, key: str) -> Layer:
        for layer in self.layers:
            if layer.key == key:
                return layer
        raise KeyError(key)

    def move(self, key: str, step: int) -> None:
        """Move a layer `step` places towards the top (negative: towards the bottom)."""
        index = [layer.key for layer in self.layers].index(key)
        target = min(max(index - step, 0), len(self.layers) - 1)
        if target != index:
            self.layers.insert(target, self.layers.pop(index))
            self._restack()
            self.order_changed.emit()

    def _restack(self) -> None:
        count = len(self.layers)
        for position, layer in enumerate(self.layers):
            layer.set_z((count - position) * Z_STEP)

    def settings(self) -> dict:
        return {"order": [layer.key for layer in self.layers],
                "layers": {layer.key: layer.settings() for layer in self.layers}}

    def apply_settings(self, settings: dict) -> None:
        known = {layer.key: layer for layer in self.layers}
        order = [key for key in settings.get("order", []) if key in known]
        order += [key for key in known if key not in order]
        self.layers = [known[key] for key in order]
        self._restack()
        for key, values in settings.get("layers", {}).items():
            if key in known:
                known[key].set_visible(bool(values.get("visible", True)))
                known[key].set_opacity(float(values.get("opacity", 1.0)))
        self.order_changed.emit()


class LayersPanel(QWidget):
    """Checkbox list of layers (top first), an opacity slider for the selected one, and up/down buttons."""

    def __init__(self, stack: LayerStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stack = stack
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAlternatingRowColors(True)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_label = QLabel("Opacity")
        self.opacity_value = QLabel("100 %")
        self.opacity_value.setMinimumWidth(40)
        self.up_button = QToolButton(text="▲")
        self.up_button.setToolTip("Draw the selected layer higher")
        self.down_button = QToolButton(text="▼")
        self.down_button.setToolTip("Draw the selected layer lower")

        controls = QHBoxLayout()
        controls.addWidget(self.opacity_label)
        controls.addWidget(self.opacity_slider, 1)
        controls.addWidget(self.opacity_value)
        controls.addWidget(self.up_button)
        controls.addWidget(self.down_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(controls)
        self.extra = QVBoxLayout()       # layer-specific controls (heatmap level) go here
        layout.addLayout(self.extra)

        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentRowChanged.connect(self._on_current_changed)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.up_button.clicked.connect(lambda: self._move(+1))
        self.down_button.clicked.connect(lambda: self._move(-1))
        stack.order_changed.connect(self.refresh)
        for layer in stack.layers:
            layer.changed.connect(self._sync_from_layers)
        self.refresh()

    def refresh(self) -> None:
        current = self.current_layer()
        with QSignalBlocker(self.list):
            self.list.clear()
            for layer in self.stack.layers:
                item = QListWidgetItem(layer.name)
                if layer.icon is not None:
                    item.setIcon(layer.icon)
                item.setData(Qt.ItemDataRole.UserRole, layer.key)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
                self.list.addItem(item)
        keys = [layer.key for layer in self.stack.layers]
        self.list.setCurrentRow(keys.index(current.key) if current is not None else 0)
        self._on_current_changed(self.list.currentRow())

    def _sync_from_layers(self) -> None:
        with QSignalBlocker(self.list):
            for row, layer in enumerate(self.stack.layers):
                state = Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked
                if self.list.item(row).checkState() != state:
                    self.list.item(row).setCheckState(state)
        self._on_current_changed(self.list.currentRow())

    def current_layer(self) -> Layer | None:
        item = self.list.currentItem()
        return self.stack[item.data(Qt.ItemDataRole.UserRole)] if item is not None else None

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        layer = self.stack[item.data(Qt.ItemDataRole.UserRole)]
        layer.set_visible(item.checkState() == Qt.CheckState.Checked)

    def _on_current_changed(self, row: int) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        with QSignalBlocker(self.opacity_slider):
            self.opacity_slider.setValue(round(layer.opacity * 100))
        self.opacity_value.setText(f"{round(layer.opacity * 100)} %")

    def _on_opacity(self, value: int) -> None:
        layer = self.current_layer()
        if layer is not None:
            layer.set_opacity(value / 100.0)
            self.opacity_value.setText(f"{value} %")

    def _move(self, step: int) -> None:
        layer = self.current_layer()
        if layer is not None:
            self.stack.move(layer.key, step)
