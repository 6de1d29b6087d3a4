"""Readers of Viewfinder's own synthetic exports (engine.synth.export): the CVNAF and VIGOR layouts plus the
extras the exporter writes beside them.

- CVNAF layout: dataset.json gives each city's chip size (chip_px) and ground resolution
  (chip_metres_per_px) and CRS; {city}/truth.geojson holds every photo's camera point and its exact,
  occlusion-aware overlap polygon (RFC 7946 lon/lat), which become `overlap_px` in chip pixels.
- VIGOR layout: the "panorama" folder holds perspective photos, whose heading and FoV come from
  truth.geojson; tile size from dataset.json (tile_px), metres per pixel from meters_per_pixel.json.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from engine.data.datasets.cvnaf import CvnafReader
from engine.data.datasets.records import PERSPECTIVE, SatelliteRef
from engine.data.datasets.registry import register_dataset
from engine.data.datasets.vigor import VigorReader
from engine.data.errors import DatasetError
from engine.data.geometry import TileFrame, lonlat_to_map

TRUTH_GEOJSON = "truth.geojson"
DATASET_JSON = "dataset.json"


@dataclass(frozen=True)
class PhotoTruthRecord:
    """One photo's exact truth as the exporter wrote it: map position (world CRS), heading, FoV, overlap."""

    x: float
    y: float
    heading_deg: float
    fov_deg: float
    overlap_lonlat: BaseGeometry | None


def read_truth(path: Path) -> dict[str, PhotoTruthRecord]:
    """truth.geojson -> {photo stem: record}. Raises ValueError/OSError on a file that is not such a table."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    cameras: dict[str, dict] = {}
    overlaps: dict[str, BaseGeometry] = {}
    for feature in payload.get("features", []):
        props = feature.get("properties") or {}
        stem = Path(str(props.get("photo", ""))).stem
        if props.get("kind") == "camera":
            cameras[stem] = props
        elif props.get("kind") == "overlap" and feature.get("geometry") is not None:
            overlaps[stem] = shape(feature["geometry"])
    return {stem: PhotoTruthRecord(float(p["x"]), float(p["y"]), float(p["heading_deg"]), float(p["fov_deg"]),
                                   overlaps.get(stem))
            for stem, p in cameras.items()}


def lonlat_geometry_to_tile(geometry: BaseGeometry, crs: str, frame: TileFrame) -> BaseGeometry:
    """A lon/lat geometry -> the same geometry in pixels of a tile placed on the map by `frame`."""
    def to_tile(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_map(crs, coords[:, 0], coords[:, 1])
        px, py = frame.map_to_tile(x, y)
        return np.column_stack([px, py])
    return shapely.transform(geometry, to_tile)


def read_dataset_json(root: Path, layout: str) -> dict:
    path = root / DATASET_JSON
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; {root} is not a synthetic {layout} export") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict) or info.get("layout") != layout:
        raise DatasetError(f"{path}: layout is {info.get('layout') if isinstance(info, dict) else None!r}, "
                           f"expected {layout!r}")
    return info


def read_export_layout(root: Path) -> str | None:
    """The layout dataset.json at `root` names, None without a readable one."""
    try:
        info = json.loads((root / DATASET_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info.get("layout") if isinstance(info, dict) else None


def _city_table(info: dict) -> dict[str, dict]:
    return {str(c["name"]): c for c in info.get("cities", []) if isinstance(c, dict) and "name" in c}


class _SyntheticExport:
    """What both synthetic readers share: dataset.json names their layout and lists their cities."""

    layout = "synthetic"
    #: The layout value of this export's dataset.json.
    export_layout: ClassVar[str]
    #: dataset.json names the layout: a surer sign than the CVNAF or VIGOR folders around it.
    detect_priority = 50
    requested_cities: list[str] | None
    city_info: dict[str, dict]

    @classmethod
    def detect(cls, root: Path) -> bool:
        return read_export_layout(root) == cls.export_layout

    def city_names(self) -> list[str]:
        if self.requested_cities is not None:
            return self.requested_cities
        return list(self.city_info)


class _TruthCache:
    """Per-city truth tables, loaded on first use; a missing or unreadable table is reported once."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.tables: dict[str, dict[str, PhotoTruthRecord]] = {}

    def of(self, city: str) -> dict[str, PhotoTruthRecord]:
        if city not in self.tables:
            path = self.reader.root / city / TRUTH_GEOJSON
            table: dict[str, PhotoTruthRecord] = {}
            if not path.is_file():
                self.reader._skip(path, "missing")
            else:
                try:
                    table = read_truth(path)
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    self.reader._skip(path, f"unreadable truth ({type(exc).__name__}: {exc})")
            self.tables[city] = table
        return self.tables[city]


@register_dataset
class SyntheticCvnafReader(_SyntheticExport, CvnafReader):
    """A synthetic CVNAF-layout export: CVNAF items plus chip resolution/size, map position and exact overlap.

    Without a truth entry for a photo its item keeps `overlap_px=None` (the sector mask still applies).
    """

    dataset_name = "synthetic CVNAF"
    kind, export_layout = "synthetic-cvnaf", "cvnaf"

    def __init__(self, root: str | Path, split: str = "train", cities: Sequence[str] | None = None, *,
                 check_images: bool = False) -> None:
        self.info = read_dataset_json(Path(root), self.export_layout)
        self.city_info = _city_table(self.info)
        super().__init__(root, split, cities, check_images=check_images)

    def _index(self) -> None:
        super()._index()
        truths = _TruthCache(self)
        enriched = []
        for item in self.items:
            city = self.city_info.get(item.city or "", {})
            chip_px = int(city.get("chip_px", 0)) or None
            mpp = float(city["chip_metres_per_px"]) if "chip_metres_per_px" in city else None
            crs = city.get("crs")
            truth = truths.of(item.city).get(Path(item.ground_path).stem) if item.city else None
            changes = {"dataset": "synthetic-cvnaf", "metres_per_px": mpp,
                           "satellite_size_px": (chip_px, chip_px) if chip_px else None}
            if truth is not None and crs:
                changes.update(map_xy=(truth.x, truth.y), map_crs=crs)
                if truth.overlap_lonlat is not None and chip_px and mpp:
                    frame = TileFrame.centred_on(truth.x, truth.y, chip_px, chip_px, mpp)
                    changes["overlap_px"] = lonlat_geometry_to_tile(truth.overlap_lonlat, crs, frame)
            enriched.append(dataclasses.replace(item, **changes))
        self.items = enriched


@register_dataset
class SyntheticVigorReader(_SyntheticExport, VigorReader):
    """A synthetic VIGOR-style export: perspective photos (heading, FoV from truth) on offset tiles."""

    dataset_name = "synthetic VIGOR"
    kind, export_layout = "synthetic-vigor", "vigor"

    def __init__(self, root: str | Path, mode: str = "same_area", split: str = "train",
                 cities: Sequence[str] | None = None, *, check_images: bool = False) -> None:
        self.info = read_dataset_json(Path(root), self.export_layout)
        self.city_info = _city_table(self.info)
        self._truths = None
        super().__init__(root, mode, split, cities, label_dir="splits", check_images=check_images)

    def _index(self) -> None:
        self._truths = _TruthCache(self)
        super()._index()
        self.items = [dataclasses.replace(item, dataset="synthetic-vigor") for item in self.items]

    def _ground_fields(self, city: str, pano_name: str, positive: SatelliteRef, tile_size: tuple[int, int],
                       metres_per_px: float | None) -> dict:
        stem = pano_name.split(",")[0]
        truth = self._truths.of(city).get(stem)
        if truth is None:
            if self._truths.of(city):
                self._skip(self.root / city / TRUTH_GEOJSON, f"no truth for {pano_name}")
            return {"ground_kind": PERSPECTIVE}
        fields = {"ground_kind": PERSPECTIVE, "heading_deg": truth.heading_deg % 360.0,
                  "fov_deg": truth.fov_deg}
        crs = self.city_info.get(city, {}).get("crs")
        if crs:
            fields.update(map_xy=(truth.x, truth.y), map_crs=crs)
            if truth.overlap_lonlat is not None and metres_per_px:
                col_offset, row_offset = positive.camera_offset_px
                centre_x = truth.x - col_offset * metres_per_px
                centre_y = truth.y + row_offset * metres_per_px   # rows grow southwards
                frame = TileFrame.centred_on(centre_x, centre_y, tile_size[0], tile_size[1], metres_per_px)
                fields["overlap_px"] = lonlat_geometry_to_tile(truth.overlap_lonlat, crs, frame)
        return fields
