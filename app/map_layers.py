"""The map's standard layers and how each is drawn from the session's results.

Cameras and truth crosses are drawn for every photo; the explanation layers (score surface, heatmap,
overlap region, CWR points, prior, footprints) for the selected photo and candidate.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
import shapely
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from app.layers import Layer, LayerStack
from app.overlays import (
    HEATMAP_COLORMAP,
    POSE_COLORMAP,
    SCORE_COLORMAP,
    CameraMarker,
    CircleItem,
    CrossMarker,
    GeoImageItem,
    GeometryItem,
    GridImageItem,
    label_item,
    marker_color,
    points_item,
)
from engine.pipeline import session as vf

# key, name, visible, opacity (top first)
STANDARD_LAYERS = (
    ("cameras", "Camera positions", True, 1.0),
    ("truth", "Truth (position, overlap)", True, 1.0),
    ("cwr", "CWR points", True, 1.0),
    ("overlap", "Predicted overlap (SRS)", True, 0.9),
    ("credible", "95 % credible region", True, 1.0),
    ("prior", "EXIF prior", True, 1.0),
    ("footprints", "Candidate tiles", True, 1.0),
    ("bev", "Photo on the ground (BEV)", True, 0.8),
    ("heatmap", "Attention heatmap", True, 0.85),
    ("pose", "Pose probability surface", True, 0.6),
    ("score", "Retrieval score surface", False, 0.55),
    ("satellite", "Satellite map", True, 1.0),
)

CWR_COLOURS = (QColor(0, 229, 255), QColor(120, 255, 120), QColor(255, 235, 59), QColor(255, 152, 0),
               QColor(233, 30, 99), QColor(156, 39, 176))
CWR_SYMBOLS = ("o", "s", "t", "d", "h", "star")
FOOTPRINT_COLOUR = QColor(255, 196, 0)
OVERLAP_COLOUR = QColor(0, 200, 255)
TRUTH_COLOUR = QColor(60, 220, 90)
PRIOR_COLOUR = QColor(180, 120, 255)
CREDIBLE_COLOUR = QColor(255, 255, 255)
SURFACES = {"heatmap": HEATMAP_COLORMAP, "pose": POSE_COLORMAP, "score": SCORE_COLORMAP}


@dataclass
class LegendEntry:
    """What the legend shows for one visible layer: a colour ramp with its range, or symbols with labels."""

    key: str
    title: str
    colormap: str | None = None
    low: str = ""
    high: str = ""
    symbols: list[tuple[str, QColor, str]] = field(default_factory=list)   # (pyqtgraph symbol, colour, label)


def layer_icon(key: str) -> QIcon:
    """A small legend symbol for each standard layer, drawn like the layer draws itself."""
    size = 16
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if key == "cameras":
        wedge = QPainterPath()
        wedge.moveTo(8, 12)
        wedge.arcTo(QRectF(-4, 0, 24, 24), 60, 60)
        wedge.closeSubpath()
        painter.setPen(QPen(QColor(230, 60, 90), 1))
        painter.setBrush(QColor(230, 60, 90, 70))
        painter.drawPath(wedge)
        painter.setBrush(QColor(230, 60, 90))
        painter.setPen(QPen(QColor(255, 255, 255), 1.2))
        painter.drawEllipse(QPointF(8, 12), 3.5, 3.5)
    elif key == "truth":
        painter.setPen(QPen(TRUTH_COLOUR, 2.2))
        painter.drawLine(3, 3, 13, 13)
        painter.drawLine(3, 13, 13, 3)
    elif key == "cwr":
        for i, (x, y) in enumerate(((4, 11), (8, 5), (12, 11))):
            painter.setPen(QPen(QColor(255, 255, 255), 1))
            painter.setBrush(CWR_COLOURS[i])
            painter.drawEllipse(QPointF(x, y), 3, 3)
    elif key == "overlap":
        fill = QColor(OVERLAP_COLOUR)
        fill.setAlpha(90)
        painter.setPen(QPen(OVERLAP_COLOUR, 1.5))
        painter.setBrush(fill)
        painter.drawPolygon([QPointF(2, 14), QPointF(8, 2), QPointF(14, 14)])
    elif key == "prior":
        painter.setPen(QPen(PRIOR_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.drawEllipse(QPointF(8, 8), 6, 6)
    elif key == "footprints":
        painter.setPen(QPen(FOOTPRINT_COLOUR, 2))
        painter.drawRect(QRectF(2.5, 2.5, 11, 11))
    elif key == "credible":
        painter.setPen(QPen(CREDIBLE_COLOUR, 1.6, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(255, 255, 255, 40))
        painter.drawEllipse(QPointF(8, 8), 6, 5)
    elif key == "bev":
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(120, 160, 210))
        painter.drawPolygon([QPointF(8, 14), QPointF(1, 3), QPointF(15, 3)])
        painter.setBrush(QColor(110, 140, 90))
        painter.drawPolygon([QPointF(8, 14), QPointF(4, 9), QPointF(12, 9)])
    elif key in SURFACES:
        lut = pg.colormap.get(SURFACES[key]).getLookupTable(0.0, 1.0, 4, alpha=False)
        for i, colour in enumerate(lut):
            painter.fillRect(QRectF(2 + 3 * i, 2, 3, 12), QColor(*colour))
    else:   # satellite map
        painter.fillRect(QRectF(2, 2, 12, 12), QColor(110, 140, 90))
        painter.fillRect(QRectF(2, 9, 12, 2), QColor(150, 150, 150))
        painter.fillRect(QRectF(8, 2, 2, 12), QColor(150, 150, 150))
        painter.fillRect(QRectF(3, 3, 4, 5), QColor(196, 90, 60))
    painter.end()
    return QIcon(pixmap)


class MapLayers(QObject):
    marker_moved = Signal(str, float, float)   # photo path, new map x, y
    marker_clicked = Signal(str)
    drawn = Signal()                           # the selection's overlays were redrawn (the legend follows)

    def __init__(self, plot_item: pg.PlotItem, lonlat_to_map: Callable[[float, float], tuple[float, float]]) -> None:
        super().__init__()
        self.plot = plot_item
        self.view = plot_item.getViewBox()
        self.lonlat_to_map = lonlat_to_map
        self.stack = LayerStack()
        for key, name, visible, opacity in STANDARD_LAYERS:
            self.stack.add(Layer(key, name, visible=visible, opacity=opacity, view=self.view, icon=layer_icon(key)))
        self.map_bounds: tuple[float, float, float, float] | None = None     # overlays are cut to the map
        self.heatmap_level = 0
        self.markers: dict[str, CameraMarker] = {}
        self.candidate_marker: CameraMarker | None = None
        self.ranges: dict[str, tuple[float, float]] = {}    # value range each surface is drawn with
        self.cwr_levels = 0

    def __getitem__(self, key: str) -> Layer:
        return self.stack[key]

    # ------------------------------------------------------------ every photo
    def draw_cameras(self, records, selected: str) -> None:
        layer = self.stack["cameras"]
        layer.clear()
        self.markers.clear()
        self.candidate_marker = None
        for record in records:
            result = record.result
            best = result.best if result is not None else None
            if best is None:
                continue
            is_selected = record.path == selected
            sigma = result.pose.heading_sigma_deg if result.pose is not None and result.manual_position is None \
                else None
            tip = "\n".join(f"{name}: {value}" for name, value in vf.identify(record)
                            if name in ("Photo", "Heading", "Field of view", "Confidence", "Error radius (95 %)"))
            marker = CameraMarker(record.path, best.position.x, best.position.y, vf.heading_of(result), result.fov_deg,
                                  marker_color(result.status, is_selected), label=record.name,
                                  show_label=is_selected, heading_sigma_deg=sigma, tooltip=tip)
            marker.moved.connect(self.marker_moved)
            marker.clicked.connect(self.marker_clicked)
            layer.add(marker, sub_z=2.0 if is_selected else 1.0)
            self.markers[record.path] = marker

    def draw_truth(self, truths: dict, selected: str) -> None:
        """True camera positions of every photo; the selected photo's true overlap region and heading too."""
        layer = self.stack["truth"]
        layer.clear()
        selected_stem = vf.photo_stem(selected) if selected else None
        for name, truth in truths.items():
            is_selected = name == selected_stem
            if is_selected and truth.overlap is not None:
                layer.add(GeometryItem(self._clip(truth.overlap), TRUTH_COLOUR, None, 2.0, Qt.PenStyle.DashLine,
                                       f"true overlap region of {name}"), sub_z=0.0)
            layer.add(CrossMarker(truth.x, truth.y, truth.heading_deg if is_selected else None, TRUTH_COLOUR,
                                  f"true camera position of {name}"), sub_z=1.0)

    def _clip(self, geometry):
        if geometry is None or self.map_bounds is None:
            return geometry
        frame = shapely.box(*self.map_bounds)
        return geometry if frame.contains(geometry) else geometry.intersection(frame)

    def _on_map(self, x: float, y: float) -> bool:
        if self.map_bounds is None:
            return True
        left, bottom, right, top = self.map_bounds
        return left <= x <= right and bottom <= y <= top

    # ------------------------------------------------------------ selected photo and candidate
    def draw_selection(self, record, candidate_index: int) -> None:
        for key in ("score", "pose", "bev", "credible", "heatmap", "overlap", "cwr", "prior", "footprints"):
            self.stack[key].clear()
        self.ranges, self.cwr_levels = {}, 0
        if self.candidate_marker is not None:
            self.stack["cameras"].remove(self.candidate_marker)
            self.candidate_marker = None
        result = record.result if record is not None else None
        if result is not None:
            self._draw_result(result, candidate_index)
        self.drawn.emit()

    def _draw_result(self, result, candidate_index: int) -> None:
        if result.score_surface is not None:
            item = GridImageItem(result.score_surface, SCORE_COLORMAP, clip=self.map_bounds)
            self.stack["score"].add(item)
            self.ranges["score"] = item.levels_used
        self._draw_pose(result)
        self._draw_prior(result)
        if not result.candidates:
            return
        candidate_index = min(max(candidate_index, 0), len(result.candidates) - 1)
        for index, candidate in enumerate(result.candidates):
            chosen = index == candidate_index
            colour = FOOTPRINT_COLOUR if chosen else QColor(255, 196, 0, 150)
            footprint = self._clip(candidate.footprint)
            if footprint.is_empty:
                continue
            self.stack["footprints"].add(GeometryItem(
                footprint, colour, None, 2.4 if chosen else 1.0,
                Qt.PenStyle.SolidLine if chosen else Qt.PenStyle.DashLine,
                f"candidate {candidate.rank}: tile {candidate.tile_index}, score {candidate.score:.3f}"),
                sub_z=1.0 if chosen else 0.0)
            left, _, _, top = footprint.bounds
            if chosen or index < 5:
                self.stack["footprints"].add(label_item(f"#{candidate.rank}", left, top, FOOTPRINT_COLOUR,
                                                        anchor=(0.0, 0.0)), sub_z=2.0)
        candidate = result.candidates[candidate_index]
        self._draw_heatmap(candidate)
        if candidate.overlap_region is not None:
            fill = QColor(OVERLAP_COLOUR)
            fill.setAlpha(60)
            self.stack["overlap"].add(GeometryItem(self._clip(candidate.overlap_region), OVERLAP_COLOUR, fill, 2.0,
                                                   tooltip=f"predicted overlap region, candidate {candidate.rank}"))
        self.cwr_levels = len(candidate.cwr_points)
        for level, point in enumerate(candidate.cwr_points):
            if not self._on_map(point.x, point.y):
                continue        # an edge tile's attention centre can fall in the part of it off the map
            colour, symbol = QColor(CWR_COLOURS[level % len(CWR_COLOURS)]), CWR_SYMBOLS[level % len(CWR_SYMBOLS)]
            colour.setAlpha(150)        # the heatmap's hot spot under the point stays visible
            self.stack["cwr"].add(points_item(np.array([[point.x, point.y]]), colour, symbol, 11.0,
                                              [f"CWR point, attention level {level}"]), sub_z=float(-level))
        if candidate.rank != 1 or result.manual_position is not None:
            # the chosen candidate's own fine position, beside the photo's reported one
            self.candidate_marker = CameraMarker("", candidate.position.x, candidate.position.y,
                                                 candidate.heading_deg, result.fov_deg, QColor(255, 255, 255),
                                                 draggable=False, hollow=True,
                                                 tooltip=f"candidate {candidate.rank}: the fine head's position")
            self.stack["cameras"].add(self.candidate_marker, sub_z=0.5)

    def _draw_pose(self, result) -> None:
        pose = result.pose
        if pose is None:
            return
        if pose.surface is not None:
            values = pose.surface.values
            peak = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
            item = GridImageItem(pose.surface, POSE_COLORMAP, levels=(0.0, peak if peak > 0 else 1.0),
                                 alpha_ramp=True, clip=self.map_bounds)
            self.stack["pose"].add(item)
            self.ranges["pose"] = item.levels_used
        if pose.credible_region is not None and not pose.credible_region.is_empty:
            tip = f"{pose.credible_level:.0%} credible region: radius ≈ {pose.error_radius_m:.0f} m"
            self.stack["credible"].add(GeometryItem(self._clip(pose.credible_region), CREDIBLE_COLOUR,
                                                    QColor(255, 255, 255, 30), 2.0, Qt.PenStyle.DashLine, tip))
        if pose.bev is not None:
            self.stack["bev"].add(GeoImageItem(pose.bev, clip=self.map_bounds))

    def _draw_heatmap(self, candidate) -> None:
        if not candidate.attention:
            return
        level = min(self.heatmap_level, len(candidate.attention) - 1)
        grid = candidate.attention[level]
        peak = float(np.nanmax(grid.values)) if np.isfinite(grid.values).any() else 1.0
        item = GridImageItem(grid, HEATMAP_COLORMAP, levels=(0.0, peak if peak > 0 else 1.0), alpha_ramp=True,
                             clip=self.map_bounds)
        self.stack["heatmap"].add(item)
        self.ranges["heatmap"] = (0.0, 1.0)

    def _draw_prior(self, result) -> None:
        prior = (result.priors or {}).get("position")
        if not prior:
            return
        try:
            x, y = self.lonlat_to_map(float(prior["lon"]), float(prior["lat"]))
            radius = float(prior["radius_m"])
        except (KeyError, TypeError, ValueError):
            return
        if not (math.isfinite(x) and math.isfinite(y) and radius > 0):
            return
        source = prior.get("source", "exif")
        self.stack["prior"].add(CircleItem(x, y, radius, PRIOR_COLOUR,
                                           f"position prior ({source}): within {radius:.0f} m"))
        self.stack["prior"].add(points_item(np.array([[x, y]]), PRIOR_COLOUR, "+", 12.0), sub_z=1.0)

    # ------------------------------------------------------------ legend
    def legend(self) -> list[LegendEntry]:
        """One entry per visible layer that has something drawn, top layer first."""
        entries = []
        for layer in self.stack.layers:
            if not layer.visible or not layer.items:
                continue
            key = layer.key
            if key == "heatmap":
                entries.append(LegendEntry(key, f"Attention, level {self.heatmap_level} (share of peak)",
                                           HEATMAP_COLORMAP, "0", "1"))
            elif key == "pose" and "pose" in self.ranges:
                entries.append(LegendEntry(key, "Pose probability per cell", POSE_COLORMAP, "0",
                                           f"{self.ranges['pose'][1]:.2g}"))
            elif key == "score" and "score" in self.ranges:
                low, high = self.ranges["score"]
                entries.append(LegendEntry(key, "Retrieval score (cosine)", SCORE_COLORMAP, f"{low:.2f}",
                                           f"{high:.2f}"))
            elif key == "cwr" and self.cwr_levels:
                entries.append(LegendEntry(key, "CWR points", symbols=[
                    (CWR_SYMBOLS[i % len(CWR_SYMBOLS)], CWR_COLOURS[i % len(CWR_COLOURS)],
                     f"level {i}" + (" (finest)" if i == 0 else "")) for i in range(self.cwr_levels)]))
        return entries
