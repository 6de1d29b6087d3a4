"""VIGOR: panoramas anywhere inside 640 x 640 satellite tiles of four US cities, for retrieval (positive plus
three semi-positive tiles) and fine-grained localisation (pixel offsets of the camera on each tile).

Layout: {City}/panorama/{id},{lat},{lon},.jpg and {City}/satellite/satellite_{lat}_{lon}.png; label folder
splits/{City}/ (or the corrected splits_new/{City}/ when present): satellite_list.txt,
same_area_balanced_train.txt, same_area_balanced_test.txt, pano_label_balanced.txt. A label line is the
panorama name, then four groups (tile name, row offset, column offset): the positive and three
semi-positives. Offsets are native tile pixels from the tile centre: row offsets grow southwards (down) and
column offsets eastwards (right), so the camera sits at (W/2 + column offset, H/2 + row offset).
Same-area uses all four cities (balanced train/test files); cross-area trains on NewYork + Seattle and
tests on Chicago + SanFrancisco (all their labelled panoramas). A meters_per_pixel.json at the root
(city -> metres per pixel, as our synthetic export writes) overrides the per-city table.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engine.data.datasets.base import CrossViewReader
from engine.data.datasets.records import PANORAMA, CrossViewItem, SatelliteRef
from engine.data.datasets.registry import register_dataset

VIGOR_CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
#: Metres per pixel of the 640 px tiles, per city.
VIGOR_METRES_PER_PX = {"NewYork": 0.113248, "Seattle": 0.100817, "SanFrancisco": 0.118141,
                       "Chicago": 0.111262}
VIGOR_TILE_PX = 640
VIGOR_MODES = ("same_area", "cross_area")
VIGOR_SPLITS = ("train", "test")
CROSS_AREA_CITIES = {"train": ("NewYork", "Seattle"), "test": ("Chicago", "SanFrancisco")}
METRES_PER_PIXEL_JSON = "meters_per_pixel.json"
DATASET_JSON = "dataset.json"
LABEL_GROUPS = 4
#: VIGOR panoramas are north-aligned with north at the centre column (see panorama.py).
VIGOR_NORTH_X_FRACTION = 0.5


def lat_lon_from_panorama_name(name: str) -> tuple[float | None, float | None]:
    """VIGOR panorama names are "{id},{lat},{lon},.jpg"; (None, None) when a name does not follow that."""
    parts = name.split(",")
    try:
        return float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None, None


@register_dataset
class VigorReader(CrossViewReader):
    """VIGOR panoramas of `mode` ("same_area" / "cross_area") and `split` ("train" / "test").

    cities: default all four (same-area; or, for a root with other city folders, every city in the label
    folder) or the cross-area pair of the split. label_dir: "splits_new" when present, else "splits".
    tile_px: native tile size the offsets refer to; default from dataset.json (synthetic) or 640.
    The gallery is every existing tile of the split's cities' satellite_list.txt.
    """

    dataset_name = "VIGOR"
    kind = "vigor"
    splits = VIGOR_SPLITS
    train_split, eval_split = "train", "test"
    #: a label folder is the weakest sign: CVUSA keeps its split files in a "splits" folder too
    detect_priority = 0

    def __init__(self, root: str | Path, mode: str = "same_area", split: str = "train",
                 cities: Sequence[str] | None = None, *, label_dir: str | None = None,
                 tile_px: int | None = None, check_images: bool = False) -> None:
        if mode not in VIGOR_MODES:
            raise ValueError(f"VIGOR mode must be one of {VIGOR_MODES}, got {mode!r}")
        self.mode = mode
        self.requested_cities = None if cities is None else list(cities)
        self.label_dir_name = label_dir
        self.tile_px = tile_px
        super().__init__(root, split, check_images=check_images)

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / "splits").is_dir() or (root / "splits_new").is_dir()

    @classmethod
    def open_split(cls, root: Path, split: str, *, cities: Sequence[str] | None = None,
                   vigor_mode: str = "same_area", check_images: bool = False) -> VigorReader:
        return cls(root, vigor_mode, split, cities, check_images=check_images)

    # ------------------------------------------------------------ configuration from the folder
    @property
    def label_dir(self) -> Path:
        if self.label_dir_name is not None:
            return self.root / self.label_dir_name
        corrected = self.root / "splits_new"
        return corrected if corrected.is_dir() else self.root / "splits"

    def city_names(self) -> list[str]:
        if self.requested_cities is not None:
            return self.requested_cities
        if self.mode == "cross_area":
            return list(CROSS_AREA_CITIES[self.split])
        label_dir = self.label_dir
        present = sorted(p.name for p in label_dir.iterdir() if p.is_dir()) if label_dir.is_dir() else []
        standard = [c for c in VIGOR_CITIES if c in present]
        return standard or present or list(VIGOR_CITIES)

    def _json(self, name: str) -> dict:
        path = self.root / name
        if not path.is_file():
            return {}
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(payload, dict):
                raise TypeError("not a JSON object")
            return payload
        except (OSError, ValueError, TypeError) as exc:
            self._skip(path, f"unreadable JSON ({type(exc).__name__}: {exc})")
            return {}

    def _metres_per_px_table(self) -> dict[str, float]:
        table = dict(VIGOR_METRES_PER_PX)
        for city, value in self._json(METRES_PER_PIXEL_JSON).items():
            try:
                table[str(city)] = float(value)
            except (TypeError, ValueError):
                self._skip(self.root / METRES_PER_PIXEL_JSON, f"metres per pixel of {city} is not a number")
        return table

    def _tile_sizes(self) -> dict[str, int]:
        sizes = {}
        for city in self._json(DATASET_JSON).get("cities", []):
            if isinstance(city, dict) and "name" in city and "tile_px" in city:
                sizes[str(city["name"])] = int(city["tile_px"])
        return sizes

    def label_file(self, city: str) -> Path:
        if self.mode == "same_area":
            return self.label_dir / city / f"same_area_balanced_{self.split}.txt"
        return self.label_dir / city / "pano_label_balanced.txt"

    # ------------------------------------------------------------ indexing
    def _index(self) -> None:
        metres_per_px = self._metres_per_px_table()
        tile_sizes = self._tile_sizes()
        for city in self.city_names():
            tile_px = self.tile_px or tile_sizes.get(city, VIGOR_TILE_PX)
            list_path = self.label_dir / city / "satellite_list.txt"
            listing = self._read_text(list_path)
            for tile in (listing or "").split():
                path = self.root / city / "satellite" / tile
                if self._file_usable(path):
                    self.gallery.append(path)
            label_path = self.label_file(city)
            text = self._read_text(label_path)
            if text is None:
                continue
            for line_number, line in enumerate(text.splitlines(), start=1):
                tokens = line.split()
                if not tokens:
                    continue
                try:
                    item = self._item(city, tokens, (tile_px, tile_px), metres_per_px.get(city))
                except ValueError as exc:
                    self._malformed(label_path, line_number, str(exc))
                    continue
                self._add(item)

    def _item(self, city: str, tokens: list[str], tile_size: tuple[int, int],
              metres_per_px: float | None) -> CrossViewItem:
        if len(tokens) != 1 + 3 * LABEL_GROUPS:
            raise ValueError(f"expected a panorama and {LABEL_GROUPS} (tile, row, column) groups, "
                             f"got {len(tokens)} fields")
        pano_name = tokens[0]
        refs = []
        for k in range(LABEL_GROUPS):
            tile, row_offset, col_offset = tokens[1 + 3 * k: 4 + 3 * k]
            offset = (float(col_offset), float(row_offset))   # (right, down)
            refs.append(SatelliteRef(self.root / city / "satellite" / tile, offset))
        positive, semi = refs[0], [r for r in refs[1:] if self._file_usable(r.path)]
        lat, lon = lat_lon_from_panorama_name(pano_name)
        fields = {
            "item_id": f"{city}/{pano_name}", "dataset": "vigor", "split": self.split, "city": city,
            "ground_path": self.root / city / "panorama" / pano_name, "satellite_path": positive.path,
            "lon": lon, "lat": lat, "camera_offset_px": positive.camera_offset_px,
            "satellite_size_px": tile_size, "metres_per_px": metres_per_px, "semi_positives": tuple(semi)}
        fields.update(self._ground_fields(city, pano_name, positive, tile_size, metres_per_px))
        return CrossViewItem(**fields)

    def _ground_fields(self, city: str, pano_name: str, positive: SatelliteRef, tile_size: tuple[int, int],
                       metres_per_px: float | None) -> dict:
        """What the ground image is: here a north-aligned panorama."""
        return {"ground_kind": PANORAMA, "fov_deg": 360.0, "north_x_fraction": VIGOR_NORTH_X_FRACTION}
